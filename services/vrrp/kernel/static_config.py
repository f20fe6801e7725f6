"""``static_ipaddress`` / ``static_routes`` / ``static_rules``: keepalived's addresses that never float.

Why its own module: they belong to no instance and to no state.  keepalived
(2.2.7, checked in a namespace) sets them once at start, before any instance
runs, and removes them at shutdown, after the instances have dropped their
VIPs and virtual routes: addresses, then routes, then rules going up; rules,
routes, addresses coming down.  On reload it removes the ones no longer
configured and adds the new ones, leaving the rest alone.

Adds and removes are idempotent (an address or route already there at start,
or gone at stop, is counted, not an error), so a restart after a crash just
finds its static items in place.

While running, keepalived keeps them in place: one deleted by hand is
restored, one on an interface that goes down is restored when it comes back,
and while a ``track_group`` item is lost its group's instances are in FAULT.
``core/static_tracking.py`` decides that; :attr:`StaticConfig.watch` is its
state, and :meth:`StaticConfig.restore` does what it asks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import TypeVar

import msgspec
from pyroute2.netlink.exceptions import NetlinkError

from services.vrrp.core.params import vip_of
from services.vrrp.core.static_tracking import StaticItem, StaticWatch
from services.vrrp.kernel import addresses
from services.vrrp.kernel.addresses import Rtnl
from services.vrrp.kernel.route_watch import Ident, address_ident, route_ident, rule_ident
from services.vrrp.kernel.routes import (
    RouteCounters,
    RouteSet,
    add_route,
    add_rule,
    describe_route,
    describe_rule,
    route_devs,
    warn_unprogrammable,
)
from shared.config.model import Config
from shared.config.model_vrrp import Origin, Route, Rule, VirtualAddress

log = logging.getLogger("lifeline.vrrp")

T = TypeVar("T", VirtualAddress, Route, Rule)


def _same(item: T) -> T:
    """``item`` without its file and line: what a reload compares (moving a line changes nothing)."""
    return msgspec.structs.replace(item, origin=Origin())


def _missing_from(old: Sequence[T], new: Sequence[T]) -> list[T]:
    """Items of ``old`` that ``new`` no longer has."""
    kept = [_same(item) for item in new]
    return [item for item in old if _same(item) not in kept]


class StaticConfig:
    """The static items of one configuration, and what happened to them (``status``)."""

    def __init__(
        self,
        addrs: Iterable[VirtualAddress],
        routes: Iterable[Route],
        rules: Iterable[Rule],
        *,
        default_interface: str,
        groups: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        """``groups``: each ``track_group``'s instances (``track_group NAME { group { ... } }``)."""
        self.addresses = tuple(addrs)
        self.net = RouteSet(routes, rules, owner="static")
        self.default_interface = default_interface
        self.address_counters = RouteCounters()
        self.restorations = 0
        self.suspended = False
        """Set while this set itself removes items (stop, reload): their deletions are no loss."""
        self._items: dict[str, VirtualAddress | Route | Rule] = {}
        self._keys: dict[Ident, str] = {}
        tracked: list[StaticItem] = []
        for key, ident, item, devs in self._describe():
            self._items[key] = item
            self._keys[ident] = key
            tracked.append(StaticItem(key=key, devs=devs, group=item.track_group))
        self.watch = StaticWatch(tracked, groups or {})

    def _describe(self) -> Iterable[tuple[str, Ident, VirtualAddress | Route | Rule, tuple[str, ...]]]:
        """(key, identity, item, interfaces) of every static item, addresses, routes, rules."""
        for va in self.addresses:
            dev = va.dev or self.default_interface
            yield f"address {va.address} dev {dev}", address_ident(va), va, (dev,)
        for route in self.net.routes:
            yield f"route {describe_route(route)}", route_ident(route), route, tuple(route_devs(route))
        for rule in self.net.rules:
            yield f"rule {describe_rule(rule)}", rule_ident(rule), rule, ()

    def key_of(self, ident: Ident) -> str | None:
        """The static item a deleted address/route/rule was, if one (and this set is not removing it)."""
        return None if self.suspended else self._keys.get(ident)

    async def restore(self, keys: Iterable[str], ipr: Rtnl, lock: asyncio.Lock) -> None:
        """Put back what ``watch`` asked for, telling it what the kernel accepted ("Restoring ...")."""
        for key in keys:
            item = self._items[key]
            log.info("Restoring deleted static %s", key)
            try:
                async with lock:
                    if isinstance(item, VirtualAddress):
                        await addresses.add_vip(ipr, vip_of(item), default_dev=self.default_interface)
                    elif isinstance(item, Route):
                        await add_route(ipr, item)
                    else:
                        await add_rule(ipr, item)
            except (NetlinkError, OSError, LookupError, ValueError) as exc:
                log.error("cannot restore static %s: %s", key, exc)
                self.watch.restored(key, ok=False)
                continue
            self.restorations += 1
            self.watch.restored(key, ok=True)

    @classmethod
    def from_config(cls, config: Config) -> StaticConfig:
        """The static blocks of ``config``; what cannot be programmed is logged with its line."""
        vrrp = config.vrrp
        warn_unprogrammable([*vrrp.static_routes, *vrrp.static_rules])
        return cls(
            vrrp.static_addresses,
            vrrp.static_routes,
            vrrp.static_rules,
            default_interface=config.global_defs.default_interface,
            groups={name: group.members for name, group in vrrp.track_groups.items()},
        )

    def __bool__(self) -> bool:
        return bool(self.addresses) or bool(self.net)

    async def apply(self, ipr: Rtnl, lock: asyncio.Lock) -> None:
        """At start (and after a reload): addresses, routes, rules."""
        for va in self.addresses:
            await self._address(ipr, lock, va, adding=True)
        await self.net.install(ipr, lock)
        if self:
            log.info(
                "static: %d address(es), %d route(s), %d rule(s) set",
                len(self.addresses),
                len(self.net.routes),
                len(self.net.rules),
            )

    async def remove(self, ipr: Rtnl, lock: asyncio.Lock) -> None:
        """At shutdown: rules, routes, addresses."""
        self.suspended = True
        await self.net.remove(ipr, lock)
        for va in self.addresses:
            await self._address(ipr, lock, va, adding=False)

    async def replace(self, new: StaticConfig, ipr: Rtnl, lock: asyncio.Lock) -> StaticConfig:
        """Reload: remove what ``new`` dropped, then set ``new`` (what stays is found present); returns it."""
        self.suspended = True
        gone = StaticConfig(
            _missing_from(self.addresses, new.addresses),
            _missing_from(self.net.routes, new.net.routes),
            _missing_from(self.net.rules, new.net.rules),
            default_interface=self.default_interface,
        )
        await gone.remove(ipr, lock)
        await new.apply(ipr, lock)
        return new

    async def _address(self, ipr: Rtnl, lock: asyncio.Lock, va: VirtualAddress, *, adding: bool) -> None:
        c = self.address_counters
        vip = vip_of(va)
        try:
            async with lock:
                if adding:
                    changed = await addresses.add_vip(ipr, vip, default_dev=self.default_interface)
                else:
                    changed = await addresses.remove_vip(ipr, vip, default_dev=self.default_interface)
        except (NetlinkError, OSError, LookupError, ValueError) as exc:
            c.errors += 1
            verb = "add" if adding else "remove"
            log.error(
                "%s:%d: cannot %s static address %s: %s",
                va.origin.file,
                va.origin.line,
                verb,
                va.address,
                exc,
            )
            return
        c.tally(adding, changed)

    def status(self) -> dict[str, object]:
        return {
            "addresses": {"count": len(self.addresses), **msgspec.to_builtins(self.address_counters)},
            **self.net.status(),
            "restorations": self.restorations,
            "lost": sorted(self.watch.lost),
        }


__all__ = ["StaticConfig"]
