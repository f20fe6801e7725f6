"""The delivery core without a server: order per key, keys in parallel, retries, dead letters, acks."""

from __future__ import annotations

import asyncio

import pytest

from services.notifier.delivery.dispatcher import (
    Delivery,
    KeyedDispatcher,
    RetryPolicy,
    order_key,
)
from services.notifier.sinks.base import DeliveryContext, DeliveryError
from shared.events import DeadLetter, Event, GroupState, PoolEvent, PoolEventKind, RealServerHealth, VrrpState
from tests.notifier.test_delivery_support import flip, transition


class FakeMsg:
    def __init__(self) -> None:
        self.acks = 0
        self.progress = 0

    async def ack(self) -> None:
        self.acks += 1

    async def in_progress(self) -> None:
        self.progress += 1


class RecordingSink:
    """Records (instance, seq, attempt); fails the first ``fail`` attempts of the seqs in ``failing``."""

    def __init__(
        self, *, delay: float = 0.0, failing: set[int] | None = None, fail: int = 0, retryable: bool = True
    ):
        self.name = "rec"
        self.delay = delay
        self.failing = failing or set()
        self.fail = fail
        self.retryable = retryable
        self.seen: list[tuple[str, int, int]] = []
        self.active = 0
        self.max_active = 0

    async def deliver(self, event: Event, context: DeliveryContext) -> None:
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            await asyncio.sleep(self.delay)
            if event.seq in self.failing and context.attempt <= self.fail:
                raise DeliveryError(f"planned failure {context.attempt}", retryable=self.retryable)
            self.seen.append((getattr(event, "instance", ""), event.seq, context.attempt))
        finally:
            self.active -= 1


def delivery(instance: str, seq: int) -> Delivery:
    event = transition(instance, flip(seq))
    import msgspec

    event = msgspec.structs.replace(event, seq=seq, boot_id="b", node="n1")
    return Delivery(event=event, subject="s", stream="S", stream_seq=seq, msg=FakeMsg())


FAST = RetryPolicy(initial_delay=0.01, max_delay=0.02, jitter=0.0, max_attempts=5)


async def test_order_per_key_and_keys_in_parallel() -> None:
    sink = RecordingSink(delay=0.01)
    d = KeyedDispatcher(sink, node="n1", policy=FAST)
    items = [delivery(f"VI_{i % 4}", i) for i in range(1, 41)]
    for item in items:
        d.submit(item)
    await asyncio.wait_for(d.wait_idle(), 5)
    for name in ("VI_0", "VI_1", "VI_2", "VI_3"):
        got = [seq for inst, seq, _ in sink.seen if inst == name]
        assert got == sorted(got) and len(got) == 10
    assert sink.max_active == 4  # one per key, four keys at once
    assert all(isinstance(i.msg, FakeMsg) and i.msg.acks == 1 for i in items)


async def test_a_retrying_event_holds_back_only_its_own_key() -> None:
    sink = RecordingSink(failing={1}, fail=3)
    d = KeyedDispatcher(sink, node="n1", policy=FAST)
    for item in [delivery("VI_1", 1), delivery("VI_1", 2), delivery("VI_2", 3)]:
        d.submit(item)
    await asyncio.wait_for(d.wait_idle(), 5)
    assert [(i, s) for i, s, _ in sink.seen] == [("VI_2", 3), ("VI_1", 1), ("VI_1", 2)]
    assert sink.seen[1][2] == 4  # delivered on the fourth attempt
    assert d.stats.failed_attempts == 3 and d.stats.delivered == 3


@pytest.mark.parametrize("retryable", [True, False])
async def test_gives_up_into_a_dead_letter_then_acks_and_moves_on(retryable: bool) -> None:
    letters: list[DeadLetter] = []

    async def dead(letter: DeadLetter) -> None:
        letters.append(letter)

    sink = RecordingSink(failing={1}, fail=99, retryable=retryable)
    d = KeyedDispatcher(sink, node="n1", policy=FAST, dead_letter=dead)
    first, second = delivery("VI_1", 1), delivery("VI_1", 2)
    d.submit(first)
    d.submit(second)
    await asyncio.wait_for(d.wait_idle(), 5)
    assert [s for _, s, _ in sink.seen] == [2]
    assert len(letters) == 1 and letters[0].event.seq == 1 and letters[0].retryable is retryable
    assert letters[0].attempts == (5 if retryable else 1) and "planned failure" in letters[0].reason
    assert isinstance(first.msg, FakeMsg) and first.msg.acks == 1
    assert d.stats.dead_lettered == 1


async def test_redelivery_while_held_is_not_delivered_twice() -> None:
    sink = RecordingSink(delay=0.05)
    d = KeyedDispatcher(sink, node="n1", policy=FAST)
    original, again = delivery("VI_1", 1), delivery("VI_1", 1)
    d.submit(original)
    d.submit(again)  # JetStream handed it out again: refresh the handle only
    await asyncio.wait_for(d.wait_idle(), 5)
    d.submit(delivery("VI_1", 1))  # after the ack: acked again, not delivered
    await asyncio.sleep(0.05)
    assert len(sink.seen) == 1
    assert isinstance(again.msg, FakeMsg) and again.msg.acks == 1


async def test_global_ordering_is_one_queue() -> None:
    sink = RecordingSink(delay=0.005)
    d = KeyedDispatcher(sink, node="n1", policy=FAST, ordering="global")
    for i in range(1, 21):
        d.submit(delivery(f"VI_{i % 3}", i))
    await asyncio.wait_for(d.wait_idle(), 5)
    assert [s for _, s, _ in sink.seen] == list(range(1, 21)) and sink.max_active == 1


def test_order_keys_group_real_servers_with_their_virtual_server() -> None:
    rs = RealServerHealth(
        virtual="10.0.0.1:80/tcp", real="10.0.1.1:80", up=False, checker="TCP_CHECK", node="n"
    )  # type: ignore[arg-type]
    pool = PoolEvent(virtual="10.0.0.1:80/tcp", kind=PoolEventKind.QUORUM_DOWN, node="n")
    group = GroupState(group="G1", state=VrrpState.MASTER, node="n")
    assert order_key(rs) == order_key(pool) != order_key(group)


def test_retry_policy_backs_off_and_gives_up() -> None:
    p = RetryPolicy(initial_delay=1, multiplier=2, max_delay=5, jitter=0, max_attempts=3)
    assert [p.delay(n) for n in (1, 2, 3, 4)] == [1, 2, 4, 5]
    assert not p.exhausted(2) and p.exhausted(3)
    assert not RetryPolicy(max_attempts=0).exhausted(10**6)


def test_the_default_policy_spans_a_60s_outage_many_times_over() -> None:
    """Worst case (every delay at -jitter): the default keeps trying for minutes, not seconds."""
    policy = RetryPolicy(jitter=0.0)
    low = 1 - RetryPolicy().jitter
    span = sum(policy.delay(n) * low for n in range(1, policy.max_attempts))
    assert span > 5 * 60
    assert not policy.exhausted(8) and sum(policy.delay(n) * low for n in range(1, 8)) > 50
