"""Static addresses, routes and rules that keepalived keeps in place, and the track groups they fault.

Why a core of its own: keepalived 2.2.7 (observed in a namespace) treats the
``static_ipaddress`` / ``static_routes`` / ``static_rules`` items as things
that must stay, whatever an operator does:

* an item deleted by hand is restored at once ("Restoring deleted static
  ...") -- with or without ``track_group``;
* an item whose interface goes down (or away) is lost until the interface
  comes back up, when every static item on it is restored;
* while an item with ``track_group G`` is lost (its interface down, or its
  restoration refused), every instance of ``track_group G { group { ... } }``
  is in FAULT; once it is restored they leave FAULT.

This module only decides; the shell (``kernel/static_config.py`` and the
service's netlink watch) reports deletions, links and restore results, and
performs the restorations it returns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import msgspec


class StaticItem(msgspec.Struct, frozen=True, kw_only=True):
    """One static address, route or rule, as tracking sees it.

    ``key``: how the shell names it (unique in the configuration, used in
    logs and in the FAULT reason); ``devs``: the interfaces it lives on;
    ``group``: its ``track_group``, if any.
    """

    key: str
    devs: tuple[str, ...] = ()
    group: str | None = None


class StaticWatch:
    """Which static items are lost, what to restore, and which instances that faults."""

    def __init__(self, items: Iterable[StaticItem], groups: Mapping[str, Sequence[str]]) -> None:
        self._items = {item.key: item for item in items}
        self._groups = {name: tuple(members) for name, members in groups.items()}
        self._lost: set[str] = set()
        self._down: set[str] = set()

    @property
    def lost(self) -> frozenset[str]:
        """The keys of the items currently lost."""
        return frozenset(self._lost)

    def _restorable(self, item: StaticItem) -> bool:
        return not any(dev in self._down for dev in item.devs)

    def deleted(self, key: str) -> list[str]:
        """``key`` was deleted by someone else: it is lost; restore it now unless its interface is down."""
        item = self._items.get(key)
        if item is None:
            return []
        self._lost.add(key)
        return [key] if self._restorable(item) else []

    def link(self, ifname: str, up: bool) -> list[str]:
        """An interface went down (its items are lost) or up (every item on it is to be restored)."""
        on_it = [item for item in self._items.values() if ifname in item.devs]
        if not up:
            self._down.add(ifname)
            self._lost.update(item.key for item in on_it)
            return []
        self._down.discard(ifname)
        return [item.key for item in on_it if self._restorable(item)]

    def restored(self, key: str, ok: bool) -> None:
        """The shell's restoration of ``key``: back in place, or refused (lost until the next chance)."""
        if key not in self._items:
            return
        if ok:
            self._lost.discard(key)
        else:
            self._lost.add(key)

    def faults(self) -> dict[str, str]:
        """Instance → the first lost item (configuration order) of its track group, for those in FAULT."""
        out: dict[str, str] = {}
        for item in self._items.values():
            if item.key not in self._lost or item.group is None:
                continue
            for member in self._groups.get(item.group, ()):
                out.setdefault(member, item.key)
        return out

    def interfaces(self) -> frozenset[str]:
        """Every interface a static item lives on (the shell follows their links)."""
        return frozenset(dev for item in self._items.values() for dev in item.devs)


__all__ = ["StaticItem", "StaticWatch"]
