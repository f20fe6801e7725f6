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
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from typing import TypeVar

import msgspec
from pyroute2.netlink.exceptions import NetlinkError

from services.vrrp.core.params import vip_of
from services.vrrp.kernel import addresses
from services.vrrp.kernel.addresses import Rtnl
from services.vrrp.kernel.routes import RouteCounters, RouteSet, warn_unprogrammable
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
    ) -> None:
        self.addresses = tuple(addrs)
        self.net = RouteSet(routes, rules, owner="static")
        self.default_interface = default_interface
        self.address_counters = RouteCounters()

    @classmethod
    def from_config(cls, config: Config) -> StaticConfig:
        """The static blocks of ``config``; what cannot be programmed is logged with its line."""
        vrrp = config.vrrp
        warn_unprogrammable([*vrrp.static_routes, *vrrp.static_rules])
        for va in vrrp.static_addresses:
            if va.track_group is not None:
                log.warning(
                    "%s:%d: warning: track_group %s is not acted on yet (the address is still set)",
                    va.origin.file,
                    va.origin.line,
                    va.track_group,
                )
        return cls(
            vrrp.static_addresses,
            vrrp.static_routes,
            vrrp.static_rules,
            default_interface=config.global_defs.default_interface,
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
        await self.net.remove(ipr, lock)
        for va in self.addresses:
            await self._address(ipr, lock, va, adding=False)

    async def replace(self, new: StaticConfig, ipr: Rtnl, lock: asyncio.Lock) -> StaticConfig:
        """Reload: remove what ``new`` dropped, then set ``new`` (what stays is found present); returns it."""
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
        }


__all__ = ["StaticConfig"]
