"""``use_vmac``: the macvlan keepalived puts a VRRP instance on (docs/keepalived.md#vmac).

Why its own module: VMAC is an IO concern only.  The state machine never
knows; the plan (``params.py``) just says "adverts leave from ``vrrp.42``,
VIPs go on ``vrrp.42``", and this module makes that interface exist, exactly
as keepalived 2.2.7 does (checked in a namespace against the real daemon):

* a macvlan in **private** mode on the base interface, named ``vrrp.<VRID>``
  (``vmac_prefix``) or as ``use_vmac NAME`` says, MAC 00:00:5e:00:01:VRID for
  IPv4 and 00:00:5e:00:02:VRID for IPv6 (or ``use_vmac MAC``);
* brought **up at creation and kept up** in every state: BACKUP only differs
  from MASTER by the VIPs, not by the link (keepalived never toggles it);
* sysctls on the VMAC: ``arp_ignore=1``, ``accept_local=1``, ``rp_filter=0``,
  ``promote_secondaries=1``, and ``disable_ipv6=1`` for an IPv4 VMAC without
  IPv6 eVIPs; on the base: ``arp_ignore=1``, ``arp_filter=1`` (so the base
  never answers ARP for a VIP with its own MAC).  If ``all.rp_filter`` is
  set, it becomes 0 and every other interface (and ``default``) is raised to
  its old value: the per-interface maximum the kernel uses is unchanged
  everywhere except on the VMAC, which must accept adverts while it has no
  address;
* an IPv6 VMAC gets ``addr_gen_mode`` none and the base's link-local
  (``nodad``), so adverts and NAs leave from the same source as without VMAC;
* on stop: deleted, and every sysctl written back to what it was (2.2.7
  leaves the base's ``arp_ignore``/``arp_filter`` set; the spec says
  restore, and restoring is what an operator expects).

A leftover from a crashed run (a macvlan with a VRRP MAC under our name on
our base) is deleted and recreated at start, taking its stale addresses with
it; an interface of that name that is not such a VMAC is never touched (the
instance is refused instead).  Within one run a VMAC is reused across
reloads, so the sockets bound to it stay valid.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import Any, Literal

import msgspec
from pyroute2.netlink.exceptions import NetlinkError

from services.vrrp.kernel import ipvlan
from services.vrrp.kernel.addresses import IFA_F_NODAD, Rtnl, forget_index
from services.vrrp.kernel.ipvlan import Ipvlan
from shared.config.model_global import GlobalDefs
from shared.config.model_vrrp import VrrpInstance

log = logging.getLogger("lifeline.vrrp")

VRRP_OUI = "00:00:5e:00"
"""RFC 5798 §7.3: 00-00-5E-00-01-{VRID} (IPv4), 00-00-5E-00-02-{VRID} (IPv6)."""
SYSCTL_ROOT = Path("/proc/sys/net")
ADDR_GEN_MODE_NONE = 1


class Vmac(msgspec.Struct, frozen=True, kw_only=True):
    """One instance's VMAC: what to create, on what, and how adverts use it."""

    name: str
    base: str
    mac: str
    family: Literal[4, 6]
    xmit_base: bool = False
    """Adverts leave from (and arrive on) the base interface; only VIPs and GARPs use the VMAC."""
    keep_ipv6: bool = False
    """An IPv4 VMAC that carries IPv6 eVIPs keeps IPv6 enabled."""


# --------------------------------------------------------------------------- pure: names and addresses


def virtual_mac(vrid: int, family: int, configured: str | None = None) -> str:
    """The VMAC's address: RFC 5798's, or ``use_vmac MAC`` (5 octets get the VRID appended)."""
    if configured is not None:
        octets = [int(p, 16) for p in configured.split(":")]
        if len(octets) == 5:
            octets.append(vrid)
        return ":".join(f"{o:02x}" for o in octets)
    return f"{VRRP_OUI}:{2 if family == 6 else 1:02x}:{vrid:02x}"


