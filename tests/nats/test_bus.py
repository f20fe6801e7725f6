"""The bus against a real nats-server: round trips, stream, KV, micro endpoints, overflow."""

from __future__ import annotations

import asyncio

import msgspec
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.errors import KeyNotFoundError

from shared.bus import Publisher, connect, micro_name, register_service
from shared.events import (
    EVENT_STREAM,
    MSG_ID_HEADER,
    STATE_BUCKET,
    Event,
    InstanceState,
    OutboxOverflow,
    ReloadReply,
    ServiceStatus,
    TrackerKind,
    TrackerResult,
    VrrpState,
    decode,
    decode_for_subject,
    instance_subject,
    is_durable,
    kv_key_for_subject,
    msg_id,
    outbox_overflow_subject,
    reload_subject,
    status_subject,
    subject_for,
    tracker_subject,
)
from shared.lab.nats import NatsServer
from shared.lab.wait import await_until
from tests.nats.events_sample import every_event, instance

pytestmark = pytest.mark.nats


async def test_every_event_round_trips_through_bus_stream_and_kv(nc: Client, node: str) -> None:
    received: list[Msg] = []
    sub = await nc.subscribe("lifeline.*.>", cb=_collect(received))
    publisher = Publisher(node)
    await publisher.start(nc)
    sent = [publisher.publish(e) for e in every_event()]
    assert await publisher.flush(10)
    await nc.flush()
    await await_until(
        "every event", lambda: len([m for m in received if _ours(m, publisher)]) >= len(sent), 5.0
    )
    await sub.unsubscribe()

    ours = [m for m in received if _ours(m, publisher)]
    assert [decode_for_subject(m.subject, m.data) for m in ours] == sent
    assert [m.subject for m in ours] == [subject_for(e) for e in sent]

    js = nc.jetstream()
    kv = await js.key_value(STATE_BUCKET)
    for event in sent:
        subject = subject_for(event)
        entry = await kv.get(kv_key_for_subject(subject))
        assert entry.value is not None
        assert decode(entry.value) == event
        if is_durable(event):
            stored = await js.get_last_msg(EVENT_STREAM, subject)
            assert decode(stored.data or b"") == event
            assert stored.headers is not None and stored.headers[MSG_ID_HEADER] == msg_id(event)
    assert publisher.counters.published == len(sent)
    assert publisher.counters.dropped == publisher.counters.rejected == 0
    await publisher.close()


async def test_kv_holds_the_latest_state(nc: Client, node: str) -> None:
    publisher = Publisher(node)
    await publisher.start(nc)
    publisher.publish(instance("VI_1", VrrpState.BACKUP, 1))
    publisher.publish(instance("VI_1", VrrpState.MASTER, 2))
    last = publisher.publish(instance("VI_1", VrrpState.FAULT, 3))
    for ok in (True, False):
        tracker = publisher.publish(TrackerResult(tracker="eth1", kind=TrackerKind.INTERFACE, ok=ok))
    assert await publisher.flush(10)

    kv = await nc.jetstream().key_value(STATE_BUCKET)
    entry = await kv.get(kv_key_for_subject(instance_subject(node, "VI_1")))
    assert decode(entry.value or b"", InstanceState) == last
    entry = await kv.get(kv_key_for_subject(tracker_subject(node, "eth1")))
    assert decode(entry.value or b"", TrackerResult) == tracker
    assert not tracker.ok
    await publisher.close()


async def test_withdraw_deletes_the_key_after_the_events_queued_before_it(nc: Client, node: str) -> None:
    """Queued while NATS is not attached yet: the deletion must still land after the heartbeats."""
    publisher = Publisher(node)
    subject = tracker_subject(node, "gone")
    for _ in range(20):
        publisher.publish(TrackerResult(tracker="gone", kind=TrackerKind.SCRIPT, ok=True, changed=False))
    publisher.withdraw(subject)
    kept = publisher.publish(TrackerResult(tracker="kept", kind=TrackerKind.SCRIPT, ok=True))
    await publisher.start(nc)
    assert await publisher.flush(10)
    kv = await nc.jetstream().key_value(STATE_BUCKET)
    with pytest.raises(KeyNotFoundError) as deleted:
        await kv.get(kv_key_for_subject(subject))
    assert deleted.value.op == "DEL"  # a tombstone watchers see, not a key that never was
    entry = await kv.get(kv_key_for_subject(tracker_subject(node, "kept")))
    assert decode(entry.value or b"", TrackerResult) == kept
    assert publisher.counters.published == 21 and publisher.counters.rejected == 0
    await publisher.close()


