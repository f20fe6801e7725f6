"""``ha_suspend``: which virtual servers ignore health because their address is not on this node (sans-IO).

Why: keepalived disables a virtual server's checkers while its address is not
configured locally (on a VRRP pair, the VIP appears when this node becomes
MASTER), so a backup does not churn its IPVS table on checks it should not
care about.  Disabled checkers report nothing, so the pool keeps its last
state; when the address appears the checkers run again and their next
results take effect.  In lifeline the checker is a separate service that may
keep publishing; the lvs engine asks ``Suspension.suspended`` and drops those
facts instead.  After a resume the checker's next publication (a transition,
or the heartbeat it re-sends every interval) brings the pool up to date, as
the next check of a re-enabled keepalived checker would.

Decisions where keepalived's documentation is silent:

* a ``virtual_server group`` is active while *any* of its addresses is local;
* a ``fwmark`` virtual server has no address, so ``ha_suspend`` never suspends
  it (``unsuspendable`` lets the service warn once);
* before the first address snapshot (``local`` is ``None``, e.g. the netlink
  watch could not start) nothing is suspended: acting on health is the safe
  default for a load balancer that cannot tell.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from services.lvs.core.desired import VirtualPlan


@dataclass(frozen=True)
class SuspendChange:
    """A virtual server whose health handling just stopped (``suspended``) or resumed."""

    virtual: str
    suspended: bool


def canonical(address: str) -> str:
    """One spelling per address (``2001:db8::1`` whatever netlink or the config wrote)."""
    return str(ipaddress.ip_address(address))


def watched_addresses(plan: VirtualPlan) -> frozenset[str]:
    """Addresses whose local presence activates a ``ha_suspend`` virtual server (empty: never suspended)."""
    if not plan.ha_suspend:
        return frozenset()
    return frozenset(canonical(key.addr) for key in plan.services if key.addr is not None)


class Suspension:
    """Local addresses in, suspended virtual servers out."""

    def __init__(self, plans: Mapping[str, VirtualPlan]) -> None:
        self.watch: dict[str, frozenset[str]] = {}
        self.unsuspendable: list[str] = []
        self.local: dict[str, set[int]] | None = None
        """Address -> interface indexes holding it; ``None`` until the first snapshot."""
        self.replan(plans)

    def suspended(self, virtual: str) -> bool:
        """Must this virtual server's health facts be ignored right now?"""
        addrs = self.watch.get(virtual)
        if not addrs or self.local is None:
            return False
        return not any(a in self.local for a in addrs)

    def suspended_set(self) -> set[str]:
        return {v for v in self.watch if self.suspended(v)}

    def replan(self, plans: Mapping[str, VirtualPlan]) -> list[SuspendChange]:
        """A (re)load: watch the new plans' addresses; the local addresses stay known."""
        before = self.suspended_set()
        self.watch = {name: addrs for name, plan in plans.items() if (addrs := watched_addresses(plan))}
        self.unsuspendable = [n for n, p in plans.items() if p.ha_suspend and n not in self.watch]
        return self._changes(before, plans)

    def snapshot(self, addresses: Iterable[tuple[int, str]]) -> list[SuspendChange]:
        """Every (interface index, address) configured now, from a netlink dump."""
        before = self.suspended_set()
        self.local = {}
        for index, address in addresses:
            self.local.setdefault(canonical(address), set()).add(index)
        return self._changes(before, self.watch)

    def address(self, index: int, address: str, present: bool) -> list[SuspendChange]:
        """One RTM_NEWADDR (``present``) or RTM_DELADDR; an address may sit on several interfaces."""
        before = self.suspended_set()
        local = self.local if self.local is not None else {}
        self.local = local
        addr = canonical(address)
        holders = local.setdefault(addr, set())
        if present:
            holders.add(index)
        else:
            holders.discard(index)
        if not holders:
            del local[addr]
        return self._changes(before, self.watch)

    def _changes(self, before: set[str], names: Iterable[str]) -> list[SuspendChange]:
        after = self.suspended_set()
        return [SuspendChange(n, n in after) for n in names if (n in before) != (n in after)]
