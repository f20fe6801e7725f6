"""From keepalived.conf's virtual_server blocks to the IPVS table we want in the kernel.

Why a plan and a table: the configuration says *what may be* in the kernel
(every service, every real server with its configured weight); the pool logic
(``pool.py``) says *who is in right now* and at which weight.  ``build_plans``
turns the configuration into immutable ``VirtualPlan`` objects once per load,
and ``desired_table`` combines a plan with pool membership into the exact
kernel rows the reconciler compares with what it reads back.  Everything here is
pure data in kernel units (address families, protocol numbers, flag bits) so
the reconciler and the netlink layer never look at the configuration again.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from shared.addresses import IPAddress
from shared.config.lvs_keys import protocol_of, rs_key, vs_key
from shared.config.model_lvs import (
    DEFAULT_PERSISTENCE_TIMEOUT,
    LvsConfig,
    LvsMethod,
    RealServer,
    VirtualServer,
)
from shared.events import real_server_key

# linux/ip_vs.h constants (kernel ABI, stable)
FWD_MASQ = 0
FWD_LOCALNODE = 1
FWD_TUNNEL = 2
FWD_DROUTE = 3
TUN_IPIP, TUN_GUE, TUN_GRE = 0, 1, 2
TUN_FLAG_CSUM, TUN_FLAG_REMCSUM = 1, 2
SVC_F_PERSISTENT = 0x1
SVC_F_HASHED = 0x2
SVC_F_ONEPACKET = 0x4
SVC_F_SCHED1, SVC_F_SCHED2, SVC_F_SCHED3 = 0x8, 0x10, 0x20
SVC_FLAGS_MASK = 0xFFFF & ~SVC_F_HASHED
"""Flags we own; the kernel adds HASHED by itself, so comparisons ignore it."""

PROTOCOLS = {"TCP": socket.IPPROTO_TCP, "UDP": socket.IPPROTO_UDP, "SCTP": 132}
PROTOCOL_NAMES = {v: k for k, v in PROTOCOLS.items()}
FWD_NAMES = {FWD_MASQ: "NAT", FWD_LOCALNODE: "LOCAL", FWD_TUNNEL: "TUN", FWD_DROUTE: "DR"}

_SCHED_FLAG_BITS = {
    "flag-1": SVC_F_SCHED1,
    "flag-2": SVC_F_SCHED2,
    "flag-3": SVC_F_SCHED3,
    "sh-fallback": SVC_F_SCHED1,
    "sh-port": SVC_F_SCHED2,
    "mh-fallback": SVC_F_SCHED1,
    "mh-port": SVC_F_SCHED2,
}


class ServiceKey(NamedTuple):
    """What identifies an IPVS service in the kernel: (af, protocol, addr, port) or (af, fwmark)."""

    af: int
    protocol: int
    addr: str | None
    port: int
    fwmark: int

    def __str__(self) -> str:
        if self.fwmark:
            return f"FWM {self.fwmark}" + ("" if self.af == socket.AF_INET else " IPv6")
        host = f"[{self.addr}]" if self.af == socket.AF_INET6 else self.addr
        return f"{PROTOCOL_NAMES.get(self.protocol, self.protocol)} {host}:{self.port}"


class DestKey(NamedTuple):
    """A real server inside one service: address and port."""

    addr: str
    port: int

    def __str__(self) -> str:
        return real_server_key(self.addr, self.port)


@dataclass(frozen=True)
class ServiceAttrs:
    """The settable part of a service (IPVS_CMD_SET_SERVICE changes these in place)."""

    sched: str = "wlc"
    flags: int = 0
    timeout: int = 0
    netmask: int = 0xFFFFFFFF
    """Raw 32-bit value as the kernel stores it: an IPv4 mask in network order, or an IPv6 prefix length."""
    pe_name: str = ""


@dataclass(frozen=True)
class DestAttrs:
    """The settable part of a real server (IPVS_CMD_SET_DEST changes these in place)."""

    fwd: int = FWD_MASQ
    weight: int = 1
    u_thresh: int = 0
    l_thresh: int = 0
    tun_type: int = 0
    tun_port: int = 0
    tun_flags: int = 0


@dataclass
class ServiceEntry:
    attrs: ServiceAttrs
    dests: dict[DestKey, DestAttrs] = field(default_factory=dict)


Table = dict[ServiceKey, ServiceEntry]
"""A whole IPVS table (desired or read from the kernel)."""


@dataclass(frozen=True)
class RealPlan:
    """One real server (or the sorry server) as configured: where it is and its full weight."""

    name: str
    dest: DestKey
    attrs: DestAttrs
    inhibit_on_failure: bool = False
    alpha: bool = False


@dataclass(frozen=True)
class VirtualPlan:
    """One ``virtual_server`` block resolved into kernel terms; groups expand to several services."""

    name: str
    services: tuple[ServiceKey, ...]
    attrs: ServiceAttrs
    reals: Mapping[str, RealPlan]
    sorry: RealPlan | None = None
    quorum: int = 1
    hysteresis: int = 0
    alpha: bool = False
    omega: bool = False
    ha_suspend: bool = False


def family_of(address: IPAddress | str) -> int:
    return socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET


def service_attrs(vs: VirtualServer, af: int) -> ServiceAttrs:
    """Scheduler, flags, persistence: what ``ipvsadm -A/-E -s -b -p -M --pe -o`` would set."""
    flags = 0
    for name in vs.sched_flags:
        flags |= _SCHED_FLAG_BITS.get(name, 0)
    if vs.ops:
        flags |= SVC_F_ONEPACKET
    timeout = 0
    if vs.persistence_timeout is not None:
        timeout = vs.persistence_timeout or DEFAULT_PERSISTENCE_TIMEOUT
        flags |= SVC_F_PERSISTENT
    return ServiceAttrs(
        sched=vs.lb_algo or "wlc",
        flags=flags,
        timeout=timeout,
        netmask=netmask_value(vs.persistence_granularity, af),
        pe_name=vs.persistence_engine or "",
    )


def netmask_value(granularity: str | None, af: int) -> int:
    """``persistence_granularity`` as the kernel's raw u32: v4 mask bytes in memory order, v6 prefix."""
    if af == socket.AF_INET6:
        return int(granularity) if granularity else 128
    mask = ipaddress.IPv4Address(granularity or "255.255.255.255").packed
    return int(struct.unpack("=I", mask)[0])


