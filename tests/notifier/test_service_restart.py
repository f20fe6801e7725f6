"""The notifier as real processes: ``kill -9`` mid-burst then restart, and replicas sharing a sink.

Delivery is at-least-once: an event whose script ran (or was running) when the
process died is run again after the restart, with the same ``LIFELINE_SEQ``.
So the tests assert that the *set* of seqs is complete, that a repeat is only
ever a repeat of the same seq, and that each instance's scripts ran in order
before the kill and in order after it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgspec
import pytest

from shared.events import status_subject
from shared.lab.nats import NatsServer
from shared.lab.wait import await_until
from tests.notifier.test_delivery_support import (
    NotifierProcess,
    flip,
    instance_block,
    lines,
    publisher,
    recorder,
    seqs,
    service,
    start,
    transition,
    write_config,
)

pytestmark = pytest.mark.nats

INSTANCES = 4
EVENTS = 200


def by_instance(entries: list[str]) -> dict[str, list[int]]:
    runs: dict[str, list[int]] = {}
    for line in entries:
        words = line.split()
        runs.setdefault(words[1], []).append(int(words[-2][4:]))
    return runs


async def test_kill_9_during_a_burst_then_restart_loses_nothing(
    tmp_path: Path, server: NatsServer, nc: Any
) -> None:
    out = tmp_path / "out"
    rec = recorder(tmp_path / "rec.sh", out, sleep=0.01)
    conf = write_config(
        tmp_path / "k.conf", instances=[instance_block(f"VI_{n}", 50 + n, str(rec)) for n in range(INSTANCES)]
    )
    proc = NotifierProcess(conf, "n1", server.url, tmp_path / "notifier.log")
    await proc.start()
    try:
        pub = await publisher(nc, "n1")
        for i in range(EVENTS):
            pub.publish(transition(f"VI_{i % INSTANCES}", flip(i // INSTANCES)))
        await await_until("the burst to be under way", lambda: len(lines(out)) >= 40, 20)
        proc.kill()
        await asyncio.sleep(0.3)  # scripts already started finish on their own (own session)
        before = lines(out)
        assert len(before) < EVENTS, "the burst finished before the kill; nothing was tested"
        await proc.start()
        # the scripts in hand at the kill left "running" claims: taken over once stale (5 s, STALE_AFTER)
        await await_until("every seq", lambda: set(seqs(out)) >= set(range(1, EVENTS + 1)), 45)
        await asyncio.sleep(0.3)
        after = lines(out)[len(before) :]
        assert sorted(set(seqs(out))) == list(range(1, EVENTS + 1))  # none lost
        for part in (before, after):
            for name, order in by_instance(part).items():
                assert order == sorted(order), f"{name} out of order: {order}"
        repeats = len(seqs(out)) - EVENTS
        assert repeats <= 2 * INSTANCES  # only what was in hand at the kill runs again
        await pub.close()
    finally:
        proc.terminate()


async def test_two_replicas_share_the_sinks_each_event_delivered_once(
    tmp_path: Path, server: NatsServer, nc: Any
) -> None:
    out = tmp_path / "out"
    rec = recorder(tmp_path / "rec.sh", out)
    conf = write_config(
        tmp_path / "k.conf", instances=[instance_block(f"VI_{n}", 50 + n, str(rec)) for n in range(INSTANCES)]
    )
    first, second = service(conf, "n1", server.url), service(conf, "n1", server.url)
    await start(first)
    await start(second)
    try:
        pub = await publisher(nc, "n1")
        for i in range(100):
            pub.publish(transition(f"VI_{i % INSTANCES}", flip(i)))
        await await_until("100 runs", lambda: len(lines(out)) >= 100, 20)
        leader = first if first.runners[0].leading else second
        standby = second if leader is first else first
        assert not standby.runners[0].leading
        await leader.stop()  # graceful: the lease is handed over at once
        for i in range(100, 200):
            pub.publish(transition(f"VI_{i % INSTANCES}", flip(i)))
        await await_until("200 runs", lambda: len(lines(out)) >= 200, 20)
        await asyncio.sleep(0.3)
        assert sorted(seqs(out)) == list(range(1, 201))  # once each
        for name, order in by_instance(lines(out)).items():
            assert order == sorted(order), f"{name} out of order"
        assert standby.runners[0].leading and standby.runners[0].stats.delivered == 100
        reply = await nc.request(status_subject("n1", "notifier"), b"", timeout=5)
        status = msgspec.json.decode(reply.data)
        assert status["detail"]["sinks"]["script"]["backlog"]["LIFELINE_EVENTS"]["pending"] == 0
        await pub.close()
    finally:
        await first.stop()
        await second.stop()
