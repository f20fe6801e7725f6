"""``virtual_routes`` / ``virtual_rules`` (and the static ones) through netlink (pyroute2).

Why its own module: the parser keeps keepalived's ``ip route`` / ``ip rule``
lines as :class:`~shared.config.model_vrrp.Route` / ``Rule``; this is the one
place that turns them into RTM_NEWROUTE / RTM_NEWRULE requests.  The
translation is pure (``route_request``, ``rule_request``: unit-tested without
root); :class:`RouteSet` is the thin IO side an instance (or the static set)
drives.

keepalived's facts kept here (checked against 2.2.7 in a namespace):

* every route and rule is tagged ``proto keepalived`` (18) unless the line
  says ``protocol``; removal names that protocol too, so an operator's
  identical route with another protocol is never touched;
* routes are added before rules and removed after them;
* adding what is there (EEXIST) and removing what is gone (ESRCH/ENOENT, e.g.
  a route the kernel dropped with its source address) are fine: counted, not
  errors.

Options the parser accepts but that cannot be programmed here (``vrf``,
``expires``, ``ttl-propagate``, ``fastopen_no_cookie``, realm *names*) are
reported by :func:`unprogrammable` with the line they came from; the rest of
the line is still programmed.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec
from pyroute2.netlink.exceptions import NetlinkError

from services.vrrp.kernel.addresses import Rtnl
from shared.config.iproute import SCOPES, route_protocols
from shared.config.model_vrrp import Nexthop, Route, Rule

log = logging.getLogger("lifeline.vrrp")

RTPROT_KEEPALIVED = 18
"""keepalived's protocol number for what it installs (``proto keepalived`` in rt_protos)."""
RT_SCOPE_NOWHERE = 255
"""In a delete request: "any scope" (the kernel matches scope 0 otherwise)."""
RTNH_F_ONLINK = 4
FIB_RULE_INVERT = 2
RT_TABLE_MAIN = 254
RTAX_FEATURE_ECN = 1
PREFS = {"low": 3, "medium": 0, "high": 1}
"""IPv6 router preference (ICMPV6_ROUTER_PREF_*)."""
RULE_ACTIONS = {"table": 1, "goto": 2, "nop": 3, "blackhole": 6, "unreachable": 7, "prohibit": 8, "l3mdev": 1}
RTAX = {
    "mtu": 2,
    "window": 3,
    "rtt": 4,
    "rttvar": 5,
    "ssthresh": 6,
    "cwnd": 7,
    "advmss": 8,
    "reordering": 9,
    "hoplimit": 10,
    "initcwnd": 11,
    "rto_min": 13,
    "initrwnd": 14,
    "quickack": 15,
    "congctl": 16,
}
"""Route metrics pyroute2 can send, by ``ip route`` keyword, with their RTAX number (for ``lock``)."""
RTAX_NAMES = {
    "congctl": "RTAX_CC_ALGO",
    **{key: f"RTAX_{key.upper()}" for key in RTAX if key != "congctl"},
}
UNPROGRAMMABLE = ("vrf", "expires", "ttl-propagate", "fastopen_no_cookie")
_GONE = {errno.ESRCH, errno.ENOENT}


# --------------------------------------------------------------------------- pure translation


def _family(version: int) -> int:
    return socket.AF_INET6 if version == 6 else socket.AF_INET


def _realms(text: str | None) -> int | None:
    """``[FROM/]TO`` realms as RTA_FLOW / FRA_FLOW (numbers only; names are reported unprogrammable)."""
    if text is None:
        return None
    src, slash, dst = text.rpartition("/")
    try:
        return (int(src, 0) << 16 if slash else 0) | int(dst, 0)
    except ValueError:
        return None


def protocol_number(value: str | int | None) -> int:
    """A route or rule protocol as its number (``proto keepalived``, 18, when the line names none)."""
    if value is None:
        return RTPROT_KEEPALIVED
    if isinstance(value, int):
        return value
    named = route_protocols().get(value)
    return named if named is not None else int(value, 0)


def _scope(value: str | None) -> int | None:
    if value is None:
        return None
    return SCOPES[value] if value in SCOPES else int(value, 0)


def _rtt_ms(value: str) -> tuple[float, bool]:
    """iproute2's ``get_time_rtt``: (value, raw); a unit means milliseconds, none the kernel's raw unit."""
    for unit, scale in (("usecs", 0.001), ("usec", 0.001), ("us", 0.001), ("msecs", 1.0), ("msec", 1.0)):
        if value.endswith(unit):
            return float(value[: -len(unit)]) * scale, False
    for unit, scale in (("ms", 1.0), ("secs", 1000.0), ("sec", 1000.0), ("s", 1000.0)):
        if value.endswith(unit):
            return float(value[: -len(unit)]) * scale, False
    return float(value), True


