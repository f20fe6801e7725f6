"""One sink's life in a notifier process: win its lease, consume its feeds, step down, drain.

Why a runner apart from the feed and the dispatcher: the lease can be lost at
any moment (a partition, a slow renew), and then everything this replica holds
for the sink must stop *without* acknowledging, so that the new holder gets it
redelivered; on a graceful stop the opposite: finish what is in hand, ack it,
then hand the lease over.  Keeping that in one place keeps the others simple.

A reload that changes the sink calls ``swap``: the consumer, its ack floor
(what this sink has delivered), the lease and the queues stay; only the sink
object behind them changes, between deliveries (``KeyedDispatcher.swap``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy
from nats.js.errors import NotFoundError

from services.notifier.delivery.dispatcher import (
    DeadLetterPublisher,
    KeyedDispatcher,
    Ordering,
    RetryPolicy,
    SinkStats,
)
from services.notifier.delivery.feed import ConsumerFeed, durable_name
from services.notifier.delivery.lease import Lease
from services.notifier.sinks.base import ClosableSink, Sink

log = logging.getLogger("lifeline.notifier.runner")


@dataclass(frozen=True)
class FeedSpec:
    """A stream the sink reads, and the subjects of it (None: all)."""

    stream: str
    filter_subjects: list[str] | None = None


@dataclass
class RunnerOptions:
    """Delivery settings of one sink (``lifeline.toml`` may set them per sink)."""

    policy: RetryPolicy = field(default_factory=RetryPolicy)
    ordering: Ordering = "key"
    exclusive: bool = True
    ack_wait: float = 10.0
    max_held: int = 5000
    max_parallel: int = 64
    start: DeliverPolicy = DeliverPolicy.NEW
    drain_timeout: float = 5.0


class SinkRunner:
    """Runs ``sink`` over ``feeds`` while this replica holds its lease (or always, if not exclusive)."""

    def __init__(
        self,
        js: JetStreamContext,
        sink: Sink,
        feeds: list[FeedSpec],
        *,
        node: str,
        options: RunnerOptions | None = None,
        lease: Lease | None = None,
        dead_letter: DeadLetterPublisher | None = None,
        flush: Callable[[], Awaitable[None]] | None = None,
        on_lead: Callable[[bool], Awaitable[None]] | None = None,
    ) -> None:
        """``on_lead(True)`` once this replica delivers the sink, ``on_lead(False)`` after it stopped.

        (A FIFO's reader script lives in between: ``fifo_readers``.)  Awaited;
        what it raises is logged, never stops the delivery.
        """
        self.js = js
        self.sink = sink
        self.specs = feeds
        self.node = node
        self.options = options or RunnerOptions()
        self.lease = lease
        self.dead_letter = dead_letter
        self.flush = flush
        self.on_lead = on_lead
        self.stats = SinkStats()
        self.leading = False
        self._dispatcher: KeyedDispatcher | None = None
        self._feeds: list[ConsumerFeed] = []
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self._finished = asyncio.Event()
        self._handovers: set[asyncio.Task[Sink]] = set()
        self._retiring: set[asyncio.Task[None]] = set()

    def _build(self) -> None:
        o = self.options
        self._dispatcher = KeyedDispatcher(
            self.sink,
            node=self.node,
            policy=o.policy,
            ordering=o.ordering,
            max_parallel=o.max_parallel,
            dead_letter=self.dead_letter,
            stats=self.stats,
        )
        self._feeds = [
            ConsumerFeed(
                self.js,
                self._dispatcher,
                stream=spec.stream,
                durable=durable_name(self.sink.name),
                filter_subjects=spec.filter_subjects,
                ack_wait=o.ack_wait,
                max_held=o.max_held,
                start=o.start,
            )
            for spec in self.specs
        ]

    async def missing_consumers(self) -> list[str]:
        """The consumers of this sink that do not exist (yet): an admin provisions them, the sink waits."""
        missing: list[str] = []
        for spec in self.specs:
            try:
                await self.js.consumer_info(spec.stream, durable_name(self.sink.name))
            except NotFoundError:
                missing.append(durable_name(self.sink.name))
        return missing

    async def run(self) -> None:
        """Lead, consume, and start over whenever the lease is lost; until ``stop`` or cancellation."""
        try:
            while not self._stopping:
                if self.lease is not None:
                    await self.lease.acquire()
                    if self._stop_requested():  # won while ``stop`` ran (a reload removed the sink)
                        await self.lease.release()
                        break
                await self._lead()
                if not self._stopping:
                    await asyncio.sleep(0.5)
        finally:
            self._finished.set()

    def _stop_requested(self) -> bool:
        """``stop`` was called; a call, so a check after an await is not narrowed away by the type checker."""
        return self._stopping

    async def _lead(self) -> None:
        await self._settle()  # a sink swapped meanwhile has taken over before the new dispatcher uses it
        self._build()
        self.leading = True
        await self._tell_lead(True)
        self._tasks = [asyncio.create_task(feed.run()) for feed in self._feeds]
        if self.lease is not None:
            self._tasks.append(asyncio.create_task(self.lease.hold()))
        try:
            done, _ = await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if not task.cancelled() and (exc := task.exception()) is not None:
                    log.error("sink %s: %s: %s; restarting", self.sink.name, type(exc).__name__, exc)
        finally:
            await self._cancel(self._tasks)
            dispatcher = self._dispatcher
            if dispatcher is not None:
                if self._stopping:  # graceful: finish what is in hand, so it is acked
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(dispatcher.wait_idle(), self.options.drain_timeout)
                await dispatcher.abort()  # whatever is left is not acked: redelivered to the next holder
            self.leading = False
            await self._tell_lead(False)

    async def _tell_lead(self, leading: bool) -> None:
        if self.on_lead is None:
            return
        try:
            await self.on_lead(leading)
        except Exception as exc:
            log.error("sink %s: on_lead(%s) failed: %s: %s", self.sink.name, leading, type(exc).__name__, exc)

    def swap(self, sink: Sink) -> None:
        """Deliver with ``sink`` from now on (same name, same consumer); the old one closes once idle.

        Returns at once: what the old sink is running finishes on it in the
        background, and every attempt that starts from now on goes to ``sink``
        (after a ``HandoverSink`` took the old one's state over).
        """
        if sink.name != self.sink.name:
            raise ValueError(f"a swap keeps the sink's name (its consumer): {self.sink.name} → {sink.name}")
        if self._dispatcher is None:
            self._build()  # the dispatcher is where handover happens, even before the first lead
        assert self._dispatcher is not None
        self.sink = sink
        handover = self._dispatcher.swap(sink)
        self._handovers.add(handover)
        handover.add_done_callback(self._handovers.discard)
        retiring = asyncio.create_task(self._retire(handover), name=f"retire-{sink.name}")
        self._retiring.add(retiring)
        retiring.add_done_callback(self._retiring.discard)

    async def _retire(self, handover: asyncio.Task[Sink]) -> None:
        previous = await handover
        if isinstance(previous, ClosableSink) and previous is not self.sink:
            try:
                await previous.close()
            except Exception as exc:
                log.warning("sink %s: closing its previous definition failed: %s", self.sink.name, exc)

    async def _settle(self) -> None:
        """Until every swap so far has handed over (prompt when no dispatcher is delivering)."""
        while self._handovers:
            await asyncio.wait(set(self._handovers))

    async def stop(self) -> None:
        """Graceful: stop fetching, let what is in hand finish (``drain_timeout``), flush acks, release."""
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        if self.leading or self.lease is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._finished.wait(), self.options.drain_timeout + 2.0)
        if self.flush is not None:
            with contextlib.suppress(Exception):
                await self.flush()
        if self.lease is not None:
            await self.lease.release()
        if self._retiring:  # old definitions swapped out by a reload: idle now that delivering stopped
            await asyncio.wait(set(self._retiring), timeout=self.options.drain_timeout)
        if isinstance(self.sink, ClosableSink):
            with contextlib.suppress(Exception):
                await self.sink.close()

    async def status(self) -> dict[str, object]:
        """Backlog (from the consumer), what is held here, counters and last outcomes."""
        backlog: dict[str, object] = {}
        for feed in self._feeds:
            try:
                backlog[feed.stream] = await feed.backlog()
            except Exception as exc:
                backlog[feed.stream] = {"error": str(exc)}
        return {
            "consumer": durable_name(self.sink.name),
            "consumer_missing": any(f.missing for f in self._feeds),
            "leading": self.leading,
            "held": self._dispatcher.held if self._dispatcher is not None else 0,
            "backlog": backlog,
            **self.stats.as_dict(),
        }

    @staticmethod
    async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
