"""One durable JetStream pull consumer feeding a sink's ``KeyedDispatcher``.

Why pull: the notifier decides how much it holds (``max_held``) and fetches
more only when the sink keeps up; a push consumer would flood a slow sink.

The consumer is provisioned by an admin (``shared.bus.provision``; its name
and filters: ``services/notifier/consumers.py``): the feed only binds to it.
While it does not exist the feed says so (log, ``missing`` in the status)
and looks again every few seconds; when it exists with another ``ack_wait``
the feed keeps it alive by that one, and a subject outside the filters the
notifier wants (a consumer provisioned without ``--no-health``) is acked and
skipped.

Why the restart barrier: after a crash, the messages the dead process held are
redelivered only when their ``ack_wait`` runs out, while new messages flow at
once.  A new ``MASTER`` for VI_1 would then overtake the unacked ``BACKUP``
before it.  So at start the feed reads the consumer's state: if messages are
pending, everything newer than the last delivered sequence is *deferred* (kept
alive, not dispatched) until the pending ones have come back to us (or were
acked by someone else, or ``barrier_timeout`` passed).  JetStream redelivers
the pending ones as their ``ack_wait`` runs out, which is not stream order (the
dead process touched them with ``in_progress`` at different times), so they too
are held until all are back and then enter their key queues in stream order,
before the deferred ones: per-key order holds across a ``kill -9``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import msgspec
import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerInfo, DeliverPolicy
from nats.js.errors import NotFoundError

from services.notifier.delivery.dispatcher import Delivery, KeyedDispatcher
from shared.bus.provision import PROVISION_HINT, subject_matches
from shared.events import NOTIFIER_CONSUMER_PREFIX, Event, RealServerHealth, decode, encode_token

log = logging.getLogger("lifeline.notifier.feed")

Relevant = Callable[[Event], bool]


def notable(event: Event) -> bool:
    """Heartbeats notify nobody: acked at once, never queued behind a retry.

    A heartbeat has ``changed`` false and no ``checker_up``; with ``checker_up``
    one checker moved, which keepalived mails (``no_checker_emails`` aside).
    """
    return not (isinstance(event, RealServerHealth) and not event.changed and event.checker_up is None)


def durable_name(sink: str) -> str:
    """The consumer every replica shares for ``sink`` (one token: no dots or spaces)."""
    return f"{NOTIFIER_CONSUMER_PREFIX}{encode_token(sink)}"


class ConsumerFeed:
    """Fetches from ``stream`` with the durable ``durable`` and submits to ``dispatcher``."""

    def __init__(
        self,
        js: JetStreamContext,
        dispatcher: KeyedDispatcher,
        *,
        stream: str,
        durable: str,
        filter_subjects: list[str] | None = None,
        ack_wait: float = 10.0,
        batch: int = 256,
        max_held: int = 5000,
        fetch_timeout: float = 1.0,
        start: DeliverPolicy = DeliverPolicy.NEW,
        relevant: Relevant = notable,
        barrier_timeout: float | None = None,
        retry: float = 2.0,
    ) -> None:
        self.js = js
        self.dispatcher = dispatcher
        self.stream = stream
        self.durable = durable
        self.filter_subjects = filter_subjects
        self.ack_wait = ack_wait
        self.batch = batch
        self.max_held = max_held
        self.fetch_timeout = fetch_timeout
        self.start = start
        self.relevant = relevant
        self.barrier_timeout = barrier_timeout if barrier_timeout is not None else 3 * ack_wait + 5.0
        self._deferred: list[Delivery] = []
        self._returned: dict[int, Delivery] = {}
        self._barrier: int | None = None
        self._expect_old = 0
        self._seen_old: set[int] = set()
        self._barrier_deadline = 0.0
        self.undecodable = 0
        self.skipped = 0
        """Messages outside ``filter_subjects`` that the consumer (provisioned otherwise) delivered."""
        self.missing = False
        """The consumer does not exist (not provisioned): the feed waits for it."""
        self.retry = retry

    async def bind(self) -> ConsumerInfo:
        """Wait until the consumer exists (an admin provisions it), then take its ``ack_wait``."""
        while True:
            try:
                info: ConsumerInfo = await self.js.consumer_info(self.stream, self.durable)
                break
            except NotFoundError:
                if not self.missing:
                    log.error(
                        "feed %s/%s: the consumer does not exist: %s",
                        self.stream,
                        self.durable,
                        PROVISION_HINT,
                    )
                self.missing = True
            await asyncio.sleep(self.retry)
        if self.missing:
            log.info("feed %s/%s: the consumer exists now", self.stream, self.durable)
        self.missing = False
        self._compare(info)
        return info

    def _compare(self, info: ConsumerInfo) -> None:
        have = info.config
        filters = sorted(have.filter_subjects or ([have.filter_subject] if have.filter_subject else []))
        if self.filter_subjects is not None and filters != sorted(self.filter_subjects):
            log.warning(
                "feed %s/%s: provisioned for %s, this notifier wants %s (the rest is skipped)",
                self.stream,
                self.durable,
                filters,
                sorted(self.filter_subjects),
            )
        if have.ack_wait and have.ack_wait != self.ack_wait:
            log.warning(
                "feed %s/%s: provisioned with ack_wait %gs, this notifier asked %gs: using %gs",
                self.stream,
                self.durable,
                have.ack_wait,
                self.ack_wait,
                have.ack_wait,
            )
            self.ack_wait = have.ack_wait

    async def backlog(self) -> dict[str, int]:
        """Messages not yet delivered to us (``num_pending``) and delivered but unacked."""
        info = await self.js.consumer_info(self.stream, self.durable)
        return {"pending": info.num_pending or 0, "unacked": info.num_ack_pending or 0}

    async def run(self) -> None:
        """Fetch and dispatch until cancelled; the deferred messages are simply left unacked then."""
        await self.bind()
        sub = await self.js.pull_subscribe_bind(durable=self.durable, stream=self.stream)
        await self._arm_barrier()
        keepalive = asyncio.create_task(self._keepalive())
        try:
            while True:
                if self.dispatcher.held + len(self._deferred) + len(self._returned) >= 2 * self.max_held:
                    await asyncio.sleep(0.01)
                    continue
                try:
                    msgs = await sub.fetch(self.batch, timeout=self.fetch_timeout)
                except (TimeoutError, nats.errors.TimeoutError):
                    msgs = []
                except (nats.errors.Error, OSError) as exc:
                    log.info("feed %s/%s: fetch failed (%s); retrying", self.stream, self.durable, exc)
                    await asyncio.sleep(0.2)
                    msgs = []
                for msg in msgs:
                    await self._take(msg)
                if self._barrier is not None:
                    await self._check_barrier()
        finally:
            keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keepalive
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _arm_barrier(self) -> None:
        info = await self.js.consumer_info(self.stream, self.durable)
        pending = info.num_ack_pending or 0
        if pending and info.delivered is not None:
            self._barrier = info.delivered.stream_seq
            self._expect_old = pending
            self._barrier_deadline = time.monotonic() + self.barrier_timeout
            log.info(
                "feed %s/%s: %d unacked events up to seq %d come back first",
                self.stream,
                self.durable,
                pending,
                self._barrier,
            )

    async def _take(self, msg: Msg) -> None:
        meta = msg.metadata
        seq = meta.sequence.stream
        if self.filter_subjects and not any(subject_matches(f, msg.subject) for f in self.filter_subjects):
            self.skipped += 1
            with contextlib.suppress(Exception):
                await msg.ack()
            return
        try:
            event = decode(msg.data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            self.undecodable += 1
            log.error("feed %s: stream seq %d is not an event (%s); terminated", self.stream, seq, exc)
            with contextlib.suppress(Exception):
                await msg.term()
            return
        if not self.relevant(event):
            with contextlib.suppress(Exception):
                await msg.ack()
            return
        delivery = Delivery(
            event=event,
            subject=msg.subject,
            stream=self.stream,
            stream_seq=seq,
            msg=msg,
            previous_deliveries=max(0, meta.num_delivered - 1),
        )
        if self._barrier is not None:
            if seq > self._barrier:
                self._deferred.append(delivery)
            else:
                self._seen_old.add(seq)
                self._returned[seq] = delivery
            return
        self.dispatcher.submit(delivery)

    async def _check_barrier(self) -> None:
        assert self._barrier is not None
        done = len(self._seen_old) >= self._expect_old or time.monotonic() > self._barrier_deadline
        if not done:
            try:
                info = await self.js.consumer_info(self.stream, self.durable)
            except (nats.errors.Error, OSError):
                return
            done = info.ack_floor is not None and info.ack_floor.stream_seq >= self._barrier
        if not done:
            return
        if len(self._seen_old) < self._expect_old and time.monotonic() > self._barrier_deadline:
            log.warning("feed %s/%s: gave up waiting for old unacked events", self.stream, self.durable)
        self._barrier = None
        returned, self._returned = self._returned, {}
        deferred, self._deferred = self._deferred, []
        for delivery in [*(returned[seq] for seq in sorted(returned)), *sorted(deferred, key=_seq)]:
            self.dispatcher.submit(delivery)

    async def _keepalive(self) -> None:
        """``in_progress`` for every held or deferred message, so JetStream never hands one out twice."""
        interval = max(0.2, self.ack_wait / 3)
        while True:
            await asyncio.sleep(interval)
            for delivery in [*self.dispatcher.held_deliveries(), *self._returned.values(), *self._deferred]:
                if delivery.stream != self.stream:
                    continue
                try:
                    await delivery.msg.in_progress()
                except Exception as exc:
                    log.debug("in_progress failed: %s", exc)


def _seq(delivery: Delivery) -> int:
    return delivery.stream_seq
