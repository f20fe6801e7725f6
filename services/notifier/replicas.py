"""Every notifier replica of a node: who is present, and a reload that reaches all of them.

Why: the bus ``reload`` endpoint is a NATS micro endpoint, and nats-py puts
every endpoint in queue group ``q``, so a request reaches *one* replica.
Sinks move between replicas with their leases, so a replica left on the old
file would deliver with the old definitions whenever it holds a lease.  The
replica the request reached reloads itself and, at the same time, asks its
peers on ``lifeline.<node>.ctl.notifier.reload_replicas`` (a plain
subscription: every replica hears it).  Each peer reloads through its own
runner (same file policy, its own ``ServiceReload`` event) and answers; the
reply to the request merges them (``core.replica_reload``).  SIGHUP is not
fanned out: it is sent to processes, and the usual tools send it to every
replica (``docker compose kill -s HUP notifier``, ``systemctl reload``).

Who the peers are: every replica keeps ``replica.<owner>`` in the lease bucket
(written every ttl/3; the bucket's ttl removes it after a crash, a graceful
stop deletes it), so the replica fanning out knows whose answers to wait for
and names the ones that did not answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Final

import msgspec
import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.kv import KeyValue

from services.notifier.core.replica_reload import merge
from shared.events import ReloadReply, ReloadTrigger, Service, decode_token, encode_token, service_subject

log = logging.getLogger("lifeline.notifier.replicas")

PRESENCE_PREFIX: Final = "replica."


def reload_replicas_subject(node: str) -> str:
    """``lifeline.<node>.ctl.notifier.reload_replicas``: heard by every notifier replica of ``node``."""
    return service_subject(node, Service.NOTIFIER.value, "reload_replicas")


class ReplicaReload(msgspec.Struct, frozen=True, kw_only=True):
    """A replica asks its peers to reload (internal to the notifier)."""

    origin: str


class ReplicaAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """A peer's outcome (internal to the notifier)."""

    replica: str
    reply: ReloadReply


class Presence:
    """This replica's key in the lease bucket, and the list of everyone's."""

    def __init__(self, kv: KeyValue, owner: str, ttl: float) -> None:
        self.kv = kv
        self.owner = owner
        self.ttl = ttl
        self.key = PRESENCE_PREFIX + encode_token(owner)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.kv.put(self.key, self.owner.encode())
        self._task = asyncio.create_task(self._renew(), name="notifier-presence")

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                await self.kv.put(self.key, self.owner.encode())
            except Exception as exc:  # NATS away: the key may expire; peers then do not wait for us
                log.info("presence %s: not renewed (%s)", self.key, exc)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await self.kv.delete(self.key)

    async def peers(self, timeout: float = 2.0) -> set[str]:
        """The other replicas whose key is there now."""
        watcher = await self.kv.watch(PRESENCE_PREFIX + "*", ignore_deletes=True, meta_only=True)
        found: set[str] = set()
        try:
            while (entry := await watcher.updates(timeout)) is not None:  # type: ignore[no-untyped-call]
                with contextlib.suppress(ValueError):
                    found.add(decode_token(entry.key[len(PRESENCE_PREFIX) :]))
        finally:
            with contextlib.suppress(Exception):
                await watcher.stop()  # type: ignore[no-untyped-call]
        found.discard(self.owner)
        return found


ReloadHere = Callable[[ReloadTrigger], Awaitable[ReloadReply]]
"""The runner's reload of this process (``ServiceContext.reload``)."""


class ReloadFanOut:
    """Answers peers' reload requests, and reloads every replica when the bus endpoint reaches this one."""

    def __init__(
        self,
        nc: Client,
        node: str,
        presence: Presence,
        reload_here: ReloadHere,
        *,
        timeout: float = 8.0,
    ) -> None:
        self.nc = nc
        self.presence = presence
        self.owner = presence.owner
        self.reload_here = reload_here
        self.timeout = timeout
        self.subject = reload_replicas_subject(node)
        self._sub: Subscription | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._sub = await self.nc.subscribe(self.subject, cb=self._on_request)

    async def stop(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _on_request(self, msg: Msg) -> None:
        try:
            request = msgspec.json.decode(msg.data, type=ReplicaReload)
        except msgspec.DecodeError:
            return
        if request.origin == self.owner or not msg.reply:
            return
        task = asyncio.create_task(self._answer(request, msg.reply), name="notifier-peer-reload")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, request: ReplicaReload, reply_to: str) -> None:
        log.info("reload asked by replica %s", request.origin)
        reply = await self.reload_here(ReloadTrigger.REQUEST)
        answer = ReplicaAnswer(replica=self.owner, reply=reply)
        try:
            await self.nc.publish(reply_to, msgspec.json.encode(answer))
        except Exception as exc:
            log.warning("reload asked by replica %s: answer not sent (%s)", request.origin, exc)

    async def reload_everywhere(self, _body: bytes) -> ReloadReply:
        """The ``reload`` endpoint's handler: this replica and, at the same time, every peer present."""
        here = asyncio.ensure_future(self.reload_here(ReloadTrigger.REQUEST))
        try:
            expected = await self.presence.peers()
        except Exception as exc:  # no list: still ask, and take whoever answers
            log.warning("reload: replicas unknown (%s); asking whoever listens", exc)
            expected = set()
        answers: dict[str, ReloadReply] = {}
        done = asyncio.Event()
        if not expected:
            done.set()

        async def collect(msg: Msg) -> None:
            try:
                answer = msgspec.json.decode(msg.data, type=ReplicaAnswer)
            except msgspec.DecodeError:
                return
            answers[answer.replica] = answer.reply
            if expected <= set(answers):
                done.set()

        inbox = self.nc.new_inbox()
        sub = await self.nc.subscribe(inbox, cb=collect)
        try:
            request = msgspec.json.encode(ReplicaReload(origin=self.owner))
            await self.nc.publish(self.subject, request, reply=inbox)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), self.timeout)
            own = await here
        except (nats.errors.Error, OSError) as exc:
            log.warning("reload: peers not asked (%s)", exc)
            own = await here
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        return merge(own, answers, expected, self.timeout)
