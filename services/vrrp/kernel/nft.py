"""``no_accept``: while an instance is MASTER, nftables drops traffic to and from its VIPs.

Why: RFC 5798 accept mode off means a master answers ARP/ND for its VIPs but
takes no traffic addressed to them.  keepalived (docs/keepalived.md#accept-mode) installs DROP rules
while MASTER for ``no_accept``, or for strict mode below priority 255; we do
the same, with one table for both families::

    table inet lifeline {
        set vips4    { type ipv4_addr; }
        set vips6    { type ipv6_addr; }
        set vips6_ll { type ipv6_addr . iface_index; }   # link-local VIPs: per interface
        chain in  { type filter hook input  priority -1; icmpv6 ND accept; daddr in a set: drop }
        chain out { type filter hook output priority -1; icmpv6 ND accept; saddr in a set: drop }
    }

Neighbour solicitations and adverts stay allowed, as in keepalived, so the
VIP is still reachable at layer 2 (routers resolve it) while nothing reaches
or leaves it at layer 3.

Why the table is ``inet lifeline`` and not keepalived's ``keepalived``:
keepalived deletes its own table at start and stop, so a real keepalived on
the same host (an interop peer, or the node being migrated) would wipe our
rules, and we would wipe its rules at our start.  A name of our own never
clashes; ``inet`` (not keepalived 2.2.7's separate ``ip``/``ip6`` tables)
so one table serves both families.

Why the ``nft`` CLI and not netlink: a batch on stdin (``nft -f -``) is
applied atomically by the kernel, and ``nft -j`` reads the result back as
JSON; the rules change only on a MASTER transition, never on the advert path.
The instance runs these calls in its effects queue after the VIPs and GARPs,
so an advert never waits for nft.  Failures are logged, never raised: a
missing firewall must not stop VRRP.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv6Address

from services.vrrp.kernel.addresses import Vip

log = logging.getLogger("lifeline.vrrp")

TABLE = "lifeline"
FAMILY = "inet"
PRIORITY = -1
"""Before the ``filter`` priority (0), as keepalived's ``nftables_priority`` default."""
SETS = ("vips4", "vips6", "vips6_ll")

Entry = tuple[str, str]
"""(set name, element as nft writes it): ``("vips4", "192.0.2.1")``, ``("vips6_ll", 'fe80::1 . "eth0"')``."""

_ND = "icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept"


class FirewallError(RuntimeError):
    """nft is missing or refused a batch (the message is nft's own)."""


# --------------------------------------------------------------------------- pure: what to send


def entries(vips: Iterable[Vip], default_dev: str) -> frozenset[Entry]:
    """The set elements for these VIPs (a link-local IPv6 VIP is only dropped on its interface)."""
    out: set[Entry] = set()
    for vip in vips:
        ip = vip.ip
        if isinstance(ip, IPv4Address):
            out.add(("vips4", str(ip)))
        elif isinstance(ip, IPv6Address) and ip.is_link_local:
            out.add(("vips6_ll", f'{ip} . "{vip.dev or default_dev}"'))
        else:
            out.add(("vips6", str(ip)))
    return frozenset(out)


def _where(table: str) -> str:
    return f"{FAMILY} {table}"


def drop_table_batch(table: str = TABLE) -> str:
    """Delete the table if it exists (``add`` first makes the ``delete`` never fail)."""
    return f"add table {_where(table)}\ndelete table {_where(table)}\n"


def create_table_batch(table: str = TABLE) -> str:
    """A fresh table: empty sets, the two chains and their rules (replaces any table of that name)."""
    t = _where(table)
    lines = [
        drop_table_batch(table).rstrip("\n"),
        f"add table {t}",
        f"add set {t} vips4 {{ type ipv4_addr; }}",
        f"add set {t} vips6 {{ type ipv6_addr; }}",
        f"add set {t} vips6_ll {{ type ipv6_addr . iface_index; }}",
    ]
    for chain, hook, addr, iface in (("in", "input", "daddr", "iif"), ("out", "output", "saddr", "oif")):
        lines += [
            f"add chain {t} {chain} {{ type filter hook {hook} priority {PRIORITY}; policy accept; }}",
            f"add rule {t} {chain} {_ND}",
            f"add rule {t} {chain} ip {addr} @vips4 drop",
            f"add rule {t} {chain} ip6 {addr} . {iface} @vips6_ll drop",
            f"add rule {t} {chain} ip6 {addr} @vips6 drop",
        ]
    return "\n".join(lines) + "\n"


