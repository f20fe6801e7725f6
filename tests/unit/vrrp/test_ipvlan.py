"""ipvlan, no root: names, modes, addresses, sysctls, the plan's interfaces (services/vrrp/kernel/ipvlan.py).

Every expectation is what keepalived 2.2.7 did in a namespace under a kernel
with ipvlan (docs/keepalived.md#ipvlan): ``vr.42`` / the given name, L2 with the
bridge, private or vepa flag, the address on it, the adverts from it, the
VIPs left on the base interface.
"""

from __future__ import annotations

import socket
from ipaddress import IPv4Address, IPv6Address, ip_interface

from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

from services.vrrp.core.params import build_plan
from services.vrrp.kernel.ipvlan import (
    IPVLAN_FLAGS,
    Ipvlan,
    address_request,
    ipvlan_of,
    ipvlan_sysctls,
    is_leftover,
    link_request,
    matches,
)
from shared.config.model_global import GlobalDefs
from shared.config.model_vrrp import UnicastPeer, VirtualAddress, VrrpConfig, VrrpInstance

BASE = IPv4Address("10.0.0.1")


def inst(**kw: object) -> VrrpInstance:
    base: dict[str, object] = {
        "name": "VI_1",
        "interface": "eth0",
        "vrid": 42,
        "family": 4,
        "use_ipvlan": True,
        "ipvlan_address": ip_interface("10.0.0.51/24"),
        "vips": [VirtualAddress(address=ip_interface("10.0.0.100/32"))],
    }
    base.update(kw)
    return VrrpInstance(**base)  # type: ignore[arg-type]


def test_name_is_vmac_prefix_dot_vrid_or_given() -> None:
    assert ipvlan_of(inst(), GlobalDefs()) == Ipvlan(
        name="vrrp.42", base="eth0", mode="bridge", family=4, address=ip_interface("10.0.0.51/24")
    )
    named = ipvlan_of(inst(ipvlan_name="ipv1", ipvlan_mode="private"), GlobalDefs(vmac_prefix="vr"))
    assert named is not None and (named.name, named.mode) == ("ipv1", "private")
    unnamed = ipvlan_of(inst(ipvlan_mode="vepa"), GlobalDefs(vmac_prefix="vr"))
    assert unnamed is not None and (unnamed.name, unnamed.mode) == ("vr.42", "vepa")
    assert ipvlan_of(inst(use_ipvlan=False), GlobalDefs()) is None


def test_link_is_l2_with_the_mode_flag() -> None:
    ipv = Ipvlan(name="ipv1", base="eth0", mode="private")
    assert link_request(ipv, 3) == {
        "ifname": "ipv1",
        "kind": "ipvlan",
        "link": 3,
        "ipvlan_mode": 0,
        "ipvlan_flags": 1,
    }
    assert IPVLAN_FLAGS == {"bridge": 0, "private": 1, "vepa": 2}


def test_pyroute2_encodes_the_flags_attribute() -> None:
    """pyroute2 lacks IFLA_IPVLAN_FLAGS; without the module's addition it would never reach the kernel."""
    msg = ifinfmsg()
    msg["attrs"] = [
        (
            "IFLA_LINKINFO",
            {
                "attrs": [
                    ("IFLA_INFO_KIND", "ipvlan"),
                    ("IFLA_INFO_DATA", {"attrs": [("IFLA_IPVLAN_MODE", 0), ("IFLA_IPVLAN_FLAGS", 2)]}),
                ]
            },
        )
    ]
    msg.encode()
    decoded = ifinfmsg(msg.data)
    decoded.decode()
    data = decoded.get("IFLA_LINKINFO").get("IFLA_INFO_DATA")
    assert (data.get("IFLA_IPVLAN_MODE"), data.get("IFLA_IPVLAN_FLAGS")) == (0, 2)


