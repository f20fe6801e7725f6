"""A bus ``reload`` reaches every replica of a service on the node, not only the one that answers.

Why: nats-py puts every micro endpoint in queue group ``q``, so a request on
``lifeline.<node>.ctl.<service>.reload`` is delivered to ONE replica.  That
replica reloads itself and, in the same moment, calls the others: a
``ReloadCall`` on ``lifeline.<node>.replicas.<service>.say.reload``, which
``REPLICA_STREAM`` republishes on ``...heard.reload`` where every replica
listens.  Each replica re-reads the file through its own runner, exactly as
on SIGHUP (its own log line, stdout line and ``ServiceReload`` event), and
answers with a ``ReplicaReloaded`` naming the call on ``...say.reloaded``
(heard on ``...heard.reloaded``).  No inbox and no ``allow_responses``
among replicas: see ``shared.events.replica_say_subject`` for why.  The
receiver waits for every replica it knows alive, at most ``timeout``
seconds, and replies with the combination (``core/reload_replies.py``):
applied only if all applied.

What the services that use it (checker, notifier) give: node and service,
and who the live replicas are (``Membership.members``, ``replicas.py``).

Why not one reload subject per replica with the CLI fanning out: the CLI would
need to know the service's replicas, and every other client of the contract
(a script, the fleet hub) the same; here the contract stays one request.

SIGHUP is not fanned out: every process gets its own (the supervisor, or
``docker compose kill -s HUP``, signals each one), and fanning out each would
reload every replica N times.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable

import msgspec
import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from shared.bus.core.reload_replies import combine
from shared.bus.trust import republished
from shared.events import (
    REPLICA_STREAM,
    ReloadReply,
    ReloadTrigger,
    replica_heard_subject,
    replica_say_subject,
)

log = logging.getLogger("lifeline.bus.reload")

FANOUT_TIMEOUT = 8.0
"""How long the receiving replica waits for the others (the CLI waits 10 s by default)."""

Reload = Callable[[ReloadTrigger], Awaitable[ReloadReply]]
"""The runner's reload (``ServiceContext.reload``): re-read the file, apply or refuse, announce."""


class ReloadCall(msgspec.Struct, frozen=True, kw_only=True):
    """ "Reload from your file": sent by the replica that got the bus request, to the others."""

    call: str
    origin: str


class ReplicaReloaded(msgspec.Struct, frozen=True, kw_only=True):
    """One replica's answer to a ``ReloadCall`` (``call`` names it)."""

    replica: str
    reply: ReloadReply
    call: str = ""


class ReloadFanout:
    """Answers the node's bus ``reload`` for all replicas, and reloads when another replica asks."""

    def __init__(
        self,
        nc: Client,
        node: str,
        service: str,
        *,
        replica_id: str,
        reload: Reload,
        peers: Callable[[], frozenset[str]],
        timeout: float = FANOUT_TIMEOUT,
    ) -> None:
        self.nc, self.id = nc, replica_id
        self.calls = replica_say_subject(node, service, "reload")
        self.answers = replica_say_subject(node, service, "reloaded")
        self._heard_calls = replica_heard_subject(node, service, "reload")
        self._heard_answers = replica_heard_subject(node, service, "reloaded")
        self.reload = reload
        self.peers = peers
        """The live replica set (this replica included), e.g. ``Membership.members``."""
        self.timeout = timeout
        self._subs: list[Subscription] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._waiting: dict[str, tuple[dict[str, ReloadReply], asyncio.Event]] = {}
        self._calls = msgspec.json.Decoder(ReloadCall)
        self._replies = msgspec.json.Decoder(ReplicaReloaded)
        self._encoder = msgspec.json.Encoder()

    async def start(self) -> None:
        self._subs = [
            await self.nc.subscribe(self._heard_calls, cb=self._on_call),
            await self.nc.subscribe(self._heard_answers, cb=self._on_answer),
        ]

    async def stop(self) -> None:
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self._subs = []
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def request(self, _body: bytes) -> ReloadReply:
        """The ``reload`` endpoint's handler: this replica and every other, one combined reply."""
        others = self.peers() - {self.id}
        call = ReloadCall(call=uuid.uuid4().hex, origin=self.id)
        replies: dict[str, ReloadReply] = {}
        arrived = asyncio.Event()
        self._waiting[call.call] = (replies, arrived)
        try:
            deadline = time.monotonic() + self.timeout
            asked = await self._call(call, len(others))
            own = await self.reload(ReloadTrigger.REQUEST)
            while asked and not others <= replies.keys() and (left := deadline - time.monotonic()) > 0:
                arrived.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(arrived.wait(), left)
        finally:
            del self._waiting[call.call]
        replies[self.id] = own
        silent = others - replies.keys()
        if silent:
            log.warning("bus reload: no answer from replica(s) %s", ", ".join(sorted(silent)))
        return combine(self.id, replies, silent, self.timeout)

    async def _call(self, call: ReloadCall, others: int) -> bool:
        """Ask the others; if the call cannot go out, this replica still reloads, and the others are named."""
        try:
            await self.nc.publish(self.calls, self._encoder.encode(call))
        except (nats.errors.Error, OSError) as exc:
            log.warning("bus reload: other replicas not asked (%s)", exc)
            return False
        log.info("bus reload: asking %d other replica(s) too", others)
        return True

    async def _on_answer(self, msg: Msg) -> None:
        if not republished(msg.headers, REPLICA_STREAM, self.answers):
            return
        try:
            answer = self._replies.decode(msg.data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return
        waiting = self._waiting.get(answer.call)
        if waiting is not None and answer.replica != self.id:
            replies, arrived = waiting
            replies[answer.replica] = answer.reply
            arrived.set()

    async def _on_call(self, msg: Msg) -> None:
        if not republished(msg.headers, REPLICA_STREAM, self.calls):
            return
        try:
            call = self._calls.decode(msg.data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return
        if call.origin == self.id:
            return
        task = asyncio.create_task(self._answer(call), name=f"reload for {call.origin}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, call: ReloadCall) -> None:
        """Reload as asked (in a task: beats and other calls are not held up), then say how it went."""
        log.info("reload asked by replica %s", call.origin)
        try:
            reply = await self.reload(ReloadTrigger.REQUEST)
        except Exception as exc:  # the asker must hear something rather than wait out its timeout
            log.exception("reload asked by replica %s failed", call.origin)
            reply = ReloadReply(ok=False, errors=[f"internal error: {type(exc).__name__}: {exc}"])
        answer = ReplicaReloaded(replica=self.id, reply=reply, call=call.call)
        try:
            await self.nc.publish(self.answers, self._encoder.encode(answer))
            await self.nc.flush(timeout=2)
        except Exception as exc:
            log.warning("reload asked by replica %s: answer not sent (%s)", call.origin, exc)
