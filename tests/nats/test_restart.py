"""THE outbox test: 1,000 events across a nats-server restart arrive once each, in order."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from shared.bus import Publisher, connect
from shared.events import EVENT_STREAM, decode
from shared.lab.nats import NatsServer
from tests.nats.events_sample import instance

pytestmark = pytest.mark.nats

TOTAL = 1000
STOP_AT = 300  # server stopped after this many events were handed to the publisher
START_AT = 700  # ...and started again after this many


async def test_1000_events_survive_a_server_restart_exactly_once_in_order(
    nats_server_factory: Callable[[], NatsServer],
) -> None:
    server = nats_server_factory()
    nc = await connect(server.url, "pytest-restart", reconnect_wait=0.1)
    publisher = Publisher("restart.node", ack_timeout=0.5)
    try:
        await publisher.start(nc)
        await asyncio.wait_for(publisher.ready.wait(), 10)
        began = time.perf_counter()
        queued_while_down = 0
        for n in range(TOTAL):
            publisher.publish(instance(f"VI_{n % 7}", n=n))
            if n + 1 == STOP_AT:
                # No yield before this point: a backlog of STOP_AT events is being sent while it stops.
                await server.stop_async()
            elif n + 1 == START_AT:
                queued_while_down = publisher.counters.queued
                await server.start_async()  # same port, same store dir
            if n >= STOP_AT and n % 10 == 0:
                await asyncio.sleep(0)  # let the sender run as a real service loop would
        assert await publisher.flush(30), publisher.counters
        elapsed = time.perf_counter() - began

        js = nc.jetstream()
        info = await js.stream_info(EVENT_STREAM)
        assert info.state.messages == TOTAL
        seqs = []
        for stream_seq in range(info.state.first_seq, info.state.last_seq + 1):
            raw = await js.get_msg(EVENT_STREAM, stream_seq, direct=True)
            event = decode(raw.data or b"")
            assert event.boot_id == publisher.boot_id
            seqs.append(event.seq)
        assert seqs == list(range(1, TOTAL + 1))

        counters = publisher.counters
        assert (counters.published, counters.dropped, counters.rejected, counters.queued) == (TOTAL, 0, 0, 0)
        assert queued_while_down >= START_AT - STOP_AT  # the outage really held events back
        print(
            f"\n{TOTAL} events across restart: {elapsed:.2f}s, {queued_while_down} queued while down,"
            f" resent={counters.resent}"
        )
    finally:
        await publisher.close()
        await nc.close()


async def test_throughput_without_outage(nats_server_factory: Callable[[], NatsServer]) -> None:
    """Not a benchmark gate: records events/s of ordered, acknowledged delivery on this machine."""
    server = nats_server_factory()
    nc = await connect(server.url, "pytest-rate", reconnect_wait=0.1)
    publisher = Publisher("rate.node")
    try:
        await publisher.start(nc)
        await asyncio.wait_for(publisher.ready.wait(), 10)
        began = time.perf_counter()
        for n in range(TOTAL):
            publisher.publish(instance(f"VI_{n % 7}", n=n))
        assert await publisher.flush(30)
        rate = TOTAL / (time.perf_counter() - began)
        print(f"\n{TOTAL} events, no outage: {rate:.0f} events/s")
        assert publisher.counters.resent == 0
    finally:
        await publisher.close()
        await nc.close()
