"""VIPs added and removed with one blocking rtnetlink round trip per batch.

Why not pyroute2 here, when it serves everywhere else: adding the VIPs sits
between the master-down deadline and the first gratuitous ARP, the gap the
failover benchmark measures (bench/failover.py).  pyroute2's ``addr("add")``
cost about 0.85 ms per address on that path (message objects, an asyncio
round trip, a response parser); the kernel itself needs a few microseconds.
Here each request is a few ``struct.pack`` calls, every VIP of a transition
goes out in one ``sendmsg`` (rtnetlink runs them in the sender's context,
before ``send`` returns) and the acknowledgements are read at once — so the
call is synchronous, short, and the GARPs can follow in the same tick,
as keepalived's single thread does it.

Semantics match :mod:`services.vrrp.kernel.addresses`: idempotent (adding an
address that is there, removing one that is gone, or whose interface is gone,
is "nothing changed"), anything else is raised as ``OSError`` naming the
address.  Interface indexes come from ``if_nametoindex`` on every call: it is
an ioctl, cheap, and never stale after an interface is recreated.
"""

from __future__ import annotations

import errno
import itertools
import socket
import struct
from collections.abc import Iterable, Sequence
from ipaddress import IPv4Address

from services.vrrp.kernel.addresses import IFA_F_NODAD, SCOPES, Vip

NETLINK_ROUTE = 0
RTM_NEWADDR = 20
RTM_DELADDR = 21
NLMSG_ERROR = 2
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
IFA_ADDRESS = 1
IFA_LOCAL = 2
IFA_LABEL = 3
IFA_BROADCAST = 4
IFA_CACHEINFO = 6
IFA_FLAGS = 8
INFINITY_LIFE = 0xFFFFFFFF

_NLMSGHDR = struct.Struct("=IHHII")
_IFADDRMSG = struct.Struct("=BBBBI")
_RTATTR = struct.Struct("=HH")
_NLMSGERR = struct.Struct("=i")

_NOTHING_TO_ADD = {errno.EEXIST}
_NOTHING_TO_REMOVE = {errno.EADDRNOTAVAIL, errno.ENOENT, errno.ESRCH, errno.ENODEV}

REPLY_TIMEOUT_S = 1.0
"""The kernel answers before ``send`` returns; this only bounds a broken kernel."""


def _attr(kind: int, payload: bytes) -> bytes:
    size = _RTATTR.size + len(payload)
    return _RTATTR.pack(size, kind) + payload + b"\0" * (-size % 4)


def _scope(vip: Vip) -> int:
    if vip.scope is None or isinstance(vip.scope, int):
        return vip.scope or 0
    try:
        return SCOPES[vip.scope]
    except KeyError:
        raise ValueError(f"unknown scope {vip.scope!r}") from None


def address_request(vip: Vip, index: int, *, add: bool, seq: int) -> bytes:
    """One RTM_NEWADDR (with every field of the VIP line) or RTM_DELADDR (identity only).

    The flags above the first byte (``noprefixroute``, ``mngtmpaddr``,
    ``autojoin``) only fit in ``IFA_FLAGS``, which the kernel prefers anyway.
    """
    ip = vip.address.ip
    family = socket.AF_INET if isinstance(ip, IPv4Address) else socket.AF_INET6
    flags = IFA_F_NODAD if add and family == socket.AF_INET6 and vip.nodad else 0
    flags |= vip.flags if add else 0
    scope = _scope(vip) if add else 0
    body = _IFADDRMSG.pack(family, vip.address.network.prefixlen, flags & 0xFF, scope, index)
    peer = vip.peer if vip.peer is not None else ip  # a point-to-point address is matched by its peer
    body += _attr(IFA_LOCAL, ip.packed) + _attr(IFA_ADDRESS, peer.packed)
    if add:
        if vip.brd is not None:
            body += _attr(IFA_BROADCAST, vip.brd.packed)
        if vip.label is not None:
            body += _attr(IFA_LABEL, vip.label.encode() + b"\0")
        if vip.preferred_lft is not None:
            body += _attr(IFA_CACHEINFO, struct.pack("=IIII", vip.preferred_lft, INFINITY_LIFE, 0, 0))
        body += _attr(IFA_FLAGS, struct.pack("=I", flags))
    kind, nl_flags = (
        (RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)
        if add
        else (RTM_DELADDR, NLM_F_REQUEST | NLM_F_ACK)
    )
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), kind, nl_flags, seq, 0) + body


def parse_acks(data: bytes) -> dict[int, int]:
    """``{seq: errno}`` from a buffer of NLMSG_ERROR replies (0 = success)."""
    acks: dict[int, int] = {}
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, kind, _flags, seq, _pid = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size:
            break
        if kind == NLMSG_ERROR:
            acks[seq] = -_NLMSGERR.unpack_from(data, offset + _NLMSGHDR.size)[0]
        offset += (length + 3) & ~3
    return acks


class VipSocket:
    """A blocking rtnetlink socket in the caller's network namespace, for VIP batches."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
        self._sock.bind((0, 0))
        self._sock.settimeout(REPLY_TIMEOUT_S)
        self._seq = itertools.count(1)

    @property
    def port_id(self) -> int:
        """The netlink port id the kernel gave this socket: its IPv4 deletions carry it as sender."""
        return int(self._sock.getsockname()[0])

    def add(self, vips: Iterable[Vip], *, default_dev: str) -> list[Vip]:
        """Add every VIP; returns those that were not already there."""
        return self._batch(list(vips), default_dev, add=True)

    def remove(self, vips: Iterable[Vip], *, default_dev: str) -> list[Vip]:
        """Remove every VIP; returns those that were there."""
        return self._batch(list(vips), default_dev, add=False)

    def close(self) -> None:
        self._sock.close()

    def _batch(self, vips: Sequence[Vip], default_dev: str, *, add: bool) -> list[Vip]:
        requests: dict[int, Vip] = {}
        chunks: list[bytes] = []
        for vip in vips:
            try:
                index = socket.if_nametoindex(vip.dev or default_dev)
            except OSError:
                if add:
                    raise OSError(
                        errno.ENODEV, f"no interface {vip.dev or default_dev!r} for {vip.address}"
                    ) from None
                continue
            seq = next(self._seq)
            requests[seq] = vip
            chunks.append(address_request(vip, index, add=add, seq=seq))
        if not chunks:
            return []
        self._sock.send(b"".join(chunks))
        return self._outcome(requests, add=add)

    def _outcome(self, requests: dict[int, Vip], *, add: bool) -> list[Vip]:
        """Read every acknowledgement; the changed VIPs in request order, or the first real error."""
        acks: dict[int, int] = {}
        while not requests.keys() <= acks.keys():
            acks.update(parse_acks(self._sock.recv(1 << 16)))
        harmless = _NOTHING_TO_ADD if add else _NOTHING_TO_REMOVE
        for seq, vip in requests.items():
            code = acks[seq]
            if code and code not in harmless:
                verb = "add" if add else "remove"
                raise OSError(code, f"cannot {verb} {vip.address}: {errno.errorcode.get(code, code)}")
        return [vip for seq, vip in requests.items() if acks[seq] == 0]


__all__ = ["VipSocket", "address_request", "parse_acks"]