def _metric_value(key: str, value: str) -> int | str:
    """One metric as the kernel stores it (rtt in 1/8 ms, rttvar in 1/4 ms, as ``ip route`` sends)."""
    if key == "congctl":
        return value
    if key in ("rtt", "rttvar", "rto_min"):
        number, raw = _rtt_ms(value)
        factor = {"rtt": 8, "rttvar": 4, "rto_min": 1}[key]
        return int(number if raw else number * factor)
    return int(value, 0)


def _metrics(route: Route) -> dict[str, int | str]:
    """RTA_METRICS: the ``mtu``/``advmss``/... values, ``lock`` bits, and ``features ecn``."""
    out: dict[str, int | str] = {
        RTAX_NAMES[key]: _metric_value(key, value) for key, value in route.metrics.items() if key in RTAX
    }
    lock = sum(1 << RTAX[key] for key in set(route.locked) if key in RTAX)
    if lock:
        out["RTAX_LOCK"] = lock
    if "ecn" in route.features:
        out["RTAX_FEATURES"] = RTAX_FEATURE_ECN
    return out


def route_devs(route: Route) -> list[str]:
    """Interfaces whose indexes :func:`route_request` needs."""
    devs = [route.dev, *(hop.dev for hop in route.nexthops)]
    return sorted({dev for dev in devs if dev is not None})


def _hop(hop: Nexthop, indexes: Mapping[str, int]) -> dict[str, Any]:
    out: dict[str, Any] = {"hops": (hop.weight or 1) - 1}
    if hop.via is not None:
        out["gateway"] = str(hop.via)
    if hop.dev is not None:
        out["oif"] = indexes[hop.dev]
    if hop.onlink:
        out["flags"] = RTNH_F_ONLINK
    if (flow := _realms(hop.realms)) is not None:
        out["flow"] = flow
    return out


def _route_key(route: Route, indexes: Mapping[str, int]) -> dict[str, Any]:
    """The fields that identify a route (what a delete must match)."""
    spec: dict[str, Any] = {
        "family": _family(route.destination.version),
        "dst": str(route.destination),
        "table": route.table if route.table is not None else RT_TABLE_MAIN,
        "proto": protocol_number(route.protocol),
        "type": route.type,
    }
    optional = {
        "src": str(route.from_prefix) if route.from_prefix is not None else None,
        "gateway": str(route.via) if route.via is not None else None,
        "oif": indexes[route.dev] if route.dev is not None else None,
        "priority": route.metric,
        "tos": route.tos,
    }
    spec.update({key: value for key, value in optional.items() if value is not None})
    return spec


def route_request(route: Route, indexes: Mapping[str, int]) -> dict[str, Any]:
    """Everything RTM_NEWROUTE carries for ``route`` (pyroute2 keywords); ``indexes``: ifname → ifindex."""
    spec = _route_key(route, indexes)
    extra: dict[str, Any] = {
        "prefsrc": str(route.source) if route.source is not None else None,
        "scope": _scope(route.scope),
        "flags": RTNH_F_ONLINK if route.onlink else None,
        "flow": _realms(route.realms),
        "pref": PREFS.get(route.pref or ""),
        "metrics": _metrics(route) or None,
        "multipath": [_hop(hop, indexes) for hop in route.nexthops] or None,
    }
    spec.update({key: value for key, value in extra.items() if value is not None})
    return spec


def route_delete_request(route: Route, indexes: Mapping[str, int]) -> dict[str, Any]:
    """RTM_DELROUTE for ``route``: its identity, any scope unless the line names one (as ``ip route del``)."""
    spec = _route_key(route, indexes)
    scope = _scope(route.scope)
    spec["scope"] = RT_SCOPE_NOWHERE if scope is None else scope
    return spec


def _range(value: tuple[int, int] | None) -> str | None:
    return None if value is None else f"{value[0]}:{value[1]}"


