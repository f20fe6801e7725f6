"""The checker service end to end with a real nats-server: events on the bus as things go down and up."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import nats
import pytest

from services.checker.__main__ import main as checker_main
from shared.events import Event, RealServerHealth, ServiceStatus, TrackerResult, status_subject
from shared.exit_codes import Exit
from shared.lab.nats import NatsServer, free_port
from tests.checker.servers import HttpServer
from tests.checker.service_support import Recorder, hanging_listener, start_service


def is_rs(real: str, up: bool | None = None) -> Callable[[Event], bool]:
    return lambda e: isinstance(e, RealServerHealth) and e.real == real and (up is None or e.up is up)


def is_tr(name: str, ok: bool) -> Callable[[Event], bool]:
    return lambda e: isinstance(e, TrackerResult) and e.tracker == name and e.ok is ok


def node_name() -> str:
    return f"t{uuid.uuid4().hex[:8]}"


def rs_block(port: int, check: str) -> str:
    return f"""
  real_server 127.0.0.1 {port} {{
    {check} {{
      connect_timeout 0.3
      retry 0
      warmup 0
      delay_loop 0.3
      {"url { path /ok }" if check == "HTTP_GET" else ""}
    }}
  }}"""


async def test_real_servers_go_down_and_up_with_events(tmp_path: Path, nats_server: NatsServer) -> None:
    up_port, refuse_port = free_port(), free_port()
    hang_srv, hang_port, fillers = hanging_listener()
    http = await HttpServer().start()
    accept = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", up_port)
    conf = tmp_path / "k.conf"
    conf.write_text(f"""
virtual_server 127.0.0.1 80 {{
  delay_loop 0.3
  protocol TCP
  lb_algo rr
  lb_kind NAT
{rs_block(up_port, "TCP_CHECK")}
{rs_block(refuse_port, "TCP_CHECK")}
{rs_block(hang_port, "TCP_CHECK")}
{rs_block(http.port, "HTTP_GET")}
}}
""")
    node = node_name()
    rec = await Recorder().start(nats_server.url, node)
    svc = await start_service(conf, node, nats_server.url)
    try:
        await rec.arrival(is_rs(f"127.0.0.1:{up_port}", True))
        _, hung = await rec.arrival(is_rs(f"127.0.0.1:{hang_port}"))
        assert isinstance(hung, RealServerHealth) and not hung.up and hung.detail == "timeout"
        _, refused = await rec.arrival(is_rs(f"127.0.0.1:{refuse_port}"))
        assert isinstance(refused, RealServerHealth) and not refused.up and "ECONNREFUSED" in refused.detail
        await rec.arrival(is_rs(f"127.0.0.1:{http.port}", True))
        # never a default "up" for the servers that were down from the start
        early = rec.reals(f"127.0.0.1:{refuse_port}") + rec.reals(f"127.0.0.1:{hang_port}")
        assert not any(e.up for e in early)

        # down -> up: the refused one starts listening, the hung one drains its queue
        late = await asyncio.start_server(lambda r_, w: w.close(), "127.0.0.1", refuse_port)
        for c in fillers:
            c.close()
        hang_srv.close()
        hang_again = await asyncio.start_server(lambda r_, w: w.close(), "127.0.0.1", hang_port)
        for port in (refuse_port, hang_port):
            _, ev = await rec.arrival(is_rs(f"127.0.0.1:{port}", True))
            assert isinstance(ev, RealServerHealth) and ev.changed

        # up -> down: stop the HTTP server and the accepting listener
        n = len(rec.events)
        await http.stop()
        accept.close()
        for port in (http.port, up_port):
            _, ev = await rec.arrival(is_rs(f"127.0.0.1:{port}", False), since=n)
            assert isinstance(ev, RealServerHealth) and ev.changed
        # heartbeats: unchanged state repeats with changed=False
        await asyncio.sleep(0.8)
        beats = [e for e in rec.reals(f"127.0.0.1:{up_port}")[-3:]]
        assert beats and all(not e.up and not e.changed for e in beats[1:])

        # status: every check with state, last result, latency and counters
        nc = await nats.connect(nats_server.url)
        reply = await nc.request(status_subject(node, "checker"), b"", timeout=2)
        await nc.close()
        import msgspec

        status = msgspec.json.decode(reply.data, type=ServiceStatus)
        rows = status.detail["real_servers"]
        assert isinstance(rows, list) and len(rows) == 4
        row = next(x for x in rows if x["real"] == f"127.0.0.1:{up_port}")
        assert row["state"] == "down" and row["last_latency_ms"] is not None
        assert row["counters"]["probes"] >= 2 and row["last_result"]["ok"] is False
        late.close()
        hang_again.close()
    finally:
        await svc.stop()
        await rec.close()


async def test_trackers_through_the_service(tmp_path: Path, nats_server: NatsServer) -> None:
    tag = f"lifeline-svc-{uuid.uuid4().hex[:8]}"
    daemon = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", tag])
    flag, value = tmp_path / "flag", tmp_path / "value"
    value.write_text("2\n")
    chk = tmp_path / "chk.sh"
    chk.write_text(f"#!/bin/sh\ntest ! -e {flag}\n")
    chk.chmod(0o755)
    conf = tmp_path / "k.conf"
    conf.write_text(f"""
