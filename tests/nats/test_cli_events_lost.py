"""``lifeline events`` when NATS goes away under it: one line and exit 69, not an internal error."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import nats

from shared.events import EVENT_STREAM
from shared.lab.nats import NatsServer
from shared.lab.wait import wait_until


def test_events_exits_69_with_one_line_when_nats_stops(tmp_path: Path) -> None:
    server = NatsServer(tmp_path)
    server.start()
    lifeline = str(Path(sys.executable).with_name("lifeline"))
    tail = subprocess.Popen(
        [lifeline, "events", "--nats", server.url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_until("events subscribed", lambda: _has_consumer(server), timeout=20)
        server.kill()
        _out, err = tail.communicate(timeout=30)
    finally:
        tail.kill()
        server.kill()
    assert tail.returncode == 69, err
    assert err == f"lifeline: lost the connection to NATS at {server.url} after 0 event(s)\n"


def _has_consumer(server: NatsServer) -> bool:
    """The tail's ordered consumer exists on the server (so it really was tailing when NATS stopped)."""

    async def count() -> int:
        nc = await nats.connect(server.url)
        try:
            info = await nc.jetstream().stream_info(EVENT_STREAM)
            return info.state.consumer_count
        finally:
            await nc.close()

    return asyncio.run(count()) > 0
