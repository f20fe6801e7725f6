"""Sharing one node's checks among checker replicas: who is alive, and who runs what.

Discovery: every replica publishes a small beat on the node-unique control
subject ``lifeline.<node>.ctl.checker.replicas`` every ``beat`` seconds (core
NATS, no storage) and listens to everyone's.  A replica unheard for ``ttl``
seconds is dead; one that stops cleanly says ``leaving`` so its share moves at
once.  Why core beats rather than a KV bucket with a TTL: a KV entry that ages
out sends watchers no event, so we would poll anyway; beats give the same
answer with no server state and sub-second detection (defaults 0.25 s / 1 s,
so a ``kill -9``'d replica's checks move within ~1.3 s, under the 3 s promise).

Assignment: rendezvous (highest-random-weight) hashing of each check key over
the live replica ids.  Every replica computes the same owner from the same
set, with no coordination; when a replica dies only its keys move, and when it
comes back it gets exactly those keys back.  A new replica waits ``settle``
(= ttl) before claiming anything, so it does not run everyone's checks while it
has not yet heard its peers.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Iterable

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from shared.events import Service, service_subject

log = logging.getLogger("lifeline.checker.sharding")


def score(replica: str, key: str) -> int:
    """A stable 64-bit weight for (replica, key): the same in every process (unlike ``hash``)."""
    digest = hashlib.blake2b(f"{replica}\0{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner(key: str, replicas: Iterable[str]) -> str | None:
    """The replica that runs ``key``: highest score wins (ties broken by id for determinism)."""
    best: tuple[int, str] | None = None
    for replica in replicas:
        cand = (score(replica, key), replica)
        if best is None or cand > best:
            best = cand
    return None if best is None else best[1]


class Beat(msgspec.Struct, frozen=True, kw_only=True):
    """A replica's presence on the control subject (internal to the checker)."""

    id: str
    leaving: bool = False


def replicas_subject(node: str) -> str:
    return service_subject(node, Service.CHECKER.value, "replicas")


class Membership:
    """The live replica set of this node, kept by beats; calls ``on_change(live)`` when it changes."""

    def __init__(
        self,
        nc: Client,
        node: str,
        replica_id: str,
        on_change: Callable[[frozenset[str]], None],
        *,
        beat: float = 0.25,
        ttl: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.nc, self.node, self.id = nc, node, replica_id
        self.on_change = on_change
        self.beat, self.ttl, self.clock = beat, ttl, clock
        self.subject = replicas_subject(node)
        self.seen: dict[str, float] = {}
        self.live: frozenset[str] = frozenset()
        self.settled = False
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._encoder = msgspec.json.Encoder()
        self._decoder = msgspec.json.Decoder(Beat)

    async def start(self) -> None:
        self._sub = await self.nc.subscribe(self.subject, cb=self._on_beat)
        self._task = asyncio.create_task(self._run(), name="checker-membership")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await self.nc.publish(self.subject, self._encoder.encode(Beat(id=self.id, leaving=True)))
            await self.nc.flush(timeout=1)
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()

    async def _on_beat(self, msg: Msg) -> None:
        try:
            beat = self._decoder.decode(msg.data)
        except msgspec.DecodeError:
            return
        if beat.id == self.id:
            return
        if beat.leaving:
            self.seen.pop(beat.id, None)
        else:
            self.seen[beat.id] = self.clock()
        self._refresh()

    async def _run(self) -> None:
        started = self.clock()
        payload = self._encoder.encode(Beat(id=self.id))
        while True:
            with contextlib.suppress(Exception):
                if self.nc.is_connected:
                    await self.nc.publish(self.subject, payload)
            if not self.settled and self.clock() - started >= self.ttl:
                self.settled = True
            self._refresh()
            await asyncio.sleep(self.beat)

    def _refresh(self) -> None:
        if not self.settled:
            return
        now = self.clock()
        if self.nc.is_connected:  # while NATS is away nobody is heard: keep the last view
            for rid, at in list(self.seen.items()):
                if now - at > self.ttl:
                    del self.seen[rid]
        live = frozenset(self.seen) | {self.id}
        if live != self.live:
            log.info("checker replicas on %s: %s", self.node, ", ".join(sorted(live)))
            self.live = live
            self.on_change(live)
