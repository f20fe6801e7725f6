"""VIPs, interface facts and link state through netlink (pyroute2's ``AsyncIPRoute``).

Why its own module: the state machine only says "add VIPs" / "remove VIPs"
(docs/keepalived.md#state-machine); this is the one place that turns that into
RTM_NEWADDR / RTM_DELADDR, with the fields of keepalived's
``virtual_ipaddress`` lines (address/prefix, ``brd``, ``dev``, ``scope``,
``label``, and IPv6 ``IFA_F_NODAD``, which keepalived always sets: docs/keepalived.md#virtual-addresses).

An instance's own VIPs take the faster path of :mod:`services.vrrp.kernel.vip_netlink`
(the takeover's critical path); these calls serve static addresses and tests.

Every operation is idempotent, because the service's view and the kernel's
can disagree after a crash, a reload or an operator's ``ip addr``: adding an
address that is there, or removing one that is gone, is success, reported
as ``False`` ("nothing changed") rather than an error.

The functions take an open ``AsyncIPRoute`` so the caller decides the
namespace (``AsyncIPRoute(netns=NAME)`` creates its netlink socket inside
NAME) and shares one socket between calls; :func:`link_states` opens its own,
since a socket subscribed to link multicasts must not also carry requests.
"""

from __future__ import annotations

import errno
import socket
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Collection
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface, ip_address
from typing import Any

import msgspec
from pyroute2 import AsyncIPRoute
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl import RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR, RTMGRP_LINK

Rtnl = Any
"""An open ``pyroute2.AsyncIPRoute`` (pyroute2 ships no type hints)."""

IFA_F_SECONDARY = 0x01
IFA_F_NODAD = 0x02
IFA_F_TENTATIVE = 0x40
IFA_F_HOMEADDRESS = 0x10
IFA_F_MANAGETEMPADDR = 0x100
IFA_F_NOPREFIXROUTE = 0x200
IFA_F_MCAUTOJOIN = 0x400
IFF_UP = 0x1
IFF_RUNNING = 0x40

SCOPES = {"global": 0, "universe": 0, "site": 200, "link": 253, "host": 254, "nowhere": 255}
"""The names ``ip addr`` and keepalived accept for ``scope`` (/etc/iproute2/rt_scopes)."""

_GONE = {errno.EADDRNOTAVAIL, errno.ENOENT, errno.ESRCH}


class Vip(msgspec.Struct, frozen=True, kw_only=True):
    """One ``virtual_ipaddress`` entry, as this module needs it.

    ``address`` carries the prefix (``ip_interface("10.0.0.1")`` is /32,
    ``ip_interface("fe80::1")`` is /128, as keepalived defaults them).
    ``dev`` is ``None`` for "the instance's interface".  ``scope`` is a name
    from :data:`SCOPES` or a number.  ``nodad`` only matters for IPv6;
    ``preferred_lft`` 0 marks a /128 deprecated as keepalived does by default.
    ``peer`` is the other end of a point-to-point address (``IFA_ADDRESS``;
    the prefix is then the peer's, a whole address as keepalived parses it);
    ``flags`` the ``IFA_F_*`` bits of ``home``, ``mngtmpaddr``,
    ``noprefixroute`` and ``autojoin``, sent as they are (docs/keepalived.md#virtual-addresses).
    An in-process value only: msgspec cannot encode ``ip_interface`` types, so
    anything published on the bus carries ``str(vip.address)`` instead.
    """

    address: IPv4Interface | IPv6Interface
    dev: str | None = None
    brd: IPv4Address | None = None
    scope: str | int | None = None
    label: str | None = None
    nodad: bool = True
    preferred_lft: int | None = None
    peer: IPv4Address | IPv6Address | None = None
    flags: int = 0

    @property
    def ip(self) -> IPv4Address | IPv6Address:
        """The bare address (what GARP / NA announce)."""
        return self.address.ip


class InterfaceInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What the sockets and announcements need to know about an interface."""

    ifname: str
    index: int
    mac: str
    up: bool
    ipv4: IPv4Address | None = None  # primary (first non-secondary) address
    ipv6_link_local: IPv6Address | None = None  # first usable (non-tentative) fe80::/10


class AddressChange(msgspec.Struct, frozen=True, kw_only=True):
    """One RTM_NEWADDR / RTM_DELADDR as the vrrp service needs it.

    ``sender`` is the netlink port id of the socket whose request caused it
    (0 for the kernel's own changes, and for every IPv6 deletion): the
    service tells its own VIP removals from an operator's ``ip addr del`` by it.
    """

    index: int
    address: IPv4Address | IPv6Address
    prefixlen: int
    added: bool
    sender: int


class LinkState(msgspec.Struct, frozen=True):
    """An interface's usable state as track_interface sees it."""

    ifname: str
    up: bool


# --------------------------------------------------------------------------- interface facts


_INDEXES: weakref.WeakKeyDictionary[Any, dict[str, int]] = weakref.WeakKeyDictionary()
"""Known ifindexes per netlink socket: a link dump costs about 0.7 ms, on the path to MASTER's first GARP."""


async def link_index(ipr: Rtnl, ifname: str) -> int:
    """The ifindex of ``ifname``; ``LookupError`` if there is none (a config error upstream).

    Cached per socket; ``_with_index`` forgets an entry when the kernel says the
    index is gone (an interface deleted and recreated gets a new one).
    """
    known = _INDEXES.setdefault(ipr, {})
    if ifname in known:
        return known[ifname]
    async for msg in await ipr.link("dump"):
        if msg.get("ifname") == ifname:
            known[ifname] = int(msg["index"])
            return known[ifname]
    raise LookupError(f"no interface {ifname!r}")


def forget_index(ipr: Rtnl, ifname: str) -> None:
    """Drop a cached ifindex: the caller deleted or (re)created ``ifname`` (a VMAC)."""
    _INDEXES.get(ipr, {}).pop(ifname, None)


async def _with_index(ipr: Rtnl, ifname: str, call: Callable[[int], Awaitable[object]]) -> object:
    """``call(index)``, looking the index up again once if the cached one no longer exists."""
    index = await link_index(ipr, ifname)
    try:
        return await call(index)
    except NetlinkError as exc:
        if exc.code != errno.ENODEV or _INDEXES.get(ipr, {}).pop(ifname, None) is None:
            raise
    return await call(await link_index(ipr, ifname))


def _is_up(msg: Any) -> bool:
    """keepalived's test: administratively up *and* the carrier is there (IFF_UP and IFF_RUNNING)."""
    flags = int(msg["flags"])
    return bool(flags & IFF_UP) and bool(flags & IFF_RUNNING)


async def interface_info(ipr: Rtnl, ifname: str) -> InterfaceInfo:
    """MAC, primary IPv4 and IPv6 link-local of ``ifname``: the default advert sources."""
    link = None
    async for msg in await ipr.link("dump"):
        if msg.get("ifname") == ifname:
            link = msg
    if link is None:
        raise LookupError(f"no interface {ifname!r}")
    index = int(link["index"])
    ipv4: IPv4Address | None = None
    ll: IPv6Address | None = None
    async for msg in await ipr.addr("dump", index=index):
        flags = int(msg.get("IFA_FLAGS") or msg["flags"])
        addr = ip_address(msg.get("IFA_ADDRESS"))
        if isinstance(addr, IPv4Address) and ipv4 is None and not flags & IFA_F_SECONDARY:
            ipv4 = IPv4Address(msg.get("IFA_LOCAL") or addr)
        elif (
            isinstance(addr, IPv6Address)
            and ll is None
            and addr.is_link_local
            and not flags & IFA_F_TENTATIVE
        ):
            ll = addr
    return InterfaceInfo(
        ifname=ifname,
        index=index,
        mac=str(link.get("IFLA_ADDRESS")),
        up=_is_up(link),
        ipv4=ipv4,
        ipv6_link_local=ll,
    )


async def source_candidates(ipr: Rtnl, ifname: str, family: int) -> set[IPv4Address | IPv6Address]:
    """Addresses of ``ifname`` adverts could be sent from: any IPv4 one, or a usable IPv6 link-local.

    The caller leaves out its own VIPs (keepalived never counts them as the interface's address).
    """
    found: set[IPv4Address | IPv6Address] = set()
    index = await link_index(ipr, ifname)
    async for msg in await ipr.addr("dump", index=index):
        flags = int(msg.get("IFA_FLAGS") or msg["flags"])
        addr = ip_address(msg.get("IFA_LOCAL") or msg.get("IFA_ADDRESS"))
        ipv6_usable = addr.is_link_local and not flags & IFA_F_TENTATIVE
        if addr.version == family and (family == 4 or ipv6_usable):
            found.add(addr)
    return found


# --------------------------------------------------------------------------- VIPs


def _scope(value: str | int | None) -> int | None:
    if value is None or isinstance(value, int):
        return value
    try:
        return SCOPES[value]
    except KeyError:
        raise ValueError(f"unknown scope {value!r}") from None


def _addr_spec(vip: Vip, index: int) -> dict[str, Any]:
    """The RTM_*ADDR fields that identify ``vip`` (what deletion matches on)."""
    family = socket.AF_INET if vip.address.version == 4 else socket.AF_INET6
    return {
        "index": index,
        "family": family,
        "address": str(vip.address.ip),
        "prefixlen": vip.address.network.prefixlen,
    }


def _add_spec(vip: Vip, index: int) -> dict[str, Any]:
    """Everything RTM_NEWADDR carries for ``vip``: identity plus brd, scope, label, flags, lifetime."""
    spec = _addr_spec(vip, index)
    if vip.brd is not None:
        spec["broadcast"] = str(vip.brd)
    scope = _scope(vip.scope)
    if scope is not None:
        spec["scope"] = scope
    if vip.label is not None:
        spec["label"] = vip.label
    flags = vip.flags | (IFA_F_NODAD if vip.address.version == 6 and vip.nodad else 0)
    if flags:
        spec["flags"] = flags
    if vip.peer is not None:
        spec["address"], spec["local"] = str(vip.peer), str(vip.address.ip)
    if vip.preferred_lft is not None:
        spec["preferred_lft"] = vip.preferred_lft
        spec["valid_lft"] = 0xFFFFFFFF
    return spec


async def has_vip(ipr: Rtnl, vip: Vip, *, default_dev: str) -> bool:
    """Is ``vip`` (address and prefix) configured on its interface?"""
    index = await link_index(ipr, vip.dev or default_dev)
    return await _present(ipr, vip, index)


async def _present(ipr: Rtnl, vip: Vip, index: int) -> bool:
    want = vip.address.ip
    async for msg in await ipr.addr("dump", index=index):
        if ip_address(msg.get("IFA_ADDRESS")) == want and msg["prefixlen"] == vip.address.network.prefixlen:
            return True
    return False


async def add_vip(ipr: Rtnl, vip: Vip, *, default_dev: str) -> bool:
    """Add ``vip``; ``True`` if it was added, ``False`` if it was already there."""
    try:
        await _with_index(ipr, vip.dev or default_dev, lambda i: ipr.addr("add", **_add_spec(vip, i)))
    except NetlinkError as exc:
        if exc.code == errno.EEXIST:
            return False
        raise
    return True


async def remove_vip(ipr: Rtnl, vip: Vip, *, default_dev: str) -> bool:
    """Remove ``vip``; ``True`` if it was removed, ``False`` if it (or its interface) was gone."""
    try:
        await _with_index(
            ipr, vip.dev or default_dev, lambda index: ipr.addr("del", **_addr_spec(vip, index))
        )
    except LookupError:
        return False
    except NetlinkError as exc:
        if exc.code in _GONE:
            return False
        raise
    return True


# --------------------------------------------------------------------------- link state


async def _snapshot(ipr: Rtnl, ifnames: Collection[str] | None) -> dict[str, bool]:
    states: dict[str, bool] = {}
    async for msg in await ipr.link("dump"):
        name = msg.get("ifname")
        if name is not None and (ifnames is None or name in ifnames):
            states[name] = _is_up(msg)
    return states


def _event_state(msg: Any) -> LinkState | None:
    name = msg.get("ifname")
    if name is None:
        return None
    if msg.get("event") == "RTM_DELLINK":
        return LinkState(name, False)
    if msg.get("event") == "RTM_NEWLINK":
        return LinkState(name, _is_up(msg))
    return None


async def link_states(
    ifnames: Collection[str] | None = None, *, netns: str | None = None
) -> AsyncGenerator[LinkState, None]:
    """Yield the current state of each interface, then every change, for track_interface.

    RTM_NEWLINK fires for many reasons (MTU, promiscuity, statistics); only a
    change of "up and running" is yielded.  A deleted interface is reported
    down.  The netlink socket is this generator's own and is closed when the
    generator is (``aclose()`` or ``contextlib.aclosing``).
    """
    ipr = AsyncIPRoute(netns=netns) if netns is not None else AsyncIPRoute()
    try:
        await ipr.bind(groups=RTMGRP_LINK)
        known = await _snapshot(ipr, ifnames)
        for name, up in known.items():
            yield LinkState(name, up)
        while True:
            async for msg in ipr.get():
                state = _event_state(msg)
                if state is None or (ifnames is not None and state.ifname not in ifnames):
                    continue
                if known.get(state.ifname) != state.up:
                    known[state.ifname] = state.up
                    yield state
    finally:
        ipr.close()


# --------------------------------------------------------------------------- address changes


def _address_change(msg: Any) -> AddressChange | None:
    event = msg.get("event")
    local = msg.get("IFA_LOCAL") or msg.get("IFA_ADDRESS")
    if event not in ("RTM_NEWADDR", "RTM_DELADDR") or local is None:
        return None
    return AddressChange(
        index=int(msg["index"]),
        address=ip_address(local),
        prefixlen=int(msg["prefixlen"]),
        added=event == "RTM_NEWADDR",
        sender=int(msg["header"].get("pid") or 0),
    )


async def address_changes(*, netns: str | None = None) -> AsyncGenerator[AddressChange, None]:
    """Yield every address added or deleted (IPv4 and IPv6), for VIP and source-address tracking.

    keepalived 2.2.7 follows addresses through the same netlink multicasts:
    a VIP deleted behind its back, or the interface losing the address the
    adverts are sent from (docs/keepalived.md#addresses-deleted-by-hand).  The
    socket is this generator's own, closed with it.
    """
    ipr = AsyncIPRoute(netns=netns) if netns is not None else AsyncIPRoute()
    try:
        await ipr.bind(groups=RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR)
        while True:
            async for msg in ipr.get():
                change = _address_change(msg)
                if change is not None:
                    yield change
    finally:
        ipr.close()


__all__ = [
    "SCOPES",
    "AddressChange",
    "InterfaceInfo",
    "LinkState",
    "Vip",
    "add_vip",
    "address_changes",
    "forget_index",
    "has_vip",
    "interface_info",
    "link_index",
    "link_states",
    "remove_vip",
    "source_candidates",
]
