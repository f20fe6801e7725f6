"""keepalived's LVS replaced by lifeline's lvs in place: the IPVS table is adopted, an open connection lives.

The step of docs/migrate-from-keepalived.md ("LVS") on the real kernel: the
real keepalived 2.2.7 (checker only, ``-C``, with ``-I``: it leaves its IPVS
services in place when it stops) programs a NAT virtual server; a client
opens a TCP connection through it; keepalived stops; lifeline's lvs starts on
the same keepalived.conf, finds the table it would have programmed and
changes nothing; the connection goes on.  Runs after the other in-VM tests
and plays node "b" once lvs b has stopped (its nats-server and user are
already there).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from functools import partial
from pathlib import Path

from services.lvs.core.desired import ServiceKey
from shared.lab.daemon import keepalived_binary
from shared.lab.wait import wait_until
from tests.kernel.inside.conftest import Env, login
from tests.kernel.inside.lab import LOG_STEP, STEP, Daemon, client_socket, sh
from tests.kernel.inside.test_ipvs import kernel

VIP, PORT, REAL = "172.16.0.100", 9100, "172.16.1.25"
KEY = ServiceKey(socket.AF_INET, socket.IPPROTO_TCP, VIP, PORT, 0)
CONFIG = f"""\
global_defs {{
    router_id migration
}}
virtual_server {VIP} {PORT} {{
    lb_algo wlc
    lb_kind NAT
    protocol TCP
    real_server {REAL} {PORT} {{
        weight 3
    }}
}}
"""


def keepalived(workdir: Path, conf: Path) -> Daemon:
    """keepalived's checker process alone (``-C``), keeping its IPVS services at stop (``-I``)."""
    pids = [
        "-p",
        str(workdir / "mig-k.pid"),
        "-c",
        str(workdir / "mig-c.pid"),
        "-r",
        str(workdir / "mig-v.pid"),
    ]
    argv = [keepalived_binary(), "-n", "-l", "-D", "-C", "-I", "-f", str(conf), *pids]
    return Daemon("keepalived-migration", argv, workdir)


def echo(sock: socket.socket, text: bytes) -> bytes:
    sock.sendall(text)
    return sock.recv(100)


def test_lifeline_lvs_adopts_keepalived_table_and_the_open_connection_survives(env: Env) -> None:
    env.lvs_b.stop()  # this test plays node b (a no-op once test_ipvs has stopped it)
    conf = env.workdir / "migration.conf"
    conf.write_text(CONFIG)
    nc = subprocess.Popen(
        ["ip", "netns", "exec", "krs25", "busybox", "nc", "-ll", "-p", str(PORT), "-e", "/bin/cat"]
    )
    ka = keepalived(env.workdir, conf)
    lvs: Daemon | None = None
    try:
        wait_until("keepalived to program the service", lambda: KEY in kernel(), 60, STEP, explain=ka.tail)
        sock = client_socket()
        sock.settimeout(10)
        sock.connect((VIP, PORT))
        assert echo(sock, b"before\n") == b"before\n"
        before = kernel()[KEY]
        assert ka.stop(signal.SIGTERM) == 0
        assert kernel().get(KEY) == before, "keepalived -I leaves its services in place"

        argv = [sys.executable, "-m", "services.lvs", "--config", str(conf), "--node", "b"]
        argv += ["--nats", env.servers["b"].url, "--state-file", str(env.workdir / "lvs-migration.json")]
        lvs = Daemon("lvs-migration", argv, env.workdir, login("lvs"))
        env.daemons.append(lvs)
        ready = partial(lvs.logged, "lifeline-lvs ready")
        wait_until("lifeline's lvs to be ready", ready, 180, LOG_STEP, explain=lvs.tail)
        start_line = next(line for line in lvs.output().splitlines() if "reconcile (start)" in line)
        env.record("migration_lvs_start", start_line.split("reconcile (start): ", 1)[1])
        assert "reconcile (start): 0 operations" in start_line, start_line
        assert kernel().get(KEY) == before, "adopted as it was: not flushed, not re-added"
        assert echo(sock, b"after\n") == b"after\n", "the connection must survive the swap"
        conns = sh("ipvsadm", "-Lnc")
        assert any("ESTABLISHED" in line and f"{REAL}:{PORT}" in line for line in conns.splitlines()), conns
        sock.close()
    finally:
        ka.stop(signal.SIGKILL)
        if lvs is not None:
            lvs.stop()  # it owns the service now: its stop removes it
        nc.kill()
