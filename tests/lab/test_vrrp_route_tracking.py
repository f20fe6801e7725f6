"""Route tracking as keepalived 2.2.7 does it (observed in a namespace), on the real kernel.

One vrrp service alone in its namespace (the ``lab`` fixture's host a; with
no peer it becomes MASTER), a second link ``eth1`` (a veth pair inside the
namespace) for the items that must be able to lose their interface.  What is
checked is what an operator sees: ``ip -j route/rule/addr`` and the
service's ``Entering X STATE`` log lines.

* static items: one deleted by hand is put back (with or without
  ``track_group``); their interface going down puts the track group's
  instance in FAULT, coming back up restores them and lets it out;
* virtual routes: a tracked one deleted by hand makes the MASTER step down
  (then, unopposed, take over again and set it back); a ``no_track`` one
  deleted is left deleted; a tracked one's interface going down is a FAULT.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from shared.lab.segment import Host
from shared.lab.wait import wait_until
from tests.lab.test_vrrp_service import VIP4, Lab, VrrpProc, has_vip, instance

pytestmark = [pytest.mark.root, pytest.mark.timeout(90)]

GW1 = "10.77.0.254"
"""A gateway on eth1 (the veth inside the namespace), so eth1 routes can be set."""


def second_link(host: Host) -> None:
    """eth1 (and its peer p1), up, with 10.77.0.1/24: a link the test can take down."""
    host.ip("link", "add", "eth1", "type", "veth", "peer", "name", "p1")
    host.ip("link", "set", "p1", "up")
    host.ip("link", "set", "eth1", "up")
    host.ip("addr", "add", "10.77.0.1/24", "dev", "eth1")


def routes(host: Host) -> set[str]:
    """Destinations of every ``proto keepalived`` route, any table."""
    out = set()
    for r in json.loads(host.ip("-4", "-j", "route", "show", "table", "all")):
        if r.get("protocol") == "keepalived":
            out.add(str(r["dst"]))
    return out


def rules(host: Host) -> set[int]:
    return {int(r["priority"]) for r in json.loads(host.ip("-4", "-j", "rule", "show")) if "priority" in r}


def entered(proc: VrrpProc) -> list[str]:
    return re.findall(r"\(VI_1\) Entering (\w+) STATE", proc.log())


def link(host: Host, up: bool) -> None:
    host.ip("link", "set", "eth1", "up" if up else "down")


STATIC = """
track_group TG {
    group {
        VI_1
    }
}
static_ipaddress {
    172.31.9.1/24 dev eth1 track_group TG
}
static_routes {
    198.19.0.0/16 via %(gw)s dev eth1 track_group TG
    198.19.5.0/24 via %(gw)s dev eth1
}
static_rules {
    from 198.19.7.0/24 table 300 preference 3000 track_group TG
}
"""


def test_static_items_are_restored_and_their_lost_interface_faults_the_track_group(lab: Lab) -> None:
    a = lab.hosts[0]
    second_link(a)
    proc = lab.service(a, STATIC % {"gw": GW1} + instance(150))
    wait_until("a MASTER", lambda: has_vip(a, VIP4), 10)
    assert {"198.19.0.0/16", "198.19.5.0/24"} <= routes(a) and 3000 in rules(a)
    assert a.holds("172.31.9.1", dev="eth1")

    # deleted by hand: put back at once, tracked or not, and nobody faults for it
    a.ip("route", "del", "198.19.0.0/16", "via", GW1, "dev", "eth1", "proto", "keepalived")
    a.ip("route", "del", "198.19.5.0/24", "via", GW1, "dev", "eth1", "proto", "keepalived")
    a.ip("rule", "del", "preference", "3000")
    a.ip("addr", "del", "172.31.9.1/24", "dev", "eth1")
    wait_until("static routes back", lambda: {"198.19.0.0/16", "198.19.5.0/24"} <= routes(a), 5)
    wait_until("static rule back", lambda: 3000 in rules(a), 5)
    wait_until("static address back", lambda: a.holds("172.31.9.1", dev="eth1"), 5)
    assert "Restoring deleted static route 198.19.0.0/16" in proc.log()
    assert entered(proc) == ["BACKUP", "MASTER"]

    # the tracked items' interface goes down: the track group's instance is in FAULT until it is back
    link(a, up=False)
    wait_until("FAULT", lambda: entered(proc)[-1:] == ["FAULT"], 5)
    assert not has_vip(a, VIP4)
    assert "static_lost" in proc.log()
    link(a, up=True)
    wait_until("MASTER again", lambda: entered(proc)[-1:] == ["MASTER"] and has_vip(a, VIP4), 10)
    assert {"198.19.0.0/16", "198.19.5.0/24"} <= routes(a)  # the kernel flushed them; restored at link up
    assert entered(proc) == ["BACKUP", "MASTER", "FAULT", "BACKUP", "MASTER"]


def test_untracked_static_items_fault_nobody(lab: Lab) -> None:
    a = lab.hosts[0]
    second_link(a)
    untracked = (STATIC % {"gw": GW1}).replace(" track_group TG", "")
    proc = lab.service(a, untracked + instance(150))
    wait_until("a MASTER", lambda: has_vip(a, VIP4), 10)
    link(a, up=False)
    wait_until("the kernel to flush eth1's routes", lambda: "198.19.0.0/16" not in routes(a), 5)
    link(a, up=True)
    wait_until("static routes back at link up", lambda: "198.19.0.0/16" in routes(a), 5)
    assert entered(proc) == ["BACKUP", "MASTER"]


VIRTUAL = """
    virtual_routes {
        198.51.100.0/24 via %(gw0)s dev eth0
        203.0.113.0/24 via %(gw1)s dev eth1
        blackhole 198.18.0.0/15 no_track
    }
    virtual_rules {
        from 192.0.2.100 table 100 preference 2000
    }
