"""Swapping a sink behind its dispatcher (a reload): between deliveries, none lost, none repeated, order kept.

No server: the dispatcher is fed ``Delivery`` objects as the feed would, and the
sinks record what they were asked.  The end-to-end version, with a real
nats-server, scripts and a FIFO, is ``test_reload.py``.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from services.notifier.delivery.dispatcher import Delivery, KeyedDispatcher, RetryPolicy
from services.notifier.delivery.runner import SinkRunner
from services.notifier.sinks.base import DeliveryContext, Sink
from shared.events import Event
from shared.lab.wait import await_until
from tests.notifier.test_delivery import FAST, FakeMsg, RecordingSink, delivery

KEYS = ("VI_0", "VI_1", "VI_2", "VI_3")


def burst(first: int, last: int) -> list[Delivery]:
    return [delivery(KEYS[i % len(KEYS)], i) for i in range(first, last + 1)]


def seqs_of(sink: RecordingSink, key: str | None = None) -> list[int]:
    return [seq for inst, seq, _ in sink.seen if key is None or inst == key]


async def test_a_swap_mid_burst_delivers_every_event_once_in_order_per_key() -> None:
    old, new = RecordingSink(delay=0.01), RecordingSink(delay=0.01)
    d = KeyedDispatcher(old, node="n1", policy=FAST)
    items = burst(1, 80)
    for item in items:
        d.submit(item)
    await await_until("the burst under way", lambda: len(old.seen) >= 12 and old.active == len(KEYS), 5)
    done_before, in_flight = len(old.seen), old.active
    handover = d.swap(new)
    more = burst(81, 160)
    for item in more:
        d.submit(item)
    await asyncio.wait_for(d.wait_idle(), 10)
    assert await handover is old
    assert len(old.seen) == done_before + in_flight  # what ran at the swap finished there, nothing more
    assert sorted(seqs_of(old) + seqs_of(new)) == list(range(1, 161))  # each once
    for key in KEYS:
        before, after = seqs_of(old, key), seqs_of(new, key)
        assert before + after == sorted(before + after), f"{key} out of order"
    assert all(cast(FakeMsg, i.msg).acks == 1 for i in items + more)


async def test_an_attempt_after_the_swap_is_the_new_sinks_even_a_retry() -> None:
    old, new = RecordingSink(failing={1}, fail=1), RecordingSink()
    policy = RetryPolicy(initial_delay=0.3, max_delay=0.3, jitter=0.0, max_attempts=5)
    d = KeyedDispatcher(old, node="n1", policy=policy)
    d.submit(delivery("VI_1", 1))
    d.submit(delivery("VI_1", 2))
    await await_until("the first attempt to fail", lambda: d.stats.failed_attempts == 1, 5)
    d.swap(new)
    await asyncio.wait_for(d.wait_idle(), 5)
    assert old.seen == []
    assert new.seen == [("VI_1", 1, 2), ("VI_1", 2, 1)]  # the retry (attempt 2), then the next in order


class Successor(RecordingSink):
    """Records when it takes over: from whom, what the predecessor still ran, what it had delivered itself."""

    def __init__(self, name: str, log: list[tuple[str, Sink, int, int]], **kw: Any) -> None:
        super().__init__(**kw)
        self.label = name
        self.log = log

    def take_over(self, previous: Sink) -> None:
        active = previous.active if isinstance(previous, RecordingSink) else -1
        self.log.append((self.label, previous, active, len(self.seen) + self.active))

    async def deliver(self, event: Event, context: DeliveryContext) -> None:
        assert any(entry[0] == self.label for entry in self.log), "delivered before taking over"
        await super().deliver(event, context)


async def test_a_successor_takes_over_after_the_last_attempt_before_its_first() -> None:
    log: list[tuple[str, Sink, int, int]] = []
    old = RecordingSink(delay=0.2)
    new = Successor("new", log, delay=0.01)
    d = KeyedDispatcher(old, node="n1", policy=FAST)
    for item in burst(1, 8):
        d.submit(item)
    await await_until("four deliveries running", lambda: old.active == len(KEYS), 5)
    d.swap(new)
    for item in burst(9, 16):
        d.submit(item)
    await asyncio.wait_for(d.wait_idle(), 5)
    assert log == [("new", old, 0, 0)]  # the old sink idle, the new one not started
    assert sorted(seqs_of(old) + seqs_of(new)) == list(range(1, 17))
    assert seqs_of(old) and seqs_of(new)


async def test_swaps_in_a_row_hand_over_in_order() -> None:
    log: list[tuple[str, Sink, int, int]] = []
    first = RecordingSink(delay=0.1)
    second, third = Successor("second", log), Successor("third", log)
    d = KeyedDispatcher(first, node="n1", policy=FAST)
    d.submit(delivery("VI_1", 1))
    await await_until("a delivery running", lambda: first.active == 1, 5)
    d.swap(second)
    d.swap(third)
    d.submit(delivery("VI_1", 2))
    await asyncio.wait_for(d.wait_idle(), 5)
    assert [(name, prev) for name, prev, _, _ in log] == [("second", first), ("third", second)]
    assert seqs_of(first) == [1] and seqs_of(third) == [2] and seqs_of(second) == []


class Closable(RecordingSink):
    def __init__(self) -> None:
        super().__init__()
        self.closed = False

    async def close(self) -> None:
        self.closed = True


async def test_the_runner_closes_the_swapped_out_sink_and_keeps_the_name() -> None:
    old, new = Closable(), Closable()
    runner = SinkRunner(cast(Any, None), old, [], node="n1")  # never leads: no JetStream needed
    runner.swap(new)
    await await_until("the old sink closed", lambda: old.closed, 5)
    assert runner.sink is new and not new.closed
    renamed = Closable()
    renamed.name = "other"
    with pytest.raises(ValueError, match="keeps the sink's name"):
        runner.swap(renamed)
