"""virtual_routes / virtual_rules follow MASTER; static_* are set at start and removed at stop (real kernel).

Two vrrp services in their own namespaces on one bridge (the ``lab``
fixture).  Routes and rules are read back the operator's way (``ip -j route
show table all``, ``ip -j rule``) and only those tagged ``proto keepalived``
count as ours.  The sequence: a (150) master, b (100) backup; a stops (SIGTERM)
and b takes the virtual routes; a comes back and preempts, so b *leaves*
MASTER while running and must drop them; finally both stop and nothing of
ours is left in either namespace.
"""

from __future__ import annotations

import json
import re
import signal
import time

import pytest

from shared.lab.segment import Host
from shared.lab.wait import wait_until
from tests.lab.test_vrrp_service import VIP4, Lab, VrrpProc, has_vip, instance

pytestmark = [pytest.mark.root, pytest.mark.timeout(90)]

VIRTUAL_ROUTES = {
    ("198.51.100.0/24", "main"),
    ("203.0.113.0/24", "100"),
    ("198.18.0.0/15", "100"),
    ("2001:db8:50::/48", "main"),
}
VIRTUAL_RULES = {(2000, "100"), (2001, "100")}
STATIC_ROUTES = {("198.19.0.0/16", "main"), ("198.19.1.0/24", "300")}
STATIC_RULES = {(3000, "300")}


def conf(host: Host, priority: int) -> str:
    gw = host.prefix.network.network_address + 254
    own = f"172.30.{host.prefix.ip.packed[-1]}.1/24"
    static = f"""
static_ipaddress {{
    {own} dev eth0
}}
static_routes {{
    198.19.0.0/16 via {gw} dev eth0
    198.19.1.0/24 via {gw} dev eth0 table 300
}}
static_rules {{
    from {host.prefix.network} table 300 preference 3000
}}
"""
    extra = f"""
    virtual_routes {{
        198.51.100.0/24 via {gw} dev eth0
        203.0.113.0/24 via {gw} dev eth0 table 100 metric 5
        blackhole 198.18.0.0/15 table 100 no_track
        2001:db8:50::/48 dev eth0
    }}
    virtual_rules {{
        from {VIP4} table 100 preference 2000
        to 203.0.113.0/24 table 100 preference 2001
    }}
"""
    return static + instance(priority, extra=extra)


def static_address(host: Host) -> str:
    return f"172.30.{host.prefix.ip.packed[-1]}.1"


def our_routes(host: Host) -> set[tuple[str, str]]:
    """(destination, table) of every ``proto keepalived`` route, IPv4 and IPv6."""
    out: set[tuple[str, str]] = set()
    for family in ("-4", "-6"):
        for r in json.loads(host.ip(family, "-j", "route", "show", "table", "all")):
            if r.get("protocol") == "keepalived":
                out.add((str(r["dst"]), str(r.get("table", "main"))))
    return out


def our_rules(host: Host) -> set[tuple[int, str]]:
    """(preference, table) of every ``proto keepalived`` rule, IPv4 and IPv6."""
    out: set[tuple[int, str]] = set()
    for family in ("-4", "-6"):
        for r in json.loads(host.ip(family, "-j", "rule", "show")):
            if r.get("protocol") == "keepalived":
                out.add((int(r["priority"]), str(r.get("table"))))
    return out


def holds_virtual(host: Host) -> bool:
    return our_routes(host) >= VIRTUAL_ROUTES and our_rules(host) >= VIRTUAL_RULES


def holds_no_virtual(host: Host) -> bool:
    return not (VIRTUAL_ROUTES & our_routes(host)) and not (VIRTUAL_RULES & our_rules(host))


def holds_static(host: Host) -> bool:
    return (
        our_routes(host) >= STATIC_ROUTES
        and our_rules(host) >= STATIC_RULES
        and has_vip(host, static_address(host))
    )


def entered(proc: VrrpProc) -> list[str]:
    """The states a service's log says it entered (keepalived's ``Entering X STATE`` lines)."""
    return re.findall(r"\(VI_1\) Entering (\w+) STATE", proc.log())


def holds_nothing(host: Host) -> bool:
    return not our_routes(host) and not our_rules(host) and not has_vip(host, static_address(host))


def test_virtual_routes_follow_master_static_stay_until_stop(lab: Lab) -> None:
    a, b = lab.hosts
    gw = b.prefix.network.network_address + 254
    # a stale copy of a virtual route, as a crashed run would leave it: b's start removes it
    b.ip("route", "add", "198.51.100.0/24", "via", str(gw), "dev", "eth0", "proto", "keepalived")
    pa = lab.service(a, conf(a, 150))
    wait_until("a to hold the VIP", lambda: has_vip(a, VIP4), 5)
    took = wait_until("a's virtual routes and rules", lambda: holds_virtual(a), 5)
    print(f"\nvirtual routes on a {took * 1000:.0f} ms after its VIP (polled with ip -j, ~10 ms a poll)")
    pb = lab.service(b, conf(b, 100))
    wait_until("b's static items", lambda: holds_static(b), 5)
    time.sleep(0.5)  # > b's Master_Down_Interval (0.35 s): b would be MASTER by now if it were to be
    assert entered(pb) == ["BACKUP"]
    assert holds_static(a)
    assert holds_no_virtual(b), (our_routes(b), our_rules(b))
    assert our_routes(a) == VIRTUAL_ROUTES | STATIC_ROUTES
    assert our_rules(a) == VIRTUAL_RULES | STATIC_RULES
    table = a.ip("route", "show", "table", "100")
    assert "203.0.113.0/24 via" in table and "metric 5" in table and "blackhole 198.18.0.0/15" in table
    status = lab.status(pa.node)
    routes = status["instances"]["VI_1"]["routes"]  # type: ignore[index]
    assert (routes["routes"], routes["rules"], routes["added"], routes["errors"]) == (4, 2, 6, 0), routes

    # failover: a stops; b takes the virtual routes, a keeps nothing of ours
    pa.signal(signal.SIGTERM)
    assert pa.wait() == 0
    wait_until("b's virtual routes", lambda: holds_virtual(b), 5)
    assert has_vip(b, VIP4) and holds_static(b)
    assert holds_nothing(a), (our_routes(a), our_rules(a))

    # a comes back and preempts: b leaves MASTER (still running) and drops only the virtual ones
    pa2 = lab.service(a, conf(a, 150))
    wait_until("a's static items again", lambda: holds_static(a), 5)
    wait_until("a's virtual routes again", lambda: holds_virtual(a), 10)
    wait_until("b to drop its virtual routes", lambda: holds_no_virtual(b), 5)
    assert holds_static(b) and not has_vip(b, VIP4)
    assert entered(pb) == ["BACKUP", "MASTER", "BACKUP"]

    # both stop: nothing of ours anywhere
    start = time.monotonic()
    for proc in (pb, pa2):
        proc.signal(signal.SIGTERM)
        assert proc.wait() == 0
    print(f"both stopped in {time.monotonic() - start:.3f} s")
    assert holds_nothing(a), (our_routes(a), our_rules(a))
    assert holds_nothing(b), (our_routes(b), our_rules(b))
