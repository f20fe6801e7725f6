"""After a restart, redelivered events enter their queues in stream order, whatever order they come back in.

JetStream redelivers a dead process's unacked messages as their ``ack_wait``
runs out, which follows when that process last touched each one, not the
stream order.  The feed holds them until all are back, then submits them in
stream order, then the newer (deferred) ones.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import msgspec

from services.notifier.delivery.dispatcher import KeyedDispatcher
from services.notifier.delivery.feed import ConsumerFeed
from shared.events import encode
from tests.notifier.test_delivery import FAST, RecordingSink
from tests.notifier.test_delivery_support import flip, transition


class Msg:
    """What the feed reads of a JetStream message."""

    def __init__(self, seq: int, delivered: int) -> None:
        event = msgspec.structs.replace(transition("VI_1", flip(seq)), seq=seq, boot_id="b", node="n1")
        self.data = encode(event)
        self.subject = "lifeline.n1.vrrp.instance.VI_1"
        self.metadata = SimpleNamespace(sequence=SimpleNamespace(stream=seq), num_delivered=delivered)

    async def ack(self) -> None: ...

    async def in_progress(self) -> None: ...


async def test_redelivered_events_are_put_back_in_stream_order() -> None:
    sink = RecordingSink()
    dispatcher = KeyedDispatcher(sink, node="n1", policy=FAST)
    feed = ConsumerFeed(Any, dispatcher, stream="S", durable="d")  # type: ignore[arg-type]
    feed._barrier, feed._expect_old = 13, 4  # as _arm_barrier finds it: 4 unacked up to seq 13
    for msg in (Msg(14, 1), Msg(12, 2), Msg(13, 2), Msg(15, 1), Msg(10, 2), Msg(11, 2)):  # JetStream's order
        await feed._take(msg)  # type: ignore[arg-type]
    assert sink.seen == []  # nothing before every old one is back
    await feed._check_barrier()
    await dispatcher.wait_idle()
    assert [seq for _, seq, _ in sink.seen] == [10, 11, 12, 13, 14, 15]
