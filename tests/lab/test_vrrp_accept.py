"""accept / no_accept end to end: real services in namespaces, real nftables, real ping.

With ``no_accept`` the MASTER holds the VIP (and answers ARP for it) but
nftables drops every packet to and from it, so a ping from the other host
goes unanswered; with ``accept`` the same ping is answered.  The rules live
in the ``inet lifeline`` table of the master's namespace, are removed when
the instance leaves MASTER and with the table on SIGTERM, and a table left by
a killed run is removed at start.  Each host's own address stays reachable
throughout, so a lost ping can only be the VIP's rule.
"""

from __future__ import annotations

import json
import signal
import subprocess

import pytest

from shared.lab.segment import Host
from shared.lab.wait import wait_until
from tests.lab.test_vrrp_service import Lab, has_vip, instance

pytestmark = [pytest.mark.root, pytest.mark.timeout(60)]

TABLE = ("inet", "lifeline")


def vip_of(host: Host) -> str:
    """An address on the segment's own subnet (so the other host has a route to it)."""
    return str(host.prefix.network.network_address + 100)


def conf(priority: int, vip: str, extra: str = "") -> str:
    return instance(priority, vip=f"{vip}/24", extra=extra)


def in_ns(host: Host, *argv: str) -> subprocess.CompletedProcess[str]:
    return host.ns.run(argv, timeout=10)


def answers_ping(src: Host, dst: str) -> bool:
    """busybox's ping (busybox-static is a task package; iputils is not)."""
    return (
        in_ns(src, "busybox", "ping", "-q", "-c", "2", "-i", "0.2", "-W", "1", "-w", "3", dst).returncode == 0
    )


def dropped(host: Host) -> set[str] | None:
    """The IPv4 VIPs in ``host``'s drop set, or None when the table does not exist."""
    listing = in_ns(host, "nft", "-j", "list", "table", *TABLE)
    if listing.returncode != 0:
        return None
    sets = [i["set"] for i in json.loads(listing.stdout)["nftables"] if "set" in i]
    return {str(e) for s in sets if s["name"] == "vips4" for e in s.get("elem", [])}


def test_no_accept_master_drops_vip_traffic_accept_master_answers(lab: Lab) -> None:
    a, b = lab.hosts
    vip = vip_of(a)
    pa = lab.service(a, conf(150, vip, "    no_accept"))
    wait_until("a to hold the VIP", lambda: has_vip(a, vip), 5)
    pb = lab.service(b, conf(100, vip))
    wait_until("b to be BACKUP", lambda: "Entering BACKUP STATE" in pb.log(), 5)
    wait_until("a's drop rule for the VIP", lambda: dropped(a) == {vip}, 5)
    assert answers_ping(b, str(a.ipv4)), "control: a's own address must answer"
    assert not answers_ping(b, vip), "no_accept: the master must not answer for the VIP"

    pa.signal(signal.SIGTERM)
    assert pa.wait(10) == 0
    assert dropped(a) is None, "the table must be gone after SIGTERM"
    wait_until("b (accept) to take the VIP", lambda: has_vip(b, vip), 5)
    assert answers_ping(a, vip), "accept: the master answers for the VIP"


def test_rules_leave_with_mastership(lab: Lab) -> None:
    """Preempted by a higher priority, the no_accept node's set empties (the table stays until stop)."""
    a, b = lab.hosts
    vip = vip_of(a)
    lab.service(a, conf(100, vip, "    no_accept"))
    wait_until("a's drop rule", lambda: dropped(a) == {vip}, 5)
    pb = lab.service(b, conf(200, vip))
    wait_until("b to preempt", lambda: has_vip(b, vip) and not has_vip(a, vip), 5)
    wait_until("a's drop set to empty", lambda: dropped(a) == set(), 5)
    assert answers_ping(a, vip), "b (accept) answers; a's table no longer names the VIP"
    pb.signal(signal.SIGTERM)
    assert pb.wait(10) == 0


def test_stale_table_is_removed_at_start(lab: Lab) -> None:
    """A run killed while MASTER leaves its DROP rule; the next start must clear it before taking the VIP."""
    a, b = lab.hosts
    vip = vip_of(a)
    pa = lab.service(a, conf(150, vip, "    no_accept"))
    wait_until("a's drop rule", lambda: dropped(a) == {vip}, 5)
    pa.signal(signal.SIGKILL)
    pa.wait(5)
    assert dropped(a) == {vip}, "kill -9 cannot clean up"
    in_ns(a, "ip", "addr", "del", f"{vip}/24", "dev", a.ifname)
    lab.service(a, conf(150, vip))  # now accept: nothing may drop the VIP's traffic
    wait_until("a to hold the VIP again", lambda: has_vip(a, vip), 5)
    assert dropped(a) is None
    assert answers_ping(b, vip)


def test_reload_of_a_master_moves_its_drop_set_with_its_vips_and_mode(lab: Lab) -> None:
    """An in-place reload keeps MASTER (no transition), so the firewall must follow the new plan itself."""
    a, _ = lab.hosts
    vip = vip_of(a)
    vip2 = str(a.prefix.network.network_address + 101)
    pa = lab.service(a, conf(150, vip, "    no_accept"))
    wait_until("a's drop rule", lambda: dropped(a) == {vip}, 5)

    def reload(text: str, done: int) -> None:
        pa.conf.write_text(text)
        pa.signal(signal.SIGHUP)
        wait_until(f"reload {done}", lambda: pa.log().count("reload applied") == done, 10)

    reload(instance(150, vip=f"{vip}/24\n        {vip2}/24", extra="    no_accept"), 1)
    wait_until("the new VIP in the drop set", lambda: dropped(a) == {vip, vip2}, 5)
    reload(conf(150, vip2, "    no_accept"), 2)
    wait_until("the removed VIP out of the drop set", lambda: dropped(a) == {vip2}, 5)
    reload(conf(150, vip2), 3)
    wait_until("accept mode: nothing dropped", lambda: dropped(a) == set(), 5)
    assert pa.log().count("Entering MASTER STATE") == 1, "reloads must not cause a transition"