def dest_attrs(method: LvsMethod | None, weight: int, rs: RealServer | None = None) -> DestAttrs:
    """Forwarding method and tunnel options of one real server, at ``weight``."""
    method = method or LvsMethod()
    fwd = {"NAT": FWD_MASQ, "DR": FWD_DROUTE, "TUN": FWD_TUNNEL}[method.kind]
    tun_type = tun_port = tun_flags = 0
    if method.kind == "TUN":
        tun_type = {None: TUN_IPIP, "ipip": TUN_IPIP, "gue": TUN_GUE, "gre": TUN_GRE}[method.tunnel_type]
        tun_port = method.tunnel_port or 0
        tun_flags = {None: 0, "nocsum": 0, "csum": TUN_FLAG_CSUM, "remcsum": TUN_FLAG_REMCSUM}[
            method.checksum
        ]
    return DestAttrs(
        fwd=fwd,
        weight=weight,
        u_thresh=(rs.uthreshold or 0) if rs else 0,
        l_thresh=(rs.lthreshold or 0) if rs else 0,
        tun_type=tun_type,
        tun_port=tun_port,
        tun_flags=tun_flags,
    )


def _expand_range(first: IPAddress, last: IPAddress | None) -> Iterable[IPAddress]:
    end = int(last) if last is not None else int(first)
    for n in range(int(first), end + 1):
        yield ipaddress.ip_address(n) if first.version == 4 else ipaddress.IPv6Address(n)