def is_vrrp_mac(mac: str) -> bool:
    """A MAC keepalived (or we) would give a VMAC: 00:00:5e:00:01:xx or 00:00:5e:00:02:xx."""
    return mac.lower().startswith((f"{VRRP_OUI}:01:", f"{VRRP_OUI}:02:"))


def vmac_of(inst: VrrpInstance, g: GlobalDefs) -> Vmac | None:
    """The instance's VMAC, or None without ``use_vmac``."""
    if not inst.use_vmac or not inst.interface or not inst.vrid:
        return None
    family: Literal[4, 6] = 6 if inst.family == 6 else 4
    evip6 = any(v.address.version == 6 for v in inst.excluded_vips)
    return Vmac(
        name=inst.vmac_name or f"{g.vmac_prefix}.{inst.vrid}",
        base=inst.interface,
        mac=virtual_mac(inst.vrid, family, inst.vmac_mac),
        family=family,
        xmit_base=inst.vmac_xmit_base,
        keep_ipv6=family == 4 and evip6,
    )


def address_vmacs(inst: VrrpInstance, g: GlobalDefs, own: Vmac | None) -> dict[tuple[str, int], Vmac]:
    """Per-address ``use_vmac``: the VMAC of each (interface, family) its VIPs and eVIPs need.

    As keepalived 2.2.7 does it (observed in a namespace): one private
    macvlan per interface (``dev``, or the instance's) and family, with that
    family's virtual MAC; VIPs first, then eVIPs, in file order.  Names use
    ``vmac_addr_prefix`` (default ``vmac_prefix``): the first of
    ``PREFIX.VRID``, (IPv6 only) ``PREFIX6.VRID``, ``PREFIX<N>.VRID`` for N
    from 1 that is not already one of the instance's.  An address on the instance's interface and family
    whose instance has its own VMAC goes on that one.  A name after
    ``use_vmac`` on an address line is not keepalived's (2.2.7 ignores it with
    "Unknown configuration entry"), so it is not used.
    """
    vrid = inst.vrid or 0
    if not inst.interface or not vrid:
        return {}
    prefix = g.vmac_addr_prefix or g.vmac_prefix
    out: dict[tuple[str, int], Vmac] = {}
    taken = {own.name} if own is not None else set()
    for va in [*inst.vips, *inst.excluded_vips]:
        key = (va.dev or inst.interface, va.address.version)
        if not va.use_vmac or key in out:
            continue
        if own is not None and key == (own.base, own.family):
            out[key] = own
            continue
        name = _free_name(prefix, vrid, taken, ipv6=key[1] == 6)
        taken.add(name)
        family: Literal[4, 6] = 6 if key[1] == 6 else 4
        out[key] = Vmac(name=name, base=key[0], mac=virtual_mac(vrid, family), family=family)
    return out


def _free_name(prefix: str, vrid: int, taken: set[str], *, ipv6: bool) -> str:
    """``PREFIX.VRID``, then for IPv6 ``PREFIX6.VRID``, then ``PREFIX<N>.VRID``: the first one not taken."""
    for candidate in (f"{prefix}.{vrid}", f"{prefix}6.{vrid}" if ipv6 else None):
        if candidate is not None and candidate not in taken:
            return candidate
    n = 1
    while f"{prefix}{n}.{vrid}" in taken:
        n += 1
    return f"{prefix}{n}.{vrid}"


# --------------------------------------------------------------------------- pure: sysctls


def vmac_sysctls(vmac: Vmac) -> list[tuple[str, int]]:
    """(path under /proc/sys/net, value) for the VMAC itself and its base, in keepalived's order."""
    own = f"ipv4/conf/{vmac.name}"
    out = [(f"{own}/arp_ignore", 1), (f"{own}/accept_local", 1), (f"{own}/rp_filter", 0)]
    out.append((f"{own}/promote_secondaries", 1))
    if vmac.family == 6:
        out.append((f"ipv6/conf/{vmac.name}/addr_gen_mode", ADDR_GEN_MODE_NONE))
    elif not vmac.keep_ipv6:
        out.append((f"ipv6/conf/{vmac.name}/disable_ipv6", 1))
    if vmac.family == 4:
        out += [(f"ipv4/conf/{vmac.base}/arp_ignore", 1), (f"ipv4/conf/{vmac.base}/arp_filter", 1)]
    return out