def elements_batch(verb: str, items: Iterable[Entry], table: str = TABLE) -> str:
    """``add element`` / ``delete element`` lines, one per set touched."""
    by_set: dict[str, list[str]] = {}
    for name, element in sorted(items):
        by_set.setdefault(name, []).append(element)
    return "".join(
        f"{verb} element {_where(table)} {name} {{ {', '.join(elems)} }}\n" for name, elems in by_set.items()
    )


# --------------------------------------------------------------------------- the shell


async def run_nft(*args: str, batch: str | None = None) -> str:
    """Run ``nft ARGS`` (with ``batch`` on stdin); its stdout, or FirewallError with its stderr."""
    binary = shutil.which("nft")
    if binary is None:
        raise FirewallError("nft not found (apt install nftables)")
    proc = await asyncio.create_subprocess_exec(
        binary,
        *args,
        stdin=asyncio.subprocess.PIPE if batch is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(batch.encode() if batch is not None else None)
    if proc.returncode != 0:
        raise FirewallError(err.decode(errors="replace").strip() or f"nft exited {proc.returncode}")
    return out.decode()


class Firewall:
    """The service's one nftables table; instances add and remove their VIPs as they gain and lose MASTER.

    Each instance's entries are remembered, so an element is deleted only
    when no other MASTER instance still needs it, and a ``delete element``
    never names one that is not there (which would fail the whole batch).
    """

    def __init__(self, table: str = TABLE) -> None:
        self.table = table
        self._lock = asyncio.Lock()
        self._created = False
        self._owners: dict[str, frozenset[Entry]] = {}

    def _installed(self) -> set[Entry]:
        return {e for items in self._owners.values() for e in items}

    async def reset(self) -> None:
        """At start: remove a table a previous run left behind (killed before it could clean up)."""
        async with self._lock:
            self._owners.clear()
            self._created = False
            try:
                await run_nft("-f", "-", batch=drop_table_batch(self.table))
            except FirewallError as exc:
                log.debug("no stale nftables table removed: %s", exc)

    async def drop(self, instance: str, vips: Iterable[Vip], default_dev: str) -> bool:
        """``instance`` is MASTER: drop traffic to and from its VIPs; False (logged) if nft failed.

        Called again for a MASTER whose VIPs a reload changed: only the
        difference moves (a VIP it no longer has is freed unless another
        MASTER instance still needs it), with no moment of the old ones open.
        """
        wanted = entries(vips, default_dev)
        async with self._lock:
            old = self._owners.get(instance, frozenset())
            others = {e for name, items in self._owners.items() if name != instance for e in items}
            batch = "" if self._created else create_table_batch(self.table)
            new = wanted - others - old if self._created else wanted | others
            batch += elements_batch("add", new, self.table)
            batch += elements_batch("delete", old - wanted - others, self.table) if self._created else ""
            try:
                if batch:
                    await run_nft("-f", "-", batch=batch)
            except FirewallError as exc:
                log.error("(%s) cannot install the no_accept drop rules: %s", instance, exc)
                return False
            self._created = True
            self._owners[instance] = wanted
        log.info("(%s) setting firewall drop rule for %d VIP(s)", instance, len(wanted))
        return True

    async def allow(self, instance: str) -> bool:
        """``instance`` left MASTER: remove the elements no other MASTER instance still needs."""
        async with self._lock:
            mine = self._owners.pop(instance, None)
            if mine is None:
                return True
            gone = mine - self._installed()
            try:
                if gone:
                    await run_nft("-f", "-", batch=elements_batch("delete", gone, self.table))
            except FirewallError as exc:
                log.error("(%s) cannot remove the no_accept drop rules: %s", instance, exc)
                return False
        log.info("(%s) removing firewall drop rule", instance)
        return True

    async def close(self) -> None:
        """At stop: delete the table (after every instance has left MASTER)."""
        async with self._lock:
            if not self._created:
                return
            self._owners.clear()
            self._created = False
            try:
                await run_nft("-f", "-", batch=drop_table_batch(self.table))
            except FirewallError as exc:
                log.error("cannot delete nftables table %s %s: %s", FAMILY, self.table, exc)
