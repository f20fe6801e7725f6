"""The republish sink against the real nats-server fixture: core NATS and a JetStream stream."""

from __future__ import annotations

import asyncio
import uuid

import nats
import pytest
from nats.js.api import StreamConfig

from services.notifier.sinks.base import DeliveryContext
from services.notifier.sinks.republish import RepublishSink
from shared.events import MSG_ID_HEADER, InstanceState, VrrpState, decode, instance_subject
from shared.lab.nats import NatsServer

pytestmark = pytest.mark.nats


def event(node: str, seq: int = 3) -> InstanceState:
    return InstanceState(
        instance="VI_1", vrid=51, interface="eth0", state=VrrpState.MASTER, base_priority=100,
        effective_priority=100, node=node, seq=seq, boot_id="boot1",
    )  # fmt: skip


async def test_republishes_under_a_prefix(nats_server: NatsServer) -> None:
    node = f"n-{uuid.uuid4().hex[:8]}"
    nc = await nats.connect(nats_server.url)
    try:
        sub = await nc.subscribe(f"mirror.lifeline.{node}.>")
        await nc.flush()
        sink = RepublishSink(nc)
        await sink.deliver(event(node), DeliveryContext(subject=instance_subject(node, "VI_1")))
        msg = await sub.next_msg(timeout=2)
        assert msg.subject == f"mirror.{instance_subject(node, 'VI_1')}"
        assert msg.headers is not None and msg.headers[MSG_ID_HEADER] == "boot1:3"
        assert decode(msg.data) == event(node)
    finally:
        await nc.close()


async def test_jetstream_target_deduplicates_redeliveries(nats_server: NatsServer) -> None:
    tag = uuid.uuid4().hex[:8]
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    stream = f"REPUB_{tag}"
    try:
        await js.add_stream(StreamConfig(name=stream, subjects=[f"repub.{tag}.>"]))
        sink = RepublishSink(nc, f"repub.{tag}.{{node}}.{{type}}", jetstream=True)
        for attempt in (1, 2, 3):  # the core re-delivers the same event
            await sink.deliver(event(f"node.{tag}"), DeliveryContext(attempt=attempt))
        await sink.deliver(event(f"node.{tag}", seq=4), DeliveryContext())
        info = await js.stream_info(stream)
        assert info.state.messages == 2
        last = await js.get_last_msg(stream, f"repub.{tag}.node=2E{tag}.instance_state")
        assert decode(last.data or b"").seq == 4
    finally:
        await asyncio.shield(js.delete_stream(stream))
        await nc.close()
