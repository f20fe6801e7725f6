"""IPVS on a real kernel: runs inside the VM only (see ``tests/kernel/test_vm.py``).

Tests run in file order and share one lab; each leaves the pools all up again.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections import Counter
from functools import partial

from services.lvs.core.desired import ServiceKey, Table, build_plans, plan_table
from services.lvs.core.pool import Pool
from services.lvs.core.reconcile import diff
from services.lvs.kernel.ipvs import Ipvs
from shared.config.load import load
from shared.events import CheckerKind, InstanceState, RealServerHealth, VrrpState
from shared.lab.wait import wait_until
from tests.kernel.inside.conftest import ARCHWIKI, SCENARIO, Env
from tests.kernel.inside.lab import LOG_STEP, STEP, client_socket, http_get, sh

VS_A = "172.16.0.100:80/tcp"
VS_B = "172.16.0.101:80/tcp"
VS_ECHO = "172.16.0.101:9000/tcp"
VS_SUSPEND = "172.16.0.103:80/tcp"
TCP = socket.IPPROTO_TCP


def kernel() -> Table:
    ipvs = Ipvs()
    try:
        return ipvs.read_table()
    finally:
        ipvs.close()


def expected(path: object) -> Table:
    """The table a freshly started service must program: every real server alive."""
    table: Table = {}
    for name, plan in build_plans(load(str(path)).config.lvs).items():
        del name
        table.update(plan_table(plan, Pool(plan).members()))
    return table


def ipvsadm() -> dict[str, list[tuple[str, str, int]]]:
    """``ipvsadm -Ln`` parsed: service line -> [(real, forward, weight)]."""
    out = subprocess.run(["ipvsadm", "-Ln"], capture_output=True, text=True, check=True).stdout
    table: dict[str, list[tuple[str, str, int]]] = {}
    current = ""
    for line in out.splitlines()[3:]:
        words = line.split()
        if words[0] == "->":
            table[current].append((words[1], words[2], int(words[3])))
        else:
            current = " ".join(words)
            table[current] = []
    return table


def dests(key: ServiceKey) -> dict[str, int]:
    entry = kernel().get(key)
    return {} if entry is None else {str(d): a.weight for d, a in entry.dests.items()}


def health(real: str, up: bool, virtual: str = VS_B) -> RealServerHealth:
    return RealServerHealth(
        virtual=virtual, real=real, up=up, checker=CheckerKind.TCP_CHECK, ts=time.time_ns()
    )


def spread(vip: str, n: int) -> Counter[str]:
    return Counter(http_get(vip) for _ in range(n))


KEY_A = ServiceKey(socket.AF_INET, TCP, "172.16.0.100", 80, 0)
KEY_B = ServiceKey(socket.AF_INET, TCP, "172.16.0.101", 80, 0)
KEY_ECHO = ServiceKey(socket.AF_INET, TCP, "172.16.0.101", 9000, 0)
KEY_SUSPEND = ServiceKey(socket.AF_INET, TCP, "172.16.0.103", 80, 0)


def test_archwiki_example_programs_the_kernel_exactly(env: Env) -> None:
    table = kernel()
    want = expected(ARCHWIKI)
    assert set(want) == {KEY_A}
    assert not diff({KEY_A: table[KEY_A]}, want), "netlink read-back differs from the config"
    assert table[KEY_A].attrs.sched == "rr"
    assert {str(d): (a.fwd, a.weight) for d, a in table[KEY_A].dests.items()} == {
        f"172.16.1.{n}:80": (0, 1) for n in (20, 21, 22, 23)
    }
    listed = ipvsadm()
    assert listed["TCP 172.16.0.100:80 rr"] == [(f"172.16.1.{n}:80", "Masq", 1) for n in (20, 21, 22, 23)]
    env.record(
        "ipvsadm_archwiki",
        subprocess.run(["ipvsadm", "-Ln"], capture_output=True, text=True, check=True).stdout,
    )


def test_rr_traffic_reaches_every_backend_equally(env: Env) -> None:
    counts = spread("172.16.0.100", 40)
    assert counts == {"rs20": 10, "rs21": 10, "rs22": 10, "rs23": 10}


def test_scenario_table_matches_config_netlink_and_ipvsadm(env: Env) -> None:
    want = expected(SCENARIO)
    table = kernel()
    mine = {k: v for k, v in table.items() if k in want}
    assert set(mine) == set(want), f"missing: {set(want) - set(mine)}"
    assert not diff(mine, want), [str(op) for op in diff(mine, want)]
    listed = ipvsadm()

    def line(prefix: str, *words: str) -> list[tuple[str, str, int]]:
        found = [k for k in listed if k.startswith(prefix) and all(w in k for w in words)]
        assert len(found) == 1, f"{prefix} {words}: {list(listed)}"
        return listed[found[0]]

    assert line("UDP 172.16.0.102:53 sh", "persistent 360", "mask 255.255.255.0") == [
        ("172.16.1.26:53", "Route", 3)
    ]
    assert line("FWM 7 wrr") == [("172.16.1.27:80", "Tunnel", 2), ("172.16.1.28:80", "Tunnel", 4)]
    assert line("TCP 172.16.0.110:80 mh") == [("172.16.1.29:80", "Masq", 1)]
    assert line("TCP 172.16.0.111:80 mh") == [("172.16.1.29:80", "Masq", 1)]
    assert line("FWM 8 mh") == [("172.16.1.29:80", "Masq", 1)]
    assert line("SCTP [2001:db8::100]:443 lc", "persistent 600") == [("[2001:db8::24]:443", "Route", 7)]
    gue = table[ServiceKey(socket.AF_INET, 0, None, 0, 7)].dests
    assert {str(d): (a.tun_type, a.tun_port, a.tun_flags) for d, a in gue.items()} == {
        "172.16.1.27:80": (2, 0, 0),  # GRE
        "172.16.1.28:80": (1, 6080, 2),  # GUE port 6080, remcsum
    }
    env.record(
        "ipvsadm_scenario",
        subprocess.run(["ipvsadm", "-Ln"], capture_output=True, text=True, check=True).stdout,
    )


def test_inhibit_on_failure_and_health_to_kernel_latency(env: Env) -> None:
    """Down sets weight 0 (stays in the table); each flip is timed from publish to netlink read-back."""
    seen: list[float] = []
    for i in range(40):
        up = i % 2 == 1
        env.publish("b", [health("172.16.1.24:9000", up, VS_ECHO)])
        want = 5 if up else 0
        seen.append(wait_until("flip", lambda w=want: dests(KEY_ECHO) == {"172.16.1.24:9000": w}, 10, STEP))  # type: ignore[misc]
    status = env.status("b")["detail"]
    inside = status["health_to_kernel_ms"]  # type: ignore[index]
    seen.sort()
    env.record(
        "failure_to_removal_ms",
        {
            "service_measured": inside,
            "observed_by_polling": {
                "n": len(seen),
                "p50": round(seen[len(seen) // 2] * 1000, 1),
                "p99": round(seen[-1] * 1000, 1),
            },
        },
    )
    assert dests(KEY_ECHO) == {"172.16.1.24:9000": 5}


def test_backend_down_is_removed_and_quorum_loss_swaps_in_sorry_server(env: Env) -> None:
    assert spread("172.16.0.101", 9) == {"rs24": 3, "rs25": 3, "rs26": 3}
    env.publish("b", [health("172.16.1.24:80", False)])
    wait_until("rs24 removed", lambda: "172.16.1.24:80" not in dests(KEY_B), 10, STEP)
    assert spread("172.16.0.101", 8) == {"rs25": 4, "rs26": 4}, "traffic must keep flowing"
    env.publish("b", [health("172.16.1.25:80", False)])  # weight_sum 1 < quorum 2
    wait_until("sorry server in", lambda: dests(KEY_B) == {"172.16.1.30:80": 1}, 10, STEP)
    assert spread("172.16.0.101", 4) == {"rs30": 4}
    pools = env.status("b")["detail"]["pools"]  # type: ignore[index]
    assert pools[VS_B]["quorum_up"] is False  # type: ignore[index]
    env.publish("b", [health("172.16.1.24:80", True), health("172.16.1.25:80", True)])
    wait_until("sorry out", lambda: set(dests(KEY_B)) == {f"172.16.1.{n}:80" for n in (24, 25, 26)}, 10, STEP)
    assert set(spread("172.16.0.101", 6)) == {"rs24", "rs25", "rs26"}
    kinds = [(e["kind"], e.get("real")) for e in env.pool_events("b", VS_B)]
    assert kinds == [
        ("rs_removed", "172.16.1.24:80"),
        ("rs_removed", "172.16.1.25:80"),
        ("quorum_down", None),
        ("sorry_in", None),
        ("rs_added", "172.16.1.24:80"),
        ("quorum_up", None),  # weight_sum 2 >= quorum 2 already
        ("sorry_out", None),
        ("rs_added", "172.16.1.25:80"),
    ], "every real server in/out, quorum and sorry change is a PoolEvent in the stream"


def test_checker_tcp_check_follows_a_killed_backend(env: Env) -> None:
    assert env.checker_a is not None
    env.lab.stop_httpd(21)
    took = wait_until("rs21 removed by TCP_CHECK", lambda: "172.16.1.21:80" not in dests(KEY_A), 90, STEP)
    env.record("tcp_check_kill_to_removal_s", round(took, 2))
    assert spread("172.16.0.100", 30) == {"rs20": 10, "rs22": 10, "rs23": 10}
    env.lab.start_httpd(21)
    wait_until("rs21 back", lambda: "172.16.1.21:80" in dests(KEY_A), 90, STEP)


def sync_daemons() -> str:
    return subprocess.run(["ipvsadm", "-L", "--daemon"], capture_output=True, text=True, check=True).stdout


def test_sync_daemon_follows_the_vrrp_instance(env: Env) -> None:
    assert "backup sync daemon (mcast=eth0, syncid=51" in sync_daemons()

    def state(s: VrrpState) -> InstanceState:
        return InstanceState(
            instance="VI_1", vrid=51, interface="eth0", state=s, base_priority=100, effective_priority=100
        )

    env.publish("b", [state(VrrpState.MASTER)])
    wait_until(
        "master daemon", lambda: "master sync daemon (mcast=eth0, syncid=51" in sync_daemons(), 20, STEP
    )
    assert "backup sync daemon" not in sync_daemons()
    env.publish("b", [state(VrrpState.BACKUP)])
    wait_until("backup daemon again", lambda: "master sync daemon" not in sync_daemons(), 20, STEP)
    assert "backup sync daemon (mcast=eth0, syncid=51" in sync_daemons()


def test_ha_suspend_acts_on_health_only_while_the_address_is_local(env: Env) -> None:
    """The VIP is on no interface at start (a VRRP backup): health is ignored until it appears."""

    def detail() -> dict[str, object]:
        return env.status("b")["detail"]  # type: ignore[return-value]

    def suspended() -> bool:
        return detail()["pools"][VS_SUSPEND]["suspended"] is True  # type: ignore[index]

    def ignore(real: str) -> None:
        before = int(detail()["ha_suspend_ignored"])  # type: ignore[call-overload]
        env.publish("b", [health(real, False, VS_SUSPEND)])
        wait_until(f"{real} ignored", lambda: detail()["ha_suspend_ignored"] == before + 1, 20, STEP)

    both = {"172.16.1.27:80": 1, "172.16.1.28:80": 1}
    assert dests(KEY_SUSPEND) == both and suspended()
    ignore("172.16.1.27:80")
    assert dests(KEY_SUSPEND) == both, "suspended: the pool keeps its last state"
    sh("ip", "addr", "add", "172.16.0.103/32", "dev", "eth0")
    try:
        wait_until("resumed when the address appeared", lambda: not suspended(), 20, STEP)
        env.publish("b", [health("172.16.1.27:80", False, VS_SUSPEND)])
        wait_until("rs27 removed", lambda: dests(KEY_SUSPEND) == {"172.16.1.28:80": 1}, 10, STEP)
        env.publish("b", [health("172.16.1.27:80", True, VS_SUSPEND)])
        wait_until("rs27 back", lambda: dests(KEY_SUSPEND) == both, 10, STEP)
    finally:
        sh("ip", "addr", "del", "172.16.0.103/32", "dev", "eth0")
    wait_until("suspended again when the address went away", suspended, 20, STEP)
    ignore("172.16.1.28:80")
    assert dests(KEY_SUSPEND) == both


def test_restart_keeps_an_established_connection(env: Env) -> None:
    sock = client_socket()
    sock.settimeout(10)
    sock.connect(("172.16.0.101", 9000))
    sock.sendall(b"before\n")
    assert sock.recv(100) == b"before\n"
    before, announced = kernel(), len(env.pool_events("b", VS_B))
    assert env.lvs_b.stop() == 0  # --keep: the table stays
    assert kernel() == before
    assert len(env.pool_events("b", VS_B)) == announced, "--keep removes nothing, so omega announces nothing"
    lvs = env.start_lvs_b(keep=False)
    wait_until(
        "lvs b to be ready", partial(lvs.logged, "lifeline-lvs ready"), 180, LOG_STEP, explain=lvs.tail
    )
    assert "reconcile (start): 0 operations" in lvs.output()
    sock.sendall(b"after\n")
    assert sock.recv(100) == b"after\n", "the connection must survive the restart"
    assert (
        "ESTABLISHED"
        in subprocess.run(["ipvsadm", "-Lnc"], capture_output=True, text=True, check=True).stdout
    )
    env.echo_socket = sock  # type: ignore[attr-defined]


def test_reload_changes_only_what_changed(env: Env) -> None:
    text = env.scenario.read_text()
    text = text.replace(
        "    real_server 172.16.1.26 80 {\n        weight 1\n",
        "    real_server 172.16.1.26 80 {\n        weight 2\n",
    )
    start = text.index("virtual_server 172.16.0.102 53")
    end = text.index("virtual_server fwmark 7")
    text = text[:start] + text[end:]
    text = text.replace(
        "        lvs_method TUN type gue port 6080 remcsum\n    }\n",
        "        lvs_method TUN type gue port 6080 remcsum\n    }\n    real_server 172.16.1.25 80 {\n    }\n",
    )
    env.scenario.write_text(text)
    lvs = env.lvs_b
    wait_until("lvs b on the bus", partial(lvs.logged, "on the bus"), 120, LOG_STEP, explain=lvs.tail)
    mark = len(lvs.output())
    lvs.send(signal.SIGHUP)
    wait_until(
        "lvs b to reload", partial(lvs.logged, "lifeline-lvs reloaded", mark), 60, LOG_STEP, explain=lvs.tail
    )
    last = env.status("b")["detail"]["last_reconcile"]  # type: ignore[index]
    env.record("reload_ops", last)
    assert last["kinds"] == {"set_dest": 1, "del_service": 1, "add_dest": 1}  # type: ignore[index]
    assert dests(KEY_B)["172.16.1.26:80"] == 2
    sock = env.echo_socket  # type: ignore[attr-defined]
    sock.sendall(b"reloaded\n")
    assert sock.recv(100) == b"reloaded\n", "the connection must survive the reload"
    assert not diff({k: v for k, v in kernel().items() if k != KEY_A}, expected(env.scenario))
    assert env.last_reload("b", "lvs")["ok"] is True


def test_a_broken_file_is_refused_and_the_kernel_keeps_its_table(env: Env) -> None:
    """SIGHUP with an error in the file: nothing in the kernel changes, the errors are on the bus."""
    good = env.scenario.read_text()
    before = kernel()
    env.scenario.write_text(good + "virtual_server 172.16.0.110 80 {\n    lb_algo nosuchalgo\n}\n")
    lvs = env.lvs_b
    try:
        mark = len(lvs.output())
        lvs.send(signal.SIGHUP)
        refused = partial(lvs.logged, "lifeline-lvs reload refused", mark)
        wait_until("lvs b to refuse the reload", refused, 60, LOG_STEP, explain=lvs.tail)
        assert kernel() == before
        event = env.last_reload("b", "lvs")
        assert event["ok"] is False and event["trigger"] == "signal"
        errors = event["errors"]
        assert isinstance(errors, list) and any(str(e).startswith(f"{env.scenario}:") for e in errors), errors
        sock = env.echo_socket  # type: ignore[attr-defined]
        sock.sendall(b"still\n")
        assert sock.recv(100) == b"still\n"
    finally:
        env.scenario.write_text(good)


def test_stop_removes_only_what_it_created(env: Env) -> None:
    announced = len(env.pool_events("b", VS_B))
    assert env.lvs_b.stop() == 0
    left = kernel()
    assert set(left) == {KEY_A}, "lvs b must remove its own services and leave lvs a's alone"
    assert "sync daemon" not in sync_daemons()
    omega = [(e["kind"], e.get("real"), e["detail"]) for e in env.pool_events("b", VS_B)[announced:]]
    assert omega == [
        ("rs_removed", "172.16.1.24:80", "omega"),
        ("rs_removed", "172.16.1.25:80", "omega"),
        ("rs_removed", "172.16.1.26:80", "omega"),  # weight 2 since the reload: 2 -> 0 crosses quorum 2
        ("quorum_down", None, "omega"),
    ], "omega: the down notifiers' events, in order, before the process exits"