"""


def test_virtual_routes_deleted_or_on_a_lost_interface_move_the_master(lab: Lab) -> None:
    a = lab.hosts[0]
    second_link(a)
    gw0 = str(a.prefix.network.network_address + 254)
    proc = lab.service(a, instance(150, extra=VIRTUAL % {"gw0": gw0, "gw1": GW1}))
    mine = {"198.51.100.0/24", "203.0.113.0/24", "198.18.0.0/15"}
    wait_until("a MASTER with its routes", lambda: has_vip(a, VIP4) and mine <= routes(a), 10)

    # no_track: deleted and left so, the MASTER stays (checked after the next deletion, in netlink order)
    a.ip("route", "del", "blackhole", "198.18.0.0/15", "proto", "keepalived")
    # tracked: the MASTER steps down (priority 0, VIPs and routes out), then takes over again
    a.ip("route", "del", "198.51.100.0/24", "via", gw0, "dev", "eth0", "proto", "keepalived")
    wait_until("a step down and back", lambda: len(entered(proc)) == 4 and "198.51.100.0/24" in routes(a), 10)
    assert entered(proc) == ["BACKUP", "MASTER", "BACKUP", "MASTER"]
    assert "virtual route 198.51.100.0/24 via" in proc.log() and "was deleted" in proc.log()
    assert "198.18.0.0/15" in routes(a)  # set again by the new MASTER: the no_track one comes back only so

    # a tracked rule deleted: the same
    a.ip("rule", "del", "preference", "2000")
    wait_until("a step down and back", lambda: len(entered(proc)) == 6 and 2000 in rules(a), 10)

    # a tracked route's interface goes down: FAULT until it is up again
    link(a, up=False)
    wait_until("FAULT", lambda: entered(proc)[-1:] == ["FAULT"] and not has_vip(a, VIP4), 5)
    link(a, up=True)
    wait_until("MASTER again", lambda: entered(proc)[-1:] == ["MASTER"] and mine <= routes(a), 10)
    assert entered(proc)[6:] == ["FAULT", "BACKUP", "MASTER"]


def test_no_track_virtual_route_interface_and_deletion_leave_the_master_alone(lab: Lab) -> None:
    a = lab.hosts[0]
    second_link(a)
    no_track = f"""
    virtual_routes {{
        203.0.113.0/24 via {GW1} dev eth1 no_track
    }}
"""
    proc = lab.service(a, instance(150, extra=no_track))
    wait_until("a MASTER with its route", lambda: has_vip(a, VIP4) and "203.0.113.0/24" in routes(a), 10)
    link(a, up=False)
    wait_until("the kernel to flush it", lambda: "203.0.113.0/24" not in routes(a), 5)
    link(a, up=True)
    time.sleep(1.0)  # netlink tells the service within milliseconds: a FAULT would be logged by now
    assert entered(proc) == ["BACKUP", "MASTER"]
    assert "203.0.113.0/24" not in routes(a)  # not reinstated until the next MASTER transition
