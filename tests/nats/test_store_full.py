"""JetStream's store full, then freed: ``lifeline up`` and its services ride it out and recover alone.

A real ``lifeline up`` with its JetStream store on a small tmpfs the test
mounts: the filesystem is filled until nats-server fails a write (it then
refuses every event of that stream, even after space returns, until JetStream
is reopened).  Meanwhile every service keeps running (same PIDs, no restart
loop), says so in its status (``bus.failing``, ``bus.stored``), and keeps its
events in its durable outbox.  Once the space is freed the supervisor reopens
JetStream (no nats-server restart: same PID) and the events reach the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import msgspec
import nats.errors
import pytest
from nats.aio.client import Client

from shared.bus import connect
from shared.cli.up import ADMIN_SETTINGS
from shared.events import (
    EVENT_STREAM,
    BusCounters,
    ServiceReload,
    ServiceStatus,
    decode,
    service_reload_subject,
    status_subject,
)
from shared.lab.daemon import Daemon
from shared.lab.nats import NatsServer, free_port
from shared.lab.wait import await_until, wait_until
from shared.settings import load_settings
from tests.support.up import SERVICES, Up

pytestmark = [pytest.mark.nats, pytest.mark.timeout(180)]
NODE = "store-full"
CONFIG = """
global_defs {
    notify_fifo FIFO
}
vrrp_script chk_one {
    script "/bin/true"
    interval 1
}
"""


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 64 MiB tmpfs of the test's own, unmounted at the end."""
    mount = tmp_path / "fs"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m,mode=0700", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def node_up(tmp_path: Path, store: Path) -> Up:
    """The node of this test: its config writes notify lines to a FIFO in ``tmp_path``."""
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONFIG.replace("FIFO", str(tmp_path / "notify.fifo")))
    return Up(tmp_path, conf, NODE, store)


@pytest.fixture
def up(tmp_path: Path, small_fs: Path) -> Iterator[Up]:
    node = node_up(tmp_path, small_fs / "store")
    yield node
    node.close()


def fill(path: Path) -> None:
    """Write ``path`` until the filesystem says ENOSPC."""
    chunk = b"\0" * (1024 * 1024)
    with path.open("wb", buffering=0) as f:
        try:
            while True:
                f.write(chunk)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc


async def bus_counters(nc: Client) -> list[BusCounters] | None:
    """Every service's bus counters, or None while one does not answer in time (the notifier's status
    asks JetStream about its consumers, which may take a while as JetStream is reopened)."""
    found = []
    for service in SERVICES:
        try:
            reply = await nc.request(status_subject(NODE, service), b"", timeout=5)
        except nats.errors.TimeoutError:
            return None
        bus = msgspec.json.decode(reply.data, type=ServiceStatus).bus
        assert bus is not None, f"{service} says nothing of its bus"
        found.append(bus)
    return found


async def reloads_stored(nc: Client) -> set[str]:
    """The services whose ``ServiceReload`` events the stream holds."""
    js = nc.jetstream()
    found = set()
    for service in SERVICES:
        with contextlib.suppress(Exception):
            msg = await js.get_last_msg(EVENT_STREAM, service_reload_subject(NODE, service), direct=True)
            found.add(decode(msg.data or b"", ServiceReload).service)
    return found


async def test_store_full_then_freed_events_flow_again_without_a_nats_restart(up: Up, small_fs: Path) -> None:
    def ready() -> bool:
        return all(up.count(rf"^lifeline-{s} ready$") >= 1 for s in SERVICES)

    await asyncio.to_thread(wait_until, "every service ready", ready, 60, 0.1, explain=up.text)
    before = up.all_pids()
    assert set(before) == {*SERVICES, "nats-server"}
    settings = load_settings(up.store / ADMIN_SETTINGS, env={})
    nc = await connect(settings.nats_url, "test-store-full", settings=settings, connect_timeout=5)
    try:
        assert await reloads_stored(nc) == set()
        fill(small_fs / "filler")
        up.proc.send_signal(signal.SIGHUP)  # each service publishes a ServiceReload: unstorable now

        async def all_failing() -> bool:
            counters = await bus_counters(nc)
            return counters is not None and all(c.failing and c.stored >= 1 for c in counters)

        await await_until("every service reports the failure", all_failing, 60, 0.5, explain=up.text)
        assert await reloads_stored(nc) == set()
        counters = await bus_counters(nc)
        assert counters is not None
        assert all(c.errors >= 1 and "timeout" in c.last_error.lower() for c in counters), counters

        (small_fs / "filler").unlink()

        async def recovered() -> bool:
            counters = await bus_counters(nc)
            return counters is not None and all(not c.failing and c.stored == 0 for c in counters)

        await await_until("events flow again", recovered, 60, 0.5, explain=up.text)
        assert await reloads_stored(nc) == set(SERVICES)
    finally:
        await nc.close()
    text = up.text()
    assert up.count(r"^lifeline up: JetStream reopened") == 1, text
    assert up.all_pids() == before, "no service and not nats-server may have been restarted"
    assert "exited with" not in text
    # one line when it starts failing per service, not one per attempt
    assert up.count(r"WARNING bus: publishing fails") == len(SERVICES), text
    up.proc.send_signal(signal.SIGTERM)
    assert up.proc.wait(30) == 0


def test_the_notifier_waits_for_jetstream_instead_of_exiting(tmp_path: Path) -> None:
    """A notifier started while JetStream is unavailable (disabled, its store full) waits for it.

    It used to exit 1 on the first JetStream error at start, and its supervisor
    restarted it into the same error, over and over.
    """
    port = free_port()
    without_js = NatsServer(tmp_path / "nojs", port=port, config=f"listen: 127.0.0.1:{port}\n")
    without_js.start()
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONFIG.replace("FIFO", str(tmp_path / "notify.fifo")))
    argv = [sys.executable, "-m", "services.notifier", "--config", str(conf), "--node", NODE]
    notifier = Daemon([*argv, "--nats", f"nats://127.0.0.1:{port}"], tmp_path / "notifier.log").start()
    try:
        log = tmp_path / "notifier.log"
        wait_until("the notifier waits", lambda: "JetStream unavailable" in log.read_text(), 30, 0.1)
        assert notifier.running, log.read_text()
        without_js.stop()
        with_js = NatsServer(tmp_path / "js", port=port)  # JetStream on, provisioned
        with_js.start()
        try:
            wait_until("the notifier ready", lambda: "lifeline-notifier ready" in log.read_text(), 30, 0.1)
            assert notifier.running and "Traceback" not in log.read_text(), log.read_text()
        finally:
            notifier.stop()
            with_js.kill()
    finally:
        notifier.stop()
        without_js.kill()
