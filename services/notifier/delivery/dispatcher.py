"""The delivery core of one sink: per-key ordered queues, retries with backoff, dead letters, acks.

Why per-key queues inside one consumer (and not a consumer per key): keys are
instances, groups and virtual servers, which come and go with reloads, and a
JetStream consumer per key would be thousands of consumers whose filters must
follow the config.  One durable pull consumer per sink with a large
``max_ack_pending`` hands us many messages at once; here each message joins the
queue of its key (``order_key``), one task per busy key delivers that queue
strictly in stream order, and different keys run in parallel.  Acks are
explicit per message, so they may happen out of stream order: an unacked
message (a key still retrying, or a crash) is redelivered by JetStream on its
own, while the ones acked after it are not.

Retrying happens here, in process, and not by NAK: a NAK lets the next message
of the same key overtake the failed one.  A message waiting for its turn or for
its next attempt is kept alive with ``in_progress`` by the feed
(``feed``), so JetStream does not hand it out again meanwhile.  When the
policy gives up (``max_attempts`` reached, or the sink says retrying cannot
help), the event goes to the dead-letter subject with the reason, and only
then is it acknowledged: the dead letter *is* the failure event.

A sink's error text (a webhook URL with a token, an SMTP server's reply) is
redacted here (``shared.redact``) before it becomes ``last_error``, a log line
or ``DeadLetter.reason``: sinks need not each remember to.

Reload swaps the sink *object* between deliveries (``swap``): the queues,
workers, held messages and acks stay, so nothing is delivered twice or
skipped, and the per-key order holds; a delivery already running finishes on
the sink it started with, every attempt that starts afterwards (a retry
included) goes to the new one.

This module owns no NATS connection: the feed submits ``Delivery`` objects and
an ``Acker`` acknowledges them, so the ordering and retry logic is tested
without a server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final, Literal, Protocol

import msgspec

from services.notifier.sinks.base import DeliveryContext, DeliveryError, HandoverSink, Sink
from shared.events import (
    DeadLetter,
    Event,
    GroupState,
    InstanceControl,
    InstanceEvent,
    InstanceState,
    OutboxOverflow,
    PoolEvent,
    RealServerHealth,
    ServiceReload,
    SplitBrain,
    TrackerResult,
    msg_id,
)
from shared.redact import REDACTOR, redact

log = logging.getLogger("lifeline.notifier.delivery")

Ordering = Literal["key", "global"]
"""``key``: order per instance/group/virtual server, keys in parallel; ``global``: one queue (FIFOs)."""


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """How long a sink keeps trying one event before giving up.

    The delay after failed attempt ``n`` is ``initial_delay * multiplier**(n-1)``,
    capped at ``max_delay``, with +/-``jitter`` so replicas and keys do not retry
    in lockstep.  ``max_attempts`` 0 means never give up (the key waits, the
    others go on).  Defaults span about ten minutes: an SMTP server rebooting
    or a webhook redeploying loses nothing.
    """

    max_attempts: int = 25
    initial_delay: float = 0.5
    max_delay: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.1

    def delay(self, attempt: int) -> float:
        base = min(self.max_delay, self.initial_delay * self.multiplier ** max(0, attempt - 1))
        return max(0.0, base * (1.0 + random.uniform(-self.jitter, self.jitter)))

    def exhausted(self, attempt: int) -> bool:
        return self.max_attempts > 0 and attempt >= self.max_attempts


def order_key(event: Event) -> str:
    """The object whose notifications must stay in order: instance, group, virtual server, tracker.

    Real-server health and pool events share their virtual server's key, so a
    ``notify_down`` of a real server never overtakes the ``quorum_down`` it caused.
    """
    match event:
        case InstanceState() | InstanceControl() | SplitBrain() | InstanceEvent():  # in the instance's order
            return f"instance:{event.node}:{event.instance}"
        case GroupState():
            return f"group:{event.node}:{event.group}"
        case RealServerHealth() | PoolEvent():
            return f"virtual:{event.node}:{event.virtual}"
        case TrackerResult():
            return f"tracker:{event.node}:{event.tracker}"
        case ServiceReload() | OutboxOverflow():
            return f"service:{event.node}:{event.service}"


class Acker(Protocol):
    """What the core needs from a JetStream message: keep it alive, acknowledge it."""

    async def ack(self) -> None: ...

    async def in_progress(self) -> None: ...


@dataclass(eq=False)
class Delivery:
    """One event held for one sink, from fetch to ack.

    ``previous_deliveries`` counts JetStream deliveries before this one (after
    a crash the same event comes back with 1, 2...), so ``attempt`` seen by a
    sink keeps counting across restarts and replicas.
    """

    event: Event
    subject: str
    stream: str
    stream_seq: int
    msg: Acker
    previous_deliveries: int = 0
    received: float = field(default_factory=time.monotonic)
    attempts: int = 0

    @property
    def ident(self) -> tuple[str, int]:
        return (self.stream, self.stream_seq)


DeadLetterPublisher = Callable[[DeadLetter], Awaitable[None]]
"""Stores a dead letter durably; raises if it could not (the core retries, the event stays unacked)."""


@dataclass
class SinkStats:
    """Per-sink counters and last outcomes, shown by the ``status`` endpoint."""

    delivered: int = 0
    failed_attempts: int = 0
    dead_lettered: int = 0
    redelivered: int = 0
    last_success: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "delivered": self.delivered,
            "failed_attempts": self.failed_attempts,
            "dead_lettered": self.dead_lettered,
            "redelivered": self.redelivered,
            "last_success": _iso(self.last_success),
            "last_error": self.last_error,
            "last_error_at": _iso(self.last_error_at),
        }


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


_RECENT_DONE: Final = 4096


class _SinkInUse:
    """One sink behind a dispatcher and the deliveries running on it right now.

    Why count them: after a swap the previous sink may still be running a
    script or sending a mail; it must be closed only once those are done, and
    a successor that takes its state over (``HandoverSink``) must not start
    before.  ``ready`` is clear while this sink waits to take over from its
    predecessor.
    """

    def __init__(self, sink: Sink, *, ready: bool) -> None:
        self.sink = sink
        self.running = 0
        self.idle = asyncio.Event()
        self.idle.set()
        self.ready = asyncio.Event()
        if ready:
            self.ready.set()

    def enter(self) -> None:
        self.running += 1
        self.idle.clear()

    def leave(self) -> None:
        self.running -= 1
        if not self.running:
            self.idle.set()


class KeyedDispatcher:
    """Delivers the events of one sink: in order per key, keys in parallel, at most ``max_parallel``.

    ``submit`` never blocks; the feed bounds how much it fetches with ``held``.
    A delivery submitted again while held (a JetStream redelivery that raced
    our ``in_progress``) only refreshes the message handle; one submitted after
    it was acknowledged is acknowledged again and dropped.
    """

    def __init__(
        self,
        sink: Sink,
        *,
        node: str,
        policy: RetryPolicy | None = None,
        ordering: Ordering = "key",
        max_parallel: int = 64,
        dead_letter: DeadLetterPublisher | None = None,
        stats: SinkStats | None = None,
    ) -> None:
        self._in_use = _SinkInUse(sink, ready=True)
        self.node = node
        self.policy = policy or RetryPolicy()
        self.ordering = ordering
        self.dead_letter = dead_letter
        self.stats = stats or SinkStats()
        self._slots = asyncio.Semaphore(max_parallel)
        self._queues: dict[str, deque[Delivery]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._held: dict[tuple[str, int], Delivery] = {}
        self._done: OrderedDict[tuple[str, int], None] = OrderedDict()
        self._idle = asyncio.Event()
        self._idle.set()
        self._background: set[asyncio.Future[None]] = set()

    @property
    def sink(self) -> Sink:
        """The sink new deliveries go to."""
        return self._in_use.sink

    @property
    def held(self) -> int:
        return len(self._held)

    def swap(self, sink: Sink) -> asyncio.Task[Sink]:
        """Deliver with ``sink`` from now on; the task returns the previous sink once nothing uses it.

        Returns at once: attempts already running finish on the previous sink
        (and are acked as usual), the ones that start later go to ``sink``.
        A ``HandoverSink`` first takes the previous sink's state over, after
        the previous sink's last attempt and before its own first; attempts
        wait for that, for no longer than the running ones take.  Swaps in a
        row chain: each successor waits for its predecessor to be ready, then
        idle.
        """
        previous = self._in_use
        current = _SinkInUse(sink, ready=not isinstance(sink, HandoverSink))
        self._in_use = current

        async def handover() -> Sink:
            try:
                await previous.ready.wait()
                await previous.idle.wait()
                if isinstance(sink, HandoverSink):
                    try:
                        sink.take_over(previous.sink)
                    except Exception:  # a sink bug must not stop deliveries: it starts afresh
                        log.exception("sink %s: taking over from its previous definition failed", sink.name)
            finally:
                current.ready.set()
            return previous.sink

        return asyncio.create_task(handover(), name=f"handover-{sink.name}")

    async def _ready_sink(self) -> _SinkInUse:
        """The sink to start an attempt on: the newest, once it has taken over from its predecessor."""
        while not (in_use := self._in_use).ready.is_set():
            await in_use.ready.wait()
        return in_use

    def held_deliveries(self) -> list[Delivery]:
        return list(self._held.values())

    def key_of(self, event: Event) -> str:
        return "" if self.ordering == "global" else order_key(event)

    def submit(self, delivery: Delivery) -> None:
        ident = delivery.ident
        if (held := self._held.get(ident)) is not None:
            held.msg = delivery.msg  # the newest handle acks it
            return
        if ident in self._done:
            task = asyncio.ensure_future(_quiet_ack(delivery.msg))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            return
        if delivery.previous_deliveries:
            self.stats.redelivered += 1
        self._held[ident] = delivery
        self._idle.clear()
        key = self.key_of(delivery.event)
        self._queues.setdefault(key, deque()).append(delivery)
        if key not in self._workers:
            self._workers[key] = asyncio.create_task(self._work(key), name=f"notify-{self.sink.name}-{key}")

    async def wait_idle(self) -> None:
        """Until nothing is held (every submitted event delivered or dead-lettered, and acked)."""
        await self._idle.wait()

    async def abort(self) -> None:
        """Stop at once without acknowledging what is held: JetStream redelivers it (lease lost, shutdown)."""
        workers = list(self._workers.values())
        for task in workers:
            task.cancel()
        for task in workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers.clear()
        self._queues.clear()
        self._held.clear()
        self._idle.set()

    async def _work(self, key: str) -> None:
        queue = self._queues[key]
        try:
            while queue:
                delivery = queue[0]
                await self._deliver(delivery)
                await _quiet_ack(delivery.msg)
                queue.popleft()
                self._finish(delivery)
        finally:
            if not queue:
                self._queues.pop(key, None)
            if self._workers.get(key) is asyncio.current_task():
                del self._workers[key]

    def _finish(self, delivery: Delivery) -> None:
        self._held.pop(delivery.ident, None)
        self._done[delivery.ident] = None
        if len(self._done) > _RECENT_DONE:
            self._done.popitem(last=False)
        if not self._held:
            self._idle.set()

    async def _deliver(self, delivery: Delivery) -> None:
        """Try until delivered or the policy gives up (then dead-letter); never raises but CancelledError."""
        while True:
            delivery.attempts += 1
            attempt = delivery.attempts + delivery.previous_deliveries
            context = DeliveryContext(
                subject=delivery.subject, attempt=attempt, stream_seq=delivery.stream_seq
            )
            try:
                async with self._slots:  # held per attempt, not across backoff sleeps
                    in_use = await self._ready_sink()
                    in_use.enter()  # no await since it was picked: a swap now waits for this attempt
                    try:
                        await in_use.sink.deliver(delivery.event, context)
                    finally:
                        in_use.leave()
            except asyncio.CancelledError:
                raise
            except DeliveryError as exc:
                if not exc.retryable or self.policy.exhausted(delivery.attempts):
                    await self._give_up(delivery, str(exc), exc.retryable)
                    return
                self._failed(delivery, str(exc))
            except Exception as exc:  # a sink bug: retryable by contract
                log.exception("sink %s raised on %s", self.sink.name, msg_id(delivery.event))
                reason = f"{type(exc).__name__}: {exc}"
                if self.policy.exhausted(delivery.attempts):
                    await self._give_up(delivery, reason, True)
                    return
                self._failed(delivery, reason)
            else:
                self.stats.delivered += 1
                self.stats.last_success = time.time()
                return
            await asyncio.sleep(self.policy.delay(delivery.attempts))

    def _failed(self, delivery: Delivery, reason: str) -> None:
        reason = redact(reason)
        self.stats.failed_attempts += 1
        self.stats.last_error, self.stats.last_error_at = reason, time.time()
        if delivery.attempts == 1 or delivery.attempts % 10 == 0:
            log.warning(
                "sink %s: %s failed (attempt %d), will retry: %s",
                self.sink.name,
                msg_id(delivery.event),
                delivery.attempts,
                reason,
            )

    async def _give_up(self, delivery: Delivery, reason: str, retryable: bool) -> None:
        reason = redact(reason)
        self.stats.failed_attempts += 1
        self.stats.dead_lettered += 1
        self.stats.last_error, self.stats.last_error_at = reason, time.time()
        log.error(
            "sink %s gave up on %s after %d attempt(s): %s",
            self.sink.name,
            msg_id(delivery.event),
            delivery.attempts,
            reason,
        )
        if self.dead_letter is None:
            return
        letter = DeadLetter(
            node=self.node,
            ts=time.time_ns(),
            sink=self.sink.name,
            reason=reason,
            retryable=retryable,
            attempts=delivery.attempts + delivery.previous_deliveries,
            subject=delivery.subject,
            stream=delivery.stream,
            stream_seq=delivery.stream_seq,
            event_id=msg_id(delivery.event),
            event=delivery.event,
        )
        letter = REDACTOR.struct(letter)
        wait = 0.1
        while True:  # the event stays unacked (and alive) until its dead letter is stored
            try:
                await self.dead_letter(letter)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("sink %s: dead letter not stored yet (%s); retrying", self.sink.name, exc)
            await asyncio.sleep(wait)
            wait = min(wait * 2, 5.0)


async def _quiet_ack(msg: Acker) -> None:
    """Ack, tolerating a connection in trouble: an ack lost here means one redelivery, never a loss."""
    try:
        await msg.ack()
    except Exception as exc:
        log.info("ack failed (%s); the event may be delivered again", exc)
