"""``use_ipvlan`` against keepalived 2.2.7: runs inside the VM only (the host kernel has no ipvlan).

Booted by ``tests/kernel/test_vrrp_vm.py``.

Two hosts on one bridge (``shared.lab.segment``): a runs lifeline's vrrp
service, b the real keepalived, both with ``use_ipvlan``.  What must hold is
what keepalived 2.2.7 itself does in this same harness (docs/keepalived.md#ipvlan):

* each node has its ipvlan, L2 with the configured flag, up, carrying the
  ``use_ipvlan`` address, IPv6 disabled on it (an IPv4 instance);
* the election works across the two implementations: the higher priority
  (lifeline) holds the VIP, on its base interface ``eth0`` (keepalived 2.2.7
  leaves the VIPs there; only the adverts use the ipvlan), and the adverts on
  the wire come from its ipvlan address, never from the keepalived backup;
* a graceful stop of lifeline hands the VIP to keepalived and deletes
  lifeline's ipvlan.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from shared.lab.capture import AdvertSeen, Capture, adverts
from shared.lab.nats import NatsServer
from shared.lab.segment import Host, Segment
from shared.lab.wait import wait_until

VRID = 42
STARTUP = 240.0
"""A cold Python service under TCG emulation: tens of seconds, on a busy host more."""


@pytest.fixture
def seg() -> Iterator[Segment]:
    subprocess.run(["modprobe", "ipvlan"], check=True)
    with Segment(["a", "b"]) as segment:
        yield segment


def config(node: Host, priority: int, use_ipvlan: str) -> str:
    return (
        f"global_defs {{\n    router_id {node.role}\n}}\n"
        "vrrp_instance VI_1 {\n    state BACKUP\n    interface eth0\n"
        f"    virtual_router_id {VRID}\n    priority {priority}\n    version 3\n    advert_int 0.5\n"
        f"    {use_ipvlan}\n"
        f"    virtual_ipaddress {{\n        {node.segment.address(100)}/32\n    }}\n}}\n"
    )


def link(node: Host, dev: str) -> dict[str, Any] | None:
    data = json.loads(node.ip("-d", "-j", "link", "show"))
    return next((entry for entry in data if entry["ifname"] == dev), None)


def logs(seg: Segment) -> str:
    return "\n".join(f"--- {h.role}\n{h.daemon.tail(30)}" for h in seg.hosts if h.daemon is not None)


def collect(cap: Capture, count: int) -> list[AdvertSeen]:
    """At least ``count`` adverts of our VRID from now on (a few advert intervals)."""
    seen: list[AdvertSeen] = []

    def enough() -> bool:
        seen.extend(x for x in adverts(cap.drain()) if x.vrid == VRID)
        return len(seen) >= count

    wait_until(f"{count} adverts on the wire", enough, 30, 0.5)
    return seen


def assert_ipvlan(node: Host, dev: str, flag: str, address: str) -> None:
    entry = link(node, dev)
    assert entry is not None, f"{node.role}: no {dev}"
    info = entry.get("linkinfo", {})
    assert info.get("info_kind") == "ipvlan" and info.get("info_data", {}).get("mode") == "l2", entry
    assert info["info_data"].get(flag) is True, entry
    assert entry["link"] == "eth0" and "UP" in entry["flags"], entry
    assert address in node.addresses(dev), node.addresses(None)
    disabled = node.ns.run(["cat", f"/proc/sys/net/ipv6/conf/{dev}/disable_ipv6"], check=True).stdout
    assert disabled.strip() == "1"


def test_ipvlan_election_with_keepalived(seg: Segment) -> None:
    """lifeline (200, private ``ipv1``) wins over keepalived (100, default ``vrrp.42``), then hands over."""
    a, b = seg.hosts
    vip = seg.address(100)
    own_a, own_b = seg.address(51), seg.address(61)
    a.nats = NatsServer(a.workdir / "nats", name=a.role, ns=a.name)
    a.nats.start(timeout=180)  # under emulation a cold nats-server takes its time
    with seg.capture() as cap:
        a.start("lifeline", config(a, 200, f"use_ipvlan ipv1 {own_a}/24 private"))
        b.start("keepalived", config(b, 100, f"use_ipvlan {own_b}/24"))
        wait_until("a alone to hold the VIP on eth0", lambda: seg.holders(vip), STARTUP, 0.2, expect=["a"],
                   explain=lambda: logs(seg))  # fmt: skip
        assert_ipvlan(a, "ipv1", "private", own_a)
        assert_ipvlan(b, f"vrrp.{VRID}", "bridge", own_b)
        assert vip not in a.addresses("ipv1")  # keepalived 2.2.7 leaves the VIPs on the base
        cap.drain()  # adverts from before the election settled
        seen = collect(cap, 4)
    assert {x.src for x in seen} == {own_a}, f"adverts from {[x.src for x in seen]}\n{logs(seg)}"
    assert seg.holders(vip) == ["a"]
    a.stop(timeout=60)
    wait_until(
        "b alone to hold the VIP", lambda: seg.holders(vip), 30, 0.2, expect=["b"], explain=lambda: logs(seg)
    )
    assert link(a, "ipv1") is None, "lifeline left its ipvlan behind"
    assert link(b, f"vrrp.{VRID}") is not None
