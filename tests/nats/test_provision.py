"""Provisioning against a real nats-server: idempotent, upgrading, merging, pruning; services wait for it.

The services may create nothing on the bus (docs/security.md); these show
that what the admin's ``provision`` makes is what they use, and that a
service on an unprovisioned server says so and goes on once it is done.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from pathlib import Path

import nats
import pytest
from nats.js.api import StreamConfig

from shared.bus import Publisher
from shared.bus.provision import ConsumerPlan, event_stream_config, node_plan, provision, subject_matches
from shared.events import (
    EVENT_STREAM,
    LEASE_BUCKET,
    REPLICA_STREAM,
    STATE_BUCKET,
    encode_token,
)
from shared.lab.nats import NatsServer
from tests.nats.events_sample import instance

pytestmark = pytest.mark.nats


@pytest.fixture
def bare(tmp_path: Path) -> NatsServer:
    server = NatsServer(tmp_path / "nats", provision=False)
    server.start()
    yield server  # type: ignore[misc]
    server.kill()


def consumer(node: str, sink: str) -> ConsumerPlan:
    return ConsumerPlan(f"notifier_{sink}", (f"lifeline.{encode_token(node)}.vrrp.>",))


async def test_provisioning_twice_changes_nothing_the_second_time(bare: NatsServer) -> None:
    nc = await nats.connect(bare.url)
    try:
        first = await provision(nc, node_plan("p1", [consumer("p1", "mail")]))
        again = await provision(nc, node_plan("p1", [consumer("p1", "mail")]))
    finally:
        await nc.close()
    made = {line.split(":")[0] for line in first.lines}
    assert made == {
        f"stream {EVENT_STREAM}",
        "stream LIFELINE_NOTIFY_DEAD",
        f"stream {REPLICA_STREAM}",
        f"bucket {STATE_BUCKET}",
        f"bucket {LEASE_BUCKET}",
        "consumer notifier_mail",
    }
    assert all(line.endswith(": created") for line in first.lines), first.lines
    assert not again.changed, again.lines


async def test_an_older_stream_is_upgraded_and_nodes_merge(bare: NatsServer) -> None:
    nc = await nats.connect(bare.url)
    js = nc.jetstream()
    try:
        old = dataclasses.replace(event_stream_config("p1"), max_age=3600.0, allow_direct=False)
        await js.add_stream(old)
        report = await provision(nc, node_plan("p2"))
        info = await js.stream_info(EVENT_STREAM)
    finally:
        await nc.close()
    assert f"stream {EVENT_STREAM}: updated" in report.lines
    assert info.config.allow_direct and info.config.max_age == event_stream_config().max_age
    subjects = info.config.subjects or []
    for node in ("p1", "p2"):
        assert any(s.startswith(f"lifeline.{node}.") for s in subjects), subjects


async def test_a_sink_no_longer_configured_loses_its_consumer_on_its_node_only(bare: NatsServer) -> None:
    nc = await nats.connect(bare.url)
    js = nc.jetstream()
    try:
        await provision(nc, node_plan("p1", [consumer("p1", "mail"), consumer("p1", "old")]))
        await provision(nc, node_plan("p2", [consumer("p2", "other")]))  # another node shares the server
        report = await provision(nc, node_plan("p1", [consumer("p1", "mail")]))
        names = sorted(c.name for c in await js.consumers_info(EVENT_STREAM))
    finally:
        await nc.close()
    assert "consumer notifier_old: deleted (no sink asks for it)" in report.lines
    assert names == ["notifier_mail", "notifier_other"]


async def test_the_replica_stream_republishes_without_the_reply_subject(bare: NatsServer) -> None:
    nc = await nats.connect(bare.url)
    got: list[tuple[str, str, dict[str, str]]] = []
    try:
        await provision(nc, node_plan("p1"))

        async def heard(msg: nats.aio.msg.Msg) -> None:
            got.append((msg.subject, msg.reply, dict(msg.headers or {})))

        await nc.subscribe("lifeline.p1.replicas.checker.heard.*", cb=heard)
        await nc.publish("lifeline.p1.replicas.checker.say.beat", b"{}", reply="lifeline.p1.ctl.vrrp.clear")
        await nc.flush()
        for _ in range(50):
            if got:
                break
            await asyncio.sleep(0.05)
    finally:
        await nc.close()
    ((subject, reply, headers),) = got
    assert subject == "lifeline.p1.replicas.checker.heard.beat" and reply == ""
    assert headers["Nats-Stream"] == REPLICA_STREAM
    assert headers["Nats-Subject"] == "lifeline.p1.replicas.checker.say.beat"


async def test_a_publisher_waits_for_provisioning_and_says_so(
    bare: NatsServer, caplog: pytest.LogCaptureFixture
) -> None:
    nc = await nats.connect(bare.url)
    publisher = Publisher("p3", max_retry_wait=0.1)
    try:
        with caplog.at_level(logging.ERROR, logger="lifeline.bus"):
            await publisher.start(nc)
            event = publisher.publish(instance("VI_1"))
            assert not await publisher.flush(1.0)
        assert publisher.missing is not None
        assert any("does not exist: run `lifeline bus provision`" in r.getMessage() for r in caplog.records)
        await asyncio.to_thread(bare.provision_now)  # what the admin does: every node's streams and buckets
        assert await publisher.flush(10)
        stored = await nc.jetstream().get_last_msg(EVENT_STREAM, "lifeline.p3.vrrp.state.VI_1")
        assert stored.data and event.boot_id.encode() in stored.data
        assert publisher.missing is None
    finally:
        await publisher.close()
        await nc.close()


@pytest.mark.parametrize(
    ("pattern", "subject", "match"),
    [
        ("lifeline.*.vrrp.>", "lifeline.n1.vrrp.>", True),
        ("lifeline.*.vrrp.>", "lifeline.n1.vrrp", False),
        ("lifeline.*.vrrp.*", "lifeline.n1.vrrp.>", False),
        ("lifeline.n1.vrrp.>", "lifeline.n1.vrrp.state.VI_1", True),
        ("lifeline.n1.health.>", "lifeline.n1.vrrp.state.VI_1", False),
    ],
)
def test_subject_matches(pattern: str, subject: str, match: bool) -> None:
    assert subject_matches(pattern, subject) is match


def test_configs_are_what_the_services_rely_on() -> None:
    streams = {s.name: s for s in node_plan("n").streams}
    assert isinstance(streams[EVENT_STREAM], StreamConfig) and streams[EVENT_STREAM].allow_direct
    replicas = streams[REPLICA_STREAM]
    assert replicas.no_ack and replicas.republish is not None and not replicas.allow_direct
    assert all(b.direct for b in node_plan("n").buckets)  # the services read them by direct get


async def test_a_consumer_whose_sink_reads_more_or_waits_longer_is_updated(bare: NatsServer) -> None:
    nc = await nats.connect(bare.url)
    js = nc.jetstream()
    try:
        await provision(nc, node_plan("p1", [consumer("p1", "mail")]))
        wider = dataclasses.replace(
            consumer("p1", "mail"),
            filter_subjects=("lifeline.p1.vrrp.>", "lifeline.p1.health.>"),
            ack_wait=4.0,
        )
        report = await provision(nc, node_plan("p1", [wider]))
        info = await js.consumer_info(EVENT_STREAM, "notifier_mail")
    finally:
        await nc.close()
    assert "consumer notifier_mail: updated" in report.lines
    assert sorted(info.config.filter_subjects or []) == sorted(wider.filter_subjects)
    assert info.config.ack_wait == 4.0
