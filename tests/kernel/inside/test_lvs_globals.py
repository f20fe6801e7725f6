"""keepalived's global IPVS keywords on a real kernel: runs inside the VM only, after ``test_ipvs.py``.

One more lvs service, node ``c``, whose IPVS table lives in namespace
``kipvs`` (``net_namespace_ipvs``) with ``lvs_flush``, ``lvs_flush_on_stop``,
``lvs_timeouts`` and a ``hashed`` sh virtual server.  lvs ``a`` keeps running
in the VM's root namespace, so every test also proves that nothing leaks out of
``kipvs``: the root table and the root timeouts stay as they were.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from functools import partial

import pytest

from services.lvs.core.desired import SVC_F_HASHED, ServiceKey, Table
from services.lvs.kernel.ipvs import Ipvs
from shared.lab.netns import in_namespace
from shared.lab.wait import wait_until
from tests.kernel.inside.conftest import Env, login, node_server
from tests.kernel.inside.lab import LOG_STEP, Daemon, sh

NS = "kipvs"
KEY_A = ServiceKey(socket.AF_INET, socket.IPPROTO_TCP, "172.16.0.100", 80, 0)
KEY_C = ServiceKey(socket.AF_INET, socket.IPPROTO_TCP, "172.16.0.131", 80, 0)
VS_C = "172.16.0.131:80/tcp"
CONF = """net_namespace_ipvs kipvs
global_defs {
    lvs_flush
    lvs_flush_on_stop
    lvs_timeouts tcp 1234 tcpfin 56
}
virtual_server 172.16.0.131 80 {
    lb_algo sh
    lb_kind NAT
    protocol TCP
    hashed
    omega
    real_server 172.16.1.24 80 {
        weight 1
    }
    real_server 172.16.1.25 80 {
        weight 1
    }
}
"""


def table(ns: str | None = None) -> Table:
    """The IPVS table over netlink, read from a socket made in ``ns`` (None: the root namespace)."""
    ipvs = Ipvs() if ns is None else in_namespace(ns, Ipvs)
    try:
        return ipvs.read_table()
    finally:
        ipvs.close()


def timeouts(ns: str | None = None) -> str:
    """``ipvsadm -L --timeout``'s line, e.g. ``Timeout (tcp tcpfin udp): 900 120 300``."""
    argv = ["ipvsadm", "-L", "--timeout"]
    return sh(*(["ip", "netns", "exec", ns, *argv] if ns else argv)).strip()


@pytest.fixture(scope="module")
def lvs_c(env: Env) -> Iterator[Daemon]:
    """A foreign service in ``kipvs`` first, then lvs c started on ``CONF``."""
    sh("ip", "netns", "add", NS)
    # IPVS refuses a NAT real server it has no route to (EINVAL): give the namespace the backends' subnet
    sh("ip", "-n", NS, "link", "add", "d0", "type", "dummy")
    sh("ip", "-n", NS, "addr", "add", "172.16.1.1/24", "dev", "d0")
    sh("ip", "-n", NS, "link", "set", "d0", "up")
    sh("ip", "netns", "exec", NS, "ipvsadm", "-A", "-t", "172.16.0.130:80", "-s", "rr")
    env.record("timeouts_before", {"root": timeouts(), NS: timeouts(NS)})
    conf = env.workdir / "lvs-c.conf"
    conf.write_text(CONF)
    # node c's own bus, with its users and streams, as lifeline up makes them
    server = node_server(env.workdir, "c")
    env.servers["c"] = server
    argv = [
        sys.executable,
        "-m",
        "services.lvs",
        "--config",
        str(conf),
        "--node",
        "c",
        "--nats",
        server.url,
    ]
    daemon = Daemon(
        "lvs-c", [*argv, "--state-file", str(env.workdir / "lvs-c.json")], env.workdir, login("lvs")
    )
    env.daemons.append(daemon)
    for text in ("lifeline-lvs ready", "on the bus"):
        wait_until(f"lvs c to log {text!r}", partial(daemon.logged, text), 180, LOG_STEP, explain=daemon.tail)
    try:
        yield daemon
    finally:
        daemon.stop()
        server.kill()
        del env.servers["c"]
        subprocess.run(["ip", "netns", "del", NS], check=False)


def test_lvs_flush_timeouts_and_hashed_act_in_the_ipvs_namespace_only(env: Env, lvs_c: Daemon) -> None:
    inside = table(NS)
    assert set(inside) == {KEY_C}, "lvs_flush removed the other tool's service before programming ours"
    assert {str(d) for d in inside[KEY_C].dests} == {"172.16.1.24:80", "172.16.1.25:80"}
    assert inside[KEY_C].attrs.sched == "sh"
    assert inside[KEY_C].attrs.flags & SVC_F_HASHED, "the kernel hashed it (we never send the bit)"
    assert timeouts(NS) == "Timeout (tcp tcpfin udp): 1234 56 300", "udp left as the kernel had it"
    assert "lvs_flush: flushed the IPVS table (1 services)" in lvs_c.output()
    assert KEY_C not in table(), "nothing of lvs c in the root namespace"
    assert KEY_A in table(), "lvs a's service in the root namespace was not flushed"
    assert timeouts() == "Timeout (tcp tcpfin udp): 900 120 300"


def test_lvs_flush_on_stop_flushes_the_namespace_and_the_timeouts_go_back(env: Env, lvs_c: Daemon) -> None:
    sh("ip", "netns", "exec", NS, "ipvsadm", "-A", "-t", "172.16.0.132:80", "-s", "rr")
    assert lvs_c.stop() == 0
    assert table(NS) == {}, "lvs_flush_on_stop flushes everything, the other tool's service too"
    assert timeouts(NS) == "Timeout (tcp tcpfin udp): 900 120 300", "keepalived restores them at stop"
    assert KEY_A in table()
    omega = [(e["kind"], e.get("real"), e["detail"]) for e in env.pool_events("c", VS_C)]
    assert omega == [("quorum_down", None, "omega")], "with a flush, no real server's notify_down runs"
