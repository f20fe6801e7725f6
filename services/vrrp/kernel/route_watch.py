"""Deleted addresses, routes and rules, as netlink reports them: what tracking is told.

Why its own module: keepalived 2.2.7 watches the kernel for its own items
disappearing (a static one is restored, a tracked virtual one makes its
MASTER step down: ``core/static_tracking.py``, ``VirtualRouteLost``).  This
is the one place that turns netlink messages and configured items into the
same small identity, so the service can tell whether a deletion concerns
one of ours.  The identities are pure (unit-tested without root);
:func:`deletions` and :func:`present` are the thin IO side.

An identity is what keepalived (and ``ip route del``) matches on: a route's
family, destination, table and protocol; a rule's family and preference
(keepalived requires rules to have one); an address and its prefix length.
The IPv4 kernel sends no RTM_DELROUTE for the routes it flushes with a link
going down: the link watch covers those.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncGenerator, Iterable
from ipaddress import ip_network
from typing import Any

from pyroute2 import AsyncIPRoute
from pyroute2.netlink.rtnl import (
    RTMGRP_IPV4_IFADDR,
    RTMGRP_IPV4_ROUTE,
    RTMGRP_IPV4_RULE,
    RTMGRP_IPV6_IFADDR,
    RTMGRP_IPV6_ROUTE,
    RTMGRP_IPV6_RULE,
)

from services.vrrp.kernel.addresses import Rtnl
from services.vrrp.kernel.routes import RT_TABLE_MAIN, describe_route, describe_rule, protocol_number
from shared.config.model_vrrp import Route, Rule, VirtualAddress

Ident = tuple[str | int, ...]
"""A route (family, destination, table, protocol), a rule (family, preference) or an address (ip, prefix)."""

GROUPS = (
    RTMGRP_IPV4_IFADDR
    | RTMGRP_IPV6_IFADDR
    | RTMGRP_IPV4_ROUTE
    | RTMGRP_IPV6_ROUTE
    | RTMGRP_IPV4_RULE
    | RTMGRP_IPV6_RULE
)


def _family(version: int) -> int:
    return socket.AF_INET6 if version == 6 else socket.AF_INET


def route_ident(route: Route) -> Ident:
    """The identity of a configured route."""
    table = route.table if route.table is not None else RT_TABLE_MAIN
    family = _family(route.destination.version)
    return ("route", family, str(route.destination), table, protocol_number(route.protocol))


def rule_ident(rule: Rule) -> Ident:
    """The identity of a configured rule (its preference: the parser always gives one)."""
    return ("rule", _family(rule.family), rule.preference if rule.preference is not None else -1)


def address_ident(va: VirtualAddress) -> Ident:
    """The identity of a configured address."""
    return ("address", str(va.address.ip), va.address.network.prefixlen)


def tracked_items(routes: Iterable[Route], rules: Iterable[Rule]) -> dict[Ident, str]:
    """Identity → description of each virtual route and rule without ``no_track``."""
    out = {route_ident(r): f"route {describe_route(r)}" for r in routes if not r.no_track}
    out.update({rule_ident(r): f"rule {describe_rule(r)}" for r in rules if not r.no_track})
    return out


def message_ident(msg: Any) -> Ident | None:
    """The identity of what an RTM_NEWROUTE/DELROUTE/NEWRULE/DELRULE/NEWADDR/DELADDR message is about."""
    event = str(msg.get("event") or "")
    family = int(msg["family"])
    if event.endswith("ROUTE"):
        dst = msg.get("RTA_DST") or ("::" if family == socket.AF_INET6 else "0.0.0.0")
        table = msg.get("RTA_TABLE") or msg["table"]
        network = str(ip_network(f"{dst}/{msg['dst_len']}", strict=False))
        return ("route", family, network, int(table), int(msg["proto"]))
    if event.endswith("RULE"):
        return ("rule", family, int(msg.get("FRA_PRIORITY") or 0))
    if event.endswith("ADDR"):
        address = msg.get("IFA_LOCAL") or msg.get("IFA_ADDRESS")
        return None if address is None else ("address", str(address), int(msg["prefixlen"]))
    return None


def is_deletion(msg: Any) -> bool:
    """An RTM_DELROUTE, RTM_DELRULE or RTM_DELADDR."""
    return str(msg.get("event") or "") in ("RTM_DELROUTE", "RTM_DELRULE", "RTM_DELADDR")


async def deletions(*, netns: str | None = None) -> AsyncGenerator[Ident, None]:
    """Yield the identity of every address, route and rule deleted from now on (its own socket)."""
    ipr = AsyncIPRoute(netns=netns) if netns is not None else AsyncIPRoute()
    try:
        await ipr.bind(groups=GROUPS)
        while True:
            async for msg in ipr.get():
                if is_deletion(msg) and (ident := message_ident(msg)) is not None:
                    yield ident
    finally:
        ipr.close()


async def present(ipr: Rtnl, ident: Ident) -> bool:
    """Is a route or rule with this identity in the kernel now (a deletion may be followed by a re-add)?"""
    if ident[0] == "route":
        dump = await ipr.route("dump", family=int(ident[1]))
    elif ident[0] == "rule":
        dump = await ipr.rule("dump", family=int(ident[1]))
    else:
        dump = await ipr.addr("dump", family=socket.AF_INET6 if ":" in str(ident[1]) else socket.AF_INET)
    async for msg in dump:
        if message_ident(msg) == ident:
            return True
    return False


__all__ = [
    "Ident",
    "address_ident",
    "deletions",
    "is_deletion",
    "message_ident",
    "present",
    "route_ident",
    "rule_ident",
    "tracked_items",
]