async def test_micro_status_and_reload_answer_on_node_unique_subjects(nats_server: NatsServer) -> None:
    """Two nodes' vrrp services share one server; each status subject reaches its own node only."""
    clients = [await connect(nats_server.url, f"pytest-{n}", reconnect_wait=0.1) for n in ("a", "b")]
    reloads: list[bytes] = []

    async def reload(body: bytes) -> ReloadReply:
        reloads.append(body)
        return ReloadReply(ok=False, errors=["keepalived.conf:3: unknown keyword"])

    try:
        publishers = []
        for client, node in zip(clients, ("node-a.example", "node-b.example"), strict=True):
            publisher = Publisher(node)
            publishers.append(publisher)

            async def status(node: str = node) -> dict[str, object]:
                return {"instances": {"VI_1": "MASTER" if node.startswith("node-a") else "BACKUP"}}

            await register_service(
                client,
                node=node,
                service="vrrp",
                version="0.1.0",
                status=status,
                reload=reload,
                publisher=publisher,
            )
        asker = clients[0]
        for node, state in (("node-a.example", "MASTER"), ("node-b.example", "BACKUP")):
            for _ in range(3):  # queue group "q" must not route to the other node
                msg = await asker.request(status_subject(node, "vrrp"), b"", timeout=2)
                assert not msg.headers, msg.headers
                reply = msgspec.json.decode(msg.data, type=ServiceStatus)
                assert reply.node == node
                assert reply.detail == {"instances": {"VI_1": state}}
                assert reply.bus is not None and reply.bus.published == 0
        msg = await asker.request(reload_subject("node-b.example", "vrrp"), b"check", timeout=2)
        assert msgspec.json.decode(msg.data, type=ReloadReply).errors == [
            "keepalived.conf:3: unknown keyword"
        ]
        assert reloads == [b"check"]

        # discovery: $SRV.PING.<name> reaches both nodes' services
        inbox = asker.new_inbox()
        pings: list[Msg] = []
        sub = await asker.subscribe(inbox, cb=_collect(pings))
        await asker.publish(f"$SRV.PING.{micro_name('vrrp')}", b"", reply=inbox)
        await await_until("two pings", lambda: len(pings) >= 2, 5.0)
        await sub.unsubscribe()
        nodes = {msgspec.json.decode(m.data)["metadata"]["node"] for m in pings}
        assert {"node-a.example", "node-b.example"} <= nodes
    finally:
        for client in clients:
            await client.close()


async def test_overflow_drops_oldest_and_counts(nats_server_factory: object) -> None:
    server: NatsServer = nats_server_factory()  # type: ignore[operator]
    nc = await connect(server.url, "pytest-overflow", reconnect_wait=0.1)
    publisher = Publisher("overflow", max_queued=10, ack_timeout=0.5)
    try:
        await publisher.start(nc)
        await asyncio.wait_for(publisher.ready.wait(), 10)
        await server.stop_async()
        sent = [publisher.publish(instance(f"VI_{n % 3}", n=n)) for n in range(25)]
        assert publisher.counters.dropped == 15
        assert publisher.counters.queued == 10
        await server.start_async()
        assert await publisher.flush(20)
        seqs = await _stream_seqs(nc)
        # the newest ten, in order (the gap shows the loss), then the announcement of the loss
        assert seqs == [e.seq for e in sent[-10:]] + [26]
        overflow = await nc.jetstream().get_last_msg(EVENT_STREAM, outbox_overflow_subject("overflow", "bus"))
        assert decode(overflow.data or b"", OutboxOverflow).dropped == 15
        assert publisher.counters.published == 11
    finally:
        await publisher.close()
        await nc.close()


# ---------------------------------------------------------------------- helpers


def _collect(into: list[Msg]):  # type: ignore[no-untyped-def]
    async def cb(msg: Msg) -> None:
        into.append(msg)

    return cb


def _ours(msg: Msg, publisher: Publisher) -> bool:
    return msg.subject.startswith("lifeline.") and decode(msg.data).boot_id == publisher.boot_id


async def _stream_seqs(nc: Client) -> list[int]:
    """Every event in the (private) stream in stream order, as publisher seq numbers."""
    js = nc.jetstream()
    info = await js.stream_info(EVENT_STREAM)
    events: list[Event] = []
    for stream_seq in range(info.state.first_seq, info.state.last_seq + 1):
        raw = await js.get_msg(EVENT_STREAM, stream_seq, direct=True)
        events.append(decode(raw.data or b""))
    return [e.seq for e in events]
