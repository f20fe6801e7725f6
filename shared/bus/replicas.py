"""Who the replicas of a service on one node are: beats on ``lifeline.<node>.replicas.<service>.say.beat``.

Every replica publishes a small beat on that node-unique subject every
``beat`` seconds and listens to everyone's, as ``REPLICA_STREAM`` republishes
them on ``...heard.beat`` (why not one subject for both:
``shared.events.replica_say_subject``; a beat that was not republished by
that stream, e.g. a direct get aimed at the subject, is ignored).  A
replica unheard for ``ttl`` seconds is dead; one that stops cleanly says
``leaving`` so it leaves the set at once.  Why core beats rather than a KV
bucket with a TTL: a KV entry that ages out sends watchers no event, so we
would poll anyway, and listing a bucket's keys creates a JetStream consumer (a
right the service users do not have); beats give the same answer with a
minute of memory storage and sub-second detection (defaults 0.25 s / 1 s).

Used by the checker (the live set decides who runs which check) and by the
notifier; for both, ``members()`` says whose answers a bus reload waits for
(``replica_reload.py``, on a subject of its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from shared.bus.provision import PROVISION_HINT
from shared.bus.trust import republished
from shared.events import REPLICA_STREAM, replica_heard_subject, replica_say_subject

log = logging.getLogger("lifeline.bus.replicas")


class Beat(msgspec.Struct, frozen=True, kw_only=True):
    """A replica's presence on the replicas subject (internal to the service)."""

    id: str
    leaving: bool = False


def _ignore(live: frozenset[str]) -> None:
    """The default ``on_change``: a service that only asks ``members()`` when it needs them."""


class Membership:
    """The live replica set of a service on a node, kept by beats; calls ``on_change(live)`` when it changes.

    ``live`` stays empty until the replica has listened for ``ttl`` (it is
    ``settled``): a new replica must not claim work while it has not yet
    heard its peers.  ``members()`` is what it knows at any moment.
    """

    def __init__(
        self,
        nc: Client,
        node: str,
        service: str,
        replica_id: str,
        on_change: Callable[[frozenset[str]], None] = _ignore,
        *,
        beat: float = 0.25,
        ttl: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.nc, self.node, self.service, self.id = nc, node, service, replica_id
        self.on_change = on_change
        self.beat, self.ttl, self.clock = beat, ttl, clock
        self.subject = replica_say_subject(node, service, "beat")
        self.heard = replica_heard_subject(node, service, "beat")
        self.seen: dict[str, float] = {}
        self.live: frozenset[str] = frozenset()
        self.settled = False
        self.echoed = False
        """Its own beat came back through the stream (else: ``REPLICA_STREAM`` is not provisioned)."""
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._encoder = msgspec.json.Encoder()
        self._decoder = msgspec.json.Decoder(Beat)

    def members(self) -> frozenset[str]:
        """The replicas known alive now, this one included: the live set, or before it settles, all heard."""
        return self.live if self.settled else frozenset(self.seen) | {self.id}

    async def start(self) -> None:
        self._sub = await self.nc.subscribe(self.heard, cb=self._on_beat)
        self._task = asyncio.create_task(self._run(), name=f"{self.service}-membership")

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
        if not republished(msg.headers, REPLICA_STREAM, self.subject):
            return
        try:
            beat = self._decoder.decode(msg.data)
        except msgspec.DecodeError:
            return
        if beat.id == self.id:
            self.echoed = True
            return
        if beat.leaving:
            self.seen.pop(beat.id, None)
        else:
            self.seen[beat.id] = self.clock()
        self._refresh()

    async def _run(self) -> None:
        started = self.clock()
        warned = False
        payload = self._encoder.encode(Beat(id=self.id))
        while True:
            with contextlib.suppress(Exception):
                if self.nc.is_connected:
                    await self.nc.publish(self.subject, payload)
            if not self.settled and self.clock() - started >= self.ttl:
                self.settled = True
            late = self.clock() - started >= 3 * self.ttl
            if not (self.echoed or warned) and late and self.nc.is_connected:
                warned = True
                log.error(
                    "%s replica %s does not hear its own beats: is stream %s provisioned? %s",
                    self.service,
                    self.id,
                    REPLICA_STREAM,
                    PROVISION_HINT,
                )
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
            log.info("%s replicas on %s: %s", self.service, self.node, ", ".join(sorted(live)))
            self.live = live
            self.on_change(live)