global_defs {{
  script_user root
}}
vrrp_script chk {{
  script "{chk}"
  interval 0.2
  weight 10
}}
vrrp_track_process daemon {{
  process {sys.executable} -c "import time; time.sleep(60)" {tag}
  full_command
  weight -20
}}
track_file prio {{
  file {value}
  weight 3
}}
""")
    node = node_name()
    rec = await Recorder().start(nats_server.url, node)
    svc = await start_service(conf, node, nats_server.url)
    try:
        _, ok = await rec.arrival(is_tr("chk", True))
        assert isinstance(ok, TrackerResult) and ok.contribution == 10
        await rec.arrival(is_tr("daemon", True))
        _, f = await rec.arrival(
            lambda e: isinstance(e, TrackerResult) and e.tracker == "prio" and e.value == 2
        )
        assert isinstance(f, TrackerResult) and f.contribution == 6

        flag.touch()
        _, ko = await rec.arrival(is_tr("chk", False))
        assert isinstance(ko, TrackerResult) and ko.changed and ko.contribution == 0 and ko.exit_code == 1
        flag.unlink()
        await rec.arrival(is_tr("chk", True), since=len(rec.events))

        t0 = time.perf_counter()
        daemon.kill()
        at, dead = await rec.arrival(is_tr("daemon", False), timeout=2)
        assert (at - t0) * 1000 < 500  # death to event on the bus
        assert isinstance(dead, TrackerResult) and dead.contribution == -20 and dead.changed
        daemon.wait()
        daemon = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", tag])
        await rec.arrival(is_tr("daemon", True), since=len(rec.events), timeout=3)

        value.write_text("-5\n")
        _, f = await rec.arrival(
            lambda e: isinstance(e, TrackerResult) and e.tracker == "prio" and e.value == -5
        )
        assert isinstance(f, TrackerResult) and f.contribution == -15 and f.changed
    finally:
        daemon.kill()
        daemon.wait()
        await svc.stop()
        await rec.close()


async def test_a_restart_publishes_nothing_false(tmp_path: Path, nats_server: NatsServer) -> None:
    """Down before the restart, down after: the new process never says "up", and says no change."""
    port = free_port()
    conf = tmp_path / "k.conf"
    conf.write_text(f"""
virtual_server 127.0.0.1 81 {{
  protocol TCP
  lb_algo rr
  lb_kind NAT
{rs_block(port, "TCP_CHECK")}
}}
""")
    node = node_name()
    rec = await Recorder().start(nats_server.url, node)
    svc = await start_service(conf, node, nats_server.url)
    await rec.arrival(lambda e: isinstance(e, RealServerHealth) and not e.up)
    await svc.stop()
    n = len(rec.events)
    svc = await start_service(conf, node, nats_server.url)
    try:
        _, first = await rec.arrival(lambda e: isinstance(e, RealServerHealth), since=n)
        assert isinstance(first, RealServerHealth) and not first.up and not first.changed
        await asyncio.sleep(0.7)
        assert not any(isinstance(e, RealServerHealth) and (e.up or e.changed) for _, e in rec.events[n:])
    finally:
        await svc.stop()
        await rec.close()


def test_user_errors_give_a_message_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert checker_main(["--config", str(tmp_path / "missing.conf"), "--node", "x"]) == Exit.CONFIG
    bad = tmp_path / "bad.conf"
    bad.write_text("vrrp_script s {\n  script\n}\n")
    assert checker_main(["--config", str(bad), "--node", "x"]) == Exit.CONFIG
    err = capsys.readouterr().err
    assert "Traceback" not in err and "checker:" in err