def rule_request(rule: Rule) -> dict[str, Any]:
    """RTM_NEWRULE / RTM_DELRULE for ``rule`` (the same fields identify it; pyroute2 keywords)."""
    spec: dict[str, Any] = {
        "family": _family(rule.family),
        "priority": rule.preference,
        "action": RULE_ACTIONS[rule.action],
        "protocol": rule.protocol if rule.protocol is not None else RTPROT_KEEPALIVED,
    }
    optional: dict[str, Any] = {
        "table": rule.table if rule.action == "table" else None,
        "goto": rule.goto if rule.action == "goto" else None,
        "l3mdev": 1 if rule.action == "l3mdev" else None,
        "flags": FIB_RULE_INVERT if rule.invert else None,
        "src": str(rule.from_prefix) if rule.from_prefix is not None else None,
        "dst": str(rule.to_prefix) if rule.to_prefix is not None else None,
        "tos": rule.tos,
        "fwmark": rule.fwmark,
        "fwmask": rule.fwmask,
        "flow": _realms(rule.realms),
        "iifname": rule.iif,
        "oifname": rule.oif,
        "uid_range": _range(rule.uidrange),
        "sport_range": _range(rule.sport),
        "dport_range": _range(rule.dport),
        "ip_proto": rule.ipproto,
        "suppress_prefixlen": rule.suppress_prefixlength,
        "suppress_ifgroup": rule.suppress_ifgroup,
        "tun_id": rule.tunnel_id,
    }
    spec.update({key: value for key, value in optional.items() if value is not None})
    return spec


def describe_route(route: Route) -> str:
    """``ip route``-like text for logs."""
    words = [route.type, str(route.destination)] if route.type != "unicast" else [str(route.destination)]
    for key, value in (("via", route.via), ("dev", route.dev), ("table", route.table)):
        if value is not None:
            words += [key, str(value)]
    words += [f"nexthop via {hop.via} dev {hop.dev}" for hop in route.nexthops]
    return " ".join(words)


def describe_rule(rule: Rule) -> str:
    """``ip rule``-like text for logs."""
    words = [f"preference {rule.preference}", "not" if rule.invert else ""]
    words += [f"from {rule.from_prefix or 'all'}"]
    if rule.to_prefix is not None:
        words.append(f"to {rule.to_prefix}")
    target = {"table": rule.table, "goto": rule.goto}.get(rule.action)
    words.append(f"{rule.action} {target}" if target is not None else rule.action)
    return " ".join(w for w in words if w)


def _realm_problem(text: str | None, where: str) -> list[str]:
    if text is not None and _realms(text) is None:
        return [f"realms '{text}' {where}: only numeric realms are programmed (ignored)"]
    return []


def unprogrammable(item: Route | Rule) -> list[str]:
    """What of ``item`` the parser accepted but netlink is not told (one message each)."""
    problems: list[str] = []
    if isinstance(item, Route):
        problems += [
            f"route option '{key}' is not programmed by lifeline (ignored)"
            for key in UNPROGRAMMABLE
            if key in item.metrics
        ]
        problems += _realm_problem(item.realms, "of the route")
        for hop in item.nexthops:
            problems += _realm_problem(hop.realms, "of a nexthop")
    else:
        problems += _realm_problem(item.realms, "of the rule")
    return problems


def warn_unprogrammable(items: Iterable[Route | Rule]) -> int:
    """Log each :func:`unprogrammable` problem as ``file:line: warning: ...``; returns how many."""
    count = 0
    for item in items:
        for problem in unprogrammable(item):
            log.warning("%s:%d: warning: %s", item.origin.file, item.origin.line, problem)
            count += 1
    return count


# --------------------------------------------------------------------------- netlink


async def _indexes(ipr: Rtnl, devs: Iterable[str]) -> dict[str, int]:
    """Fresh ifindexes, one RTM_GETLINK each (not cached: an interface recreated gets a new one).

    A missing interface is left out; a route that needs it then fails naming it.
    """
    out: dict[str, int] = {}
    for dev in devs:
        try:
            msgs = await ipr.link("get", ifname=dev)
        except NetlinkError as exc:
            if exc.code != errno.ENODEV:
                raise
            continue
        out[dev] = int(msgs[0]["index"])
    return out


class _Indexes(dict[str, int]):
    """ifname → ifindex; a missing name is a ``LookupError`` that says which interface."""

    def __missing__(self, key: str) -> int:
        raise LookupError(f"no interface {key!r}")


async def add_route(ipr: Rtnl, route: Route, indexes: Mapping[str, int] | None = None) -> bool:
    """Add ``route`` (``append`` lines with NLM_F_APPEND); False if it was already there.

    ``indexes``: known ifindexes (a set looks its interfaces up once); None: look them up here.
    """
    known = _Indexes(indexes if indexes is not None else await _indexes(ipr, route_devs(route)))
    spec = route_request(route, known)
    try:
        await ipr.route("append" if route.append else "add", **spec)
    except NetlinkError as exc:
        if exc.code == errno.EEXIST:
            return False
        raise
    return True