def link_msg(kind: str, link: int, mode: int = 0, flags: int = 0) -> dict[str, object]:
    data = {"IFLA_IPVLAN_MODE": mode, "IFLA_IPVLAN_FLAGS": flags}
    return {"IFLA_LINK": link, "IFLA_LINKINFO": {"IFLA_INFO_KIND": kind, "IFLA_INFO_DATA": data}}


def test_matches_and_leftovers() -> None:
    ipv = Ipvlan(name="vrrp.42", base="eth0", mode="vepa")
    assert matches(link_msg("ipvlan", 2, flags=2), ipv, 2)
    assert not matches(link_msg("ipvlan", 2, flags=0), ipv, 2)  # bridge, not vepa
    assert not matches(link_msg("ipvlan", 2, mode=1, flags=2), ipv, 2)  # L3
    assert not matches(link_msg("ipvlan", 5, flags=2), ipv, 2)  # another base
    assert is_leftover(link_msg("ipvlan", 2, mode=1), 2)
    assert not is_leftover(link_msg("macvlan", 2), 2) and not is_leftover(link_msg("ipvlan", 5), 2)


def test_address_as_keepalived_adds_it() -> None:
    v4 = Ipvlan(name="vrrp.42", base="eth0", address=ip_interface("10.0.0.53/32"))
    assert address_request(v4, 7) == {
        "index": 7,
        "address": "10.0.0.53",
        "prefixlen": 32,
        "family": socket.AF_INET,
    }
    v6 = Ipvlan(name="ipvX", base="eth0", family=6, address=ip_interface("fd00::51/64"))
    request = address_request(v6, 7)
    assert (
        request is not None and request["flags"] == 0x02 and request["preferred_lft"] == 0
    )  # nodad, deprecated
    assert address_request(Ipvlan(name="x", base="eth0", family=6), 7) is None


def test_sysctls_only_disable_ipv6_on_an_ipv4_ipvlan() -> None:
    assert ipvlan_sysctls(Ipvlan(name="vrrp.42", base="eth0")) == [("ipv6/conf/vrrp.42/disable_ipv6", 1)]
    assert ipvlan_sysctls(Ipvlan(name="vrrp.42", base="eth0", family=6)) == []


def test_plan_sends_from_the_ipvlan_and_leaves_vips_on_the_base() -> None:
    extra = VirtualAddress(address=ip_interface("10.0.0.101/32"), dev="eth1")
    vips = [VirtualAddress(address=ip_interface("10.0.0.100/32")), extra]
    plan = build_plan(inst(vips=vips), GlobalDefs(), VrrpConfig(), BASE)
    assert plan.transport.interface == "vrrp.42"
    assert plan.transport.src == IPv4Address("10.0.0.51")  # the ipvlan's own address
    assert [v.dev for v in plan.vips] == [None, "eth1"]  # the base (or its dev), not the ipvlan
    assert plan.params.interface == "eth0" and "eth0" in plan.tracked_interfaces
    assert isinstance(plan.vmac, Ipvlan) and plan.vmac.name == "vrrp.42"


def test_configured_source_and_xmit_base_win() -> None:
    plan = build_plan(inst(mcast_src_ip=IPv4Address("10.0.0.9")), GlobalDefs(), VrrpConfig(), BASE)
    assert plan.transport.src == IPv4Address("10.0.0.9")
    peers = [UnicastPeer(address=IPv4Address("10.0.0.2"))]
    plan = build_plan(inst(unicast_peers=peers, vmac_xmit_base=True), GlobalDefs(), VrrpConfig(), BASE)
    assert plan.transport.interface == "eth0" and plan.transport.unicast


def test_ipv6_adverts_leave_the_ipvlan_from_the_base_link_local() -> None:
    ll = IPv6Address("fe80::1")
    v6 = [VirtualAddress(address=ip_interface("fd00::100/64"))]
    cfg = inst(family=6, vips=v6, ipvlan_address=ip_interface("fd00::51/64"))
    plan = build_plan(cfg, GlobalDefs(), VrrpConfig(), ll)
    assert plan.transport.src == ll and plan.transport.interface == "vrrp.42"