def service_keys(vs: VirtualServer, lvs: LvsConfig) -> tuple[ServiceKey, ...]:
    """Every kernel service one virtual_server stands for (a group expands to all its entries)."""
    proto = PROTOCOLS[protocol_of(vs)]
    if vs.fwmark is not None:
        af = socket.AF_INET6 if vs.ip_family == "inet6" else socket.AF_INET
        return (ServiceKey(af, 0, None, 0, vs.fwmark),)
    if vs.address is not None:
        return (ServiceKey(family_of(vs.address), proto, str(vs.address), vs.port, 0),)
    group = lvs.virtual_server_groups.get(vs.group or "")
    keys: list[ServiceKey] = []
    for entry in group.entries if group else ():
        if entry.fwmark is not None:
            af = socket.AF_INET6 if (entry.family or vs.ip_family) == "inet6" else socket.AF_INET
            keys.append(ServiceKey(af, 0, None, 0, entry.fwmark))
        elif entry.first is not None:
            for addr in _expand_range(entry.first, entry.last):
                keys.append(ServiceKey(family_of(addr), proto, str(addr), entry.port or vs.port, 0))
    return tuple(dict.fromkeys(keys))


def build_plans(lvs: LvsConfig) -> dict[str, VirtualPlan]:
    """One plan per virtual_server, keyed by its bus name; later duplicates lose, as keepalived warns."""
    plans: dict[str, VirtualPlan] = {}
    for vs in lvs.virtual_servers:
        keys = service_keys(vs, lvs)
        if not keys:
            continue
        af = keys[0].af
        reals: dict[str, RealPlan] = {}
        for rs in vs.real_servers:
            weight = vs.weight if rs.weight is None else rs.weight
            port = rs.port if rs.port is not None else vs.port
            plan = RealPlan(
                name=rs_key(vs, rs),
                dest=DestKey(str(rs.address), port),
                attrs=dest_attrs(rs.lvs_method or vs.lvs_method, weight, rs),
                inhibit_on_failure=bool(
                    vs.inhibit_on_failure if rs.inhibit_on_failure is None else rs.inhibit_on_failure
                ),
                alpha=bool(vs.alpha if rs.alpha is None else rs.alpha),
            )
            reals.setdefault(plan.name, plan)
        sorry = None
        if vs.sorry_server is not None:
            sport = vs.sorry_server.port if vs.sorry_server.port is not None else vs.port
            sorry = RealPlan(
                name=real_server_key(str(vs.sorry_server.address), sport),
                dest=DestKey(str(vs.sorry_server.address), sport),
                attrs=dest_attrs(vs.sorry_server_lvs_method or vs.lvs_method, 1),
                inhibit_on_failure=vs.sorry_server_inhibit,
            )
        plans.setdefault(
            vs_key(vs),
            VirtualPlan(
                name=vs_key(vs),
                services=keys,
                attrs=service_attrs(vs, af),
                reals=reals,
                sorry=sorry,
                quorum=vs.quorum,
                hysteresis=vs.hysteresis,
                alpha=vs.alpha,
                omega=vs.omega,
                ha_suspend=vs.ha_suspend,
            ),
        )
    return plans


def plan_table(plan: VirtualPlan, members: Mapping[str, int]) -> Table:
    """Kernel rows of one virtual server, given the pool's members (real/sorry name -> weight)."""
    dests: dict[DestKey, DestAttrs] = {}
    for name, weight in members.items():
        real = plan.reals.get(name)
        if real is None and plan.sorry is not None and plan.sorry.name == name:
            real = plan.sorry
        if real is None:
            continue
        attrs = real.attrs if real.attrs.weight == weight else _with_weight(real.attrs, weight)
        dests[real.dest] = attrs
    return {key: ServiceEntry(plan.attrs, dict(dests)) for key in plan.services}


def _with_weight(attrs: DestAttrs, weight: int) -> DestAttrs:
    return DestAttrs(
        fwd=attrs.fwd,
        weight=weight,
        u_thresh=attrs.u_thresh,
        l_thresh=attrs.l_thresh,
        tun_type=attrs.tun_type,
        tun_port=attrs.tun_port,
        tun_flags=attrs.tun_flags,
    )