async def remove_route(ipr: Rtnl, route: Route, indexes: Mapping[str, int] | None = None) -> bool:
    """Remove ``route``; False if it (or its interface, and so the route with it) was already gone."""
    known = indexes if indexes is not None else await _indexes(ipr, route_devs(route))
    if any(dev not in known for dev in route_devs(route)):
        return False
    try:
        await ipr.route("del", **route_delete_request(route, known))
    except NetlinkError as exc:
        if exc.code in _GONE:
            return False
        raise
    return True


async def add_rule(ipr: Rtnl, rule: Rule) -> bool:
    """Add ``rule``; False if an identical one was there."""
    try:
        await ipr.rule("add", **rule_request(rule))
    except NetlinkError as exc:
        if exc.code == errno.EEXIST:
            return False
        raise
    return True


async def remove_rule(ipr: Rtnl, rule: Rule) -> bool:
    """Remove ``rule``; False if it was gone."""
    try:
        await ipr.rule("del", **rule_request(rule))
    except NetlinkError as exc:
        if exc.code in _GONE:
            return False
        raise
    return True


class RouteChange(msgspec.Struct, frozen=True):
    """An instance's effect: its virtual routes and rules go in (becoming MASTER) or out."""

    install: bool


class RouteCounters(msgspec.Struct, kw_only=True):
    """What happened to a set's routes and rules (``status``)."""

    added: int = 0
    already_present: int = 0
    removed: int = 0
    already_gone: int = 0
    errors: int = 0

    def tally(self, adding: bool, changed: bool) -> None:
        """One idempotent add or remove: did it change the kernel, or was it already so."""
        if adding:
            self.added += changed
            self.already_present += not changed
        else:
            self.removed += changed
            self.already_gone += not changed


class RouteSet:
    """Routes and rules installed and removed together (an instance's virtual ones, or the static ones).

    Each request takes the shared netlink lock on its own, so another
    instance's VIP change waits for at most one route, never for the set.
    Failures are logged and counted, never raised: a route the kernel refuses
    must not keep the rest (or the VIPs) from moving.
    """

    def __init__(self, routes: Iterable[Route], rules: Iterable[Rule], *, owner: str) -> None:
        self.routes = tuple(routes)
        self.rules = tuple(rules)
        self.owner = owner
        self.counters = RouteCounters()

    def __bool__(self) -> bool:
        return bool(self.routes or self.rules)

    async def _resolve(self, ipr: Rtnl, lock: asyncio.Lock) -> dict[str, int]:
        """Every interface the routes name, looked up once per install or removal."""
        devs = sorted({dev for route in self.routes for dev in route_devs(route)})
        if not devs:
            return {}
        try:
            async with lock:
                return await _indexes(ipr, devs)
        except (NetlinkError, OSError) as exc:
            log.error("(%s) cannot look up interfaces %s: %s", self.owner, ", ".join(devs), exc)
            return {}

    async def install(self, ipr: Rtnl, lock: asyncio.Lock) -> None:
        """Routes, then rules (keepalived's order)."""
        known = await self._resolve(ipr, lock)
        for route in self.routes:
            call = add_route(ipr, route, known)
            await self._one(lock, call, "add route", describe_route(route), adding=True)
        for rule in self.rules:
            await self._one(lock, add_rule(ipr, rule), "add rule", describe_rule(rule), adding=True)

    async def remove(self, ipr: Rtnl, lock: asyncio.Lock) -> None:
        """Rules, then routes (keepalived's order)."""
        for rule in self.rules:
            await self._one(lock, remove_rule(ipr, rule), "remove rule", describe_rule(rule), adding=False)
        known = await self._resolve(ipr, lock)
        for route in self.routes:
            call = remove_route(ipr, route, known)
            await self._one(lock, call, "remove route", describe_route(route), adding=False)

    async def _one(self, lock: asyncio.Lock, call: Any, what: str, text: str, *, adding: bool) -> None:
        c = self.counters
        try:
            async with lock:
                changed = await call
        except (NetlinkError, OSError, LookupError, ValueError) as exc:
            c.errors += 1
            log.error("(%s) cannot %s %s: %s", self.owner, what, text, exc)
            return
        c.tally(adding, changed)

    def status(self) -> dict[str, object]:
        return {"routes": len(self.routes), "rules": len(self.rules), **msgspec.to_builtins(self.counters)}


__all__ = [
    "RTPROT_KEEPALIVED",
    "RouteChange",
    "RouteCounters",
    "RouteSet",
    "add_route",
    "add_rule",
    "describe_route",
    "describe_rule",
    "remove_route",
    "remove_rule",
    "route_delete_request",
    "route_devs",
    "route_request",
    "rule_request",
    "unprogrammable",
    "warn_unprogrammable",
]