def rp_filter_sysctls(all_value: int, current: dict[str, int], vmacs: Iterable[str]) -> list[tuple[str, int]]:
    """Move a global ``rp_filter`` onto the interfaces so the VMACs can run with 0.

    The kernel uses max(all, interface); keepalived sets ``all`` to 0 and
    raises ``default`` and every non-VMAC interface to the old ``all``, so
    only the VMACs change.  ``current`` maps interface (and ``default``) to
    its value now.
    """
    if all_value <= 0:
        return []
    skip = set(vmacs) | {"all"}
    raised = [
        (f"ipv4/conf/{name}/rp_filter", all_value)
        for name, value in sorted(current.items())
        if name not in skip and value < all_value
    ]
    return [*raised, ("ipv4/conf/all/rp_filter", 0)]


class SysctlJournal:
    """Writes sysctls and remembers each one's first old value, so everything can be put back.

    The files are the calling process's namespace's (``/proc/sys/net``
    follows the reader's network namespace), which is where the service runs.
    """

    def __init__(self, root: Path = SYSCTL_ROOT) -> None:
        self.root = root
        self.saved: dict[str, int] = {}

    def read(self, path: str) -> int | None:
        try:
            return int((self.root / path).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def write(self, path: str, value: int) -> None:
        """Set ``path``; the value before our first write is kept for :meth:`restore`.

        Written even when equal: the kernel copies a later write to
        ``ipv4/conf/default`` onto every interface whose value was never
        written, which would undo a VMAC's ``rp_filter=0`` when ``default``
        is raised.
        """
        old = self.read(path)
        if old is None:
            raise OSError(errno.ENOENT, f"no sysctl net/{path}")
        if old != value:
            self.saved.setdefault(path, old)
        (self.root / path).write_text(f"{value}\n")

    def restore(self, prefix: str = "") -> None:
        """Put back every saved value whose path starts with ``prefix`` (newest first).

        A file that vanished with its interface (a deleted VMAC) is skipped.
        """
        for path in reversed([p for p in self.saved if p.startswith(prefix)]):
            with contextlib.suppress(OSError):
                (self.root / path).write_text(f"{self.saved[path]}\n")
            del self.saved[path]

    def forget(self, prefix: str) -> None:
        for path in [p for p in self.saved if p.startswith(prefix)]:
            del self.saved[path]

    def interfaces(self) -> dict[str, int]:
        """``rp_filter`` of every ``ipv4/conf`` entry (interfaces, ``all``, ``default``)."""
        out: dict[str, int] = {}
        for entry in sorted((self.root / "ipv4/conf").iterdir()):
            value = self.read(f"ipv4/conf/{entry.name}/rp_filter")
            if value is not None:
                out[entry.name] = value
        return out


# --------------------------------------------------------------------------- netlink


class VmacError(RuntimeError):
    """The VMAC cannot be set up (name taken by something else, base missing, netlink refused)."""


async def _find(ipr: Rtnl, name: str) -> Any | None:
    async for msg in await ipr.link("dump"):
        if msg.get("ifname") == name:
            return msg
    return None


def _kind(msg: Any) -> str | None:
    info = msg.get("IFLA_LINKINFO")
    return None if info is None else info.get("IFLA_INFO_KIND")


def _mode(msg: Any) -> str | None:
    info = msg.get("IFLA_LINKINFO")
    data = None if info is None else info.get("IFLA_INFO_DATA")
    return None if data is None else data.get("IFLA_MACVLAN_MODE")


def matches(msg: Any, vmac: Vmac, base_index: int) -> bool:
    """Is this link exactly the VMAC we want (kind, private mode, base, MAC)?"""
    return (
        _kind(msg) == "macvlan"
        and _mode(msg) == "private"
        and msg.get("IFLA_LINK") == base_index
        and str(msg.get("IFLA_ADDRESS")).lower() == vmac.mac
    )


def is_stale_vmac(msg: Any, base_index: int) -> bool:
    """A macvlan with a VRRP MAC on our base: what a crashed keepalived or lifeline leaves behind."""
    return (
        _kind(msg) == "macvlan"
        and msg.get("IFLA_LINK") == base_index
        and is_vrrp_mac(str(msg.get("IFLA_ADDRESS")))
    )


async def _index_of(ipr: Rtnl, name: str) -> int:
    msg = await _find(ipr, name)
    if msg is None:
        raise VmacError(f"no interface {name!r}")
    return int(msg["index"])


async def create(ipr: Rtnl, vmac: Vmac, *, reuse: bool) -> int:
    """Make the macvlan exist as ``vmac`` says and return its index (not yet configured nor up).

    ``reuse``: one we created earlier in this run may stay (its sockets are
    bound to it); otherwise a stale VMAC under that name is deleted first.
    """
    base_index = await _index_of(ipr, vmac.base)
    found = await _find(ipr, vmac.name)
    if found is not None:
        if reuse and matches(found, vmac, base_index):
            return int(found["index"])
        if not is_stale_vmac(found, base_index):
            raise VmacError(f"{vmac.name} exists and is not a VMAC on {vmac.base}; not touching it")
        log.info("removing stale VMAC interface %s (%s)", vmac.name, found.get("IFLA_ADDRESS"))
        await ipr.link("del", index=int(found["index"]))
        forget_index(ipr, vmac.name)
    await ipr.link(
        "add", ifname=vmac.name, kind="macvlan", link=base_index, macvlan_mode="private", address=vmac.mac
    )
    forget_index(ipr, vmac.name)
    return await _index_of(ipr, vmac.name)


async def create_ipvlan(ipr: Rtnl, ipv: Ipvlan, *, reuse: bool) -> int:
    """Make the ipvlan exist as ``ipv`` says and return its index (not yet addressed nor up).

    Same rules as :func:`create`: reused within a run, a leftover ipvlan of
    that name on our base replaced, anything else under that name refused.
    """
    base_index = await _index_of(ipr, ipv.base)
    found = await _find(ipr, ipv.name)
    if found is not None:
        if reuse and ipvlan.matches(found, ipv, base_index):
            return int(found["index"])
        if not ipvlan.is_leftover(found, base_index):
            raise VmacError(f"{ipv.name} exists and is not an ipvlan on {ipv.base}; not touching it")
        log.info("removing stale ipvlan interface %s", ipv.name)
        await ipr.link("del", index=int(found["index"]))
        forget_index(ipr, ipv.name)
    await ipr.link("add", **ipvlan.link_request(ipv, base_index))
    forget_index(ipr, ipv.name)
    return await _index_of(ipr, ipv.name)


async def add_link_local(ipr: Rtnl, index: int, address: IPv6Address) -> None:
    """The base's link-local on the VMAC, ``nodad``: IPv6 adverts and NAs leave from it."""
    try:
        await ipr.addr(
            "add", index=index, family=socket.AF_INET6, address=str(address), prefixlen=64, flags=IFA_F_NODAD
        )
    except NetlinkError as exc:
        if exc.code != errno.EEXIST:
            raise


async def delete(ipr: Rtnl, name: str) -> bool:
    """Delete our VMAC or ipvlan ``name``; ``False`` if it was already gone."""
    found = await _find(ipr, name)
    forget_index(ipr, name)
    if found is None or _kind(found) not in ("macvlan", "ipvlan"):
        return False
    try:
        await ipr.link("del", index=int(found["index"]))
    except NetlinkError as exc:
        if exc.code == errno.ENODEV:
            return False
        raise
    return True


class VmacBook:
    """The VMACs and ipvlans this service runs and the sysctls it changed for them: made, reused, removed."""

    def __init__(self, sysctl: SysctlJournal | None = None) -> None:
        self.sysctl = sysctl or SysctlJournal()
        self.active: dict[str, Vmac | Ipvlan] = {}

    async def ensure(
        self,
        ipr: Rtnl,
        vmac: Vmac | Ipvlan | None,
        lock: asyncio.Lock,
        *,
        source: IPv4Address | IPv6Address | None = None,
    ) -> bool:
        """Set ``vmac`` up (create, sysctls, link-local, up); ``False`` (logged) if it cannot be.

        ``source`` is the advert source; for an IPv6 VMAC (the base's link-local) it goes on the VMAC.
        """
        if vmac is None:
            return True
        try:
            async with lock:
                link_local = source if isinstance(source, IPv6Address) else None
                if isinstance(vmac, Ipvlan):
                    await self._ensure_ipvlan(ipr, vmac, link_local)
                else:
                    await self._ensure(ipr, vmac, link_local)
        except (VmacError, NetlinkError, OSError) as exc:
            what = "ipvlan" if isinstance(vmac, Ipvlan) else "VMAC"
            log.error("cannot set up %s %s on %s: %s; instance skipped", what, vmac.name, vmac.base, exc)
            return False
        return True

    async def _ensure(self, ipr: Rtnl, vmac: Vmac, link_local: IPv6Address | None) -> None:
        index = await create(ipr, vmac, reuse=self.active.get(vmac.name) == vmac)
        if self.active.get(vmac.name) not in (None, vmac):
            self.sysctl.forget(f"ipv4/conf/{vmac.name}/")
        self.active[vmac.name] = vmac
        for path, value in vmac_sysctls(vmac):
            self.sysctl.write(path, value)
        if vmac.family == 4:
            rp = self.sysctl.read("ipv4/conf/all/rp_filter") or 0
            for path, value in rp_filter_sysctls(rp, self.sysctl.interfaces(), self.active):
                self.sysctl.write(path, value)
        if vmac.family == 6 and link_local is not None:
            await add_link_local(ipr, index, link_local)
        await ipr.link("set", index=index, state="up")

    async def _ensure_ipvlan(self, ipr: Rtnl, ipv: Ipvlan, link_local: IPv6Address | None) -> None:
        """Create (or reuse), disable IPv6 if IPv4, address, link-local for IPv6 adverts, up."""
        index = await create_ipvlan(ipr, ipv, reuse=self.active.get(ipv.name) == ipv)
        self.active[ipv.name] = ipv
        for path, value in ipvlan.ipvlan_sysctls(ipv):
            self.sysctl.write(path, value)
        await ipvlan.add_address(ipr, ipv, index)
        if ipv.family == 6 and link_local is not None and not ipv.xmit_base:
            await add_link_local(ipr, index, link_local)
        await ipr.link("set", index=index, state="up")

    async def prune(self, ipr: Rtnl, keep: Iterable[Vmac | Ipvlan | None], lock: asyncio.Lock) -> None:
        """Delete the VMACs no running instance uses any more (after a reload)."""
        wanted = {v.name for v in keep if v is not None}
        for name in [n for n in self.active if n not in wanted]:
            await self._remove(ipr, name, lock)

    async def close(self, ipr: Rtnl, lock: asyncio.Lock) -> None:
        """Delete every VMAC and put every sysctl back (shutdown)."""
        for name in list(self.active):
            await self._remove(ipr, name, lock)
        self.sysctl.restore()

    async def _remove(self, ipr: Rtnl, name: str, lock: asyncio.Lock) -> None:
        vmac = self.active.pop(name)
        try:
            async with lock:
                await delete(ipr, name)
        except (NetlinkError, OSError) as exc:
            log.error("cannot remove %s: %s", name, exc)
        self.sysctl.forget(f"ipv4/conf/{name}/")
        self.sysctl.forget(f"ipv6/conf/{name}/")
        if not any(v.base == vmac.base for v in self.active.values()):
            self.sysctl.restore(f"ipv4/conf/{vmac.base}/arp_")
        if not self.active:
            self.sysctl.restore("ipv4/conf/")
        log.info("%s interface %s removed", "ipvlan" if isinstance(vmac, Ipvlan) else "VMAC", name)


__all__ = [
    "SysctlJournal",
    "Vmac",
    "VmacBook",
    "VmacError",
    "is_vrrp_mac",
    "rp_filter_sysctls",
    "virtual_mac",
    "vmac_of",
    "vmac_sysctls",
]
