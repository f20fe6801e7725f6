"""``use_ipvlan``: the ipvlan (L2) interface keepalived puts a VRRP instance's adverts on.

Why its own module: like the VMAC (``vmac.py``) it is an IO concern only;
the plan says "adverts leave from ``vrrp.42`` with source 10.0.0.51" and
this module makes that interface exist.  What keepalived 2.2.7 does, observed
in a namespace under a kernel with ipvlan (docs/keepalived.md#ipvlan):

* an ipvlan in **L2** mode on the base interface, its flag from the config:
  ``bridge`` (the default), ``private`` or ``vepa``; named like a VMAC,
  ``<vmac_prefix>.<VRID>`` or as ``use_ipvlan NAME`` says; its MAC is the
  base's (ipvlan has no MAC of its own, so there is no virtual MAC);
* brought up at creation and kept up in every state;
* ``use_ipvlan ADDR[/LEN]`` goes on it (a bare IPv4 address as /32; IPv6
  ``nodad`` and deprecated, as keepalived adds its own addresses); an IPv4
  instance sends its adverts from that address;
* the VIPs stay on the base interface (keepalived 2.2.7 does not move them:
  its GARPs go out "on eth0"), only the adverts use the ipvlan (unless
  ``vmac_xmit_base``, which unicast forces);
* sysctls: an IPv4 ipvlan gets ``disable_ipv6=1``; nothing else is changed,
  neither on it nor on the base (unlike a VMAC);
* on stop: deleted.

pyroute2 (0.9) knows ``IFLA_IPVLAN_MODE`` but not ``IFLA_IPVLAN_FLAGS``
(attribute 2 of the kernel's ``IFLA_IPVLAN_*``), which carries
bridge/private/vepa: it is added to pyroute2's ipvlan attribute table here,
once, before any message is built.
"""

from __future__ import annotations

import errno
import socket
from ipaddress import IPv4Interface, IPv6Interface
from typing import Any, Literal, cast

import msgspec
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl.ifinfmsg.plugins.ipvlan import ipvlan as _ipvlan_nla

from shared.config.model_global import GlobalDefs
from shared.config.model_vrrp import VrrpInstance

IPVLAN_MODE_L2 = 0
IPVLAN_FLAGS = {"bridge": 0, "private": 1, "vepa": 2}
"""``IPVLAN_F_PRIVATE`` and ``IPVLAN_F_VEPA`` (linux/if_link.h); bridge is no flag."""
IFA_F_NODAD = 0x02

if not any(name == "IFLA_IPVLAN_FLAGS" for name, _ in _ipvlan_nla.nla_map):
    _ipvlan_nla.nla_map = (*_ipvlan_nla.nla_map, ("IFLA_IPVLAN_FLAGS", "uint16"))

IpvlanMode = Literal["bridge", "private", "vepa"]


class Ipvlan(msgspec.Struct, frozen=True, kw_only=True):
    """One instance's ipvlan: what to create, on what, with which address."""

    name: str
    base: str
    mode: IpvlanMode = "bridge"
    family: Literal[4, 6] = 4
    address: IPv4Interface | IPv6Interface | None = None
    xmit_base: bool = False
    """Adverts leave from (and arrive on) the base interface (unicast)."""


def ipvlan_of(inst: VrrpInstance, g: GlobalDefs) -> Ipvlan | None:
    """The instance's ipvlan, or None without ``use_ipvlan``."""
    if not inst.use_ipvlan or not inst.interface or not inst.vrid:
        return None
    mode = cast(IpvlanMode, inst.ipvlan_mode or "bridge")  # the parser admits only the three
    return Ipvlan(
        name=inst.ipvlan_name or f"{g.vmac_prefix}.{inst.vrid}",
        base=inst.interface,
        mode=mode,
        family=6 if inst.family == 6 else 4,
        address=inst.ipvlan_address,
        xmit_base=inst.vmac_xmit_base,
    )


def ipvlan_sysctls(ipv: Ipvlan) -> list[tuple[str, int]]:
    """(path under /proc/sys/net, value): keepalived only disables IPv6 on an IPv4 ipvlan."""
    return [(f"ipv6/conf/{ipv.name}/disable_ipv6", 1)] if ipv.family == 4 else []


def address_request(ipv: Ipvlan, index: int) -> dict[str, Any] | None:
    """The ``ipr.addr("add", ...)`` arguments for the ipvlan's own address (IPv6: nodad, deprecated)."""
    if ipv.address is None:
        return None
    request: dict[str, Any] = {
        "index": index,
        "address": str(ipv.address.ip),
        "prefixlen": ipv.address.network.prefixlen,
    }
    if ipv.address.version == 6:
        request |= {
            "family": socket.AF_INET6,
            "flags": IFA_F_NODAD,
            "preferred_lft": 0,
            "valid_lft": 0xFFFFFFFF,
        }
    else:
        request["family"] = socket.AF_INET
    return request


def kind_of(msg: Any) -> str | None:
    info = msg.get("IFLA_LINKINFO")
    return None if info is None else info.get("IFLA_INFO_KIND")


def _data(msg: Any) -> Any:
    info = msg.get("IFLA_LINKINFO")
    return None if info is None else info.get("IFLA_INFO_DATA")


def matches(msg: Any, ipv: Ipvlan, base_index: int) -> bool:
    """Is this link exactly the ipvlan we want (kind, L2, flag, base)?"""
    data = _data(msg)
    return (
        kind_of(msg) == "ipvlan"
        and msg.get("IFLA_LINK") == base_index
        and data is not None
        and data.get("IFLA_IPVLAN_MODE") == IPVLAN_MODE_L2
        and (data.get("IFLA_IPVLAN_FLAGS") or 0) == IPVLAN_FLAGS[ipv.mode]
    )


def is_leftover(msg: Any, base_index: int) -> bool:
    """An ipvlan on our base under our name: what a crashed keepalived or lifeline leaves behind."""
    return kind_of(msg) == "ipvlan" and msg.get("IFLA_LINK") == base_index


def link_request(ipv: Ipvlan, base_index: int) -> dict[str, Any]:
    """The ``ipr.link("add", ...)`` arguments: an L2 ipvlan with the configured flag."""
    return {
        "ifname": ipv.name,
        "kind": "ipvlan",
        "link": base_index,
        "ipvlan_mode": IPVLAN_MODE_L2,
        "ipvlan_flags": IPVLAN_FLAGS[ipv.mode],
    }


async def add_address(ipr: Any, ipv: Ipvlan, index: int) -> None:
    """The ``use_ipvlan`` address on the ipvlan (already there after a reuse: fine)."""
    request = address_request(ipv, index)
    if request is None:
        return
    try:
        await ipr.addr("add", **request)
    except NetlinkError as exc:
        if exc.code != errno.EEXIST:
            raise


__all__ = [
    "IPVLAN_FLAGS",
    "Ipvlan",
    "add_address",
    "address_request",
    "ipvlan_of",
    "ipvlan_sysctls",
    "is_leftover",
    "kind_of",
    "link_request",
    "matches",
]
