"""Raw VRRP sockets, opened the way keepalived 2.2.7 opens them (docs/keepalived.md#packet-format).

This is the thin IO shell around the sans-IO codec in ``services.vrrp.packet``:

* **send, IPv4**: a raw socket with ``IP_HDRINCL``; the codec's ``encode_ipv4``
  builds the whole packet (TOS 0xC0, TTL 255, DF clear, our IP ID counter), so
  the kernel adds nothing of its own.  Multicast sends carry ``MSG_DONTROUTE``.
* **send, IPv6**: a raw socket bound to the interface's link-local address;
  the kernel builds the IPv6 header (hop limit 255 via ``IPV6_MULTICAST_HOPS``
  / ``IPV6_UNICAST_HOPS``, traffic class 0xC0 via ``IPV6_TCLASS``) and fills
  the checksum (``IPV6_CHECKSUM`` offset 6).
* **receive**: one socket per (interface, family, multicast or unicast), with
  ancillary data giving destination and TTL / hop limit, so both families hand
  the same :class:`Received` record to the codec.  Nothing here parses VRRP.

Every socket is bound to its interface (``SO_BINDTODEVICE``), has
``IP(V6)_MULTICAST_LOOP`` 0 (we never hear ourselves) and
``IP(V6)_MULTICAST_ALL`` 0 (we hear only the groups joined on *this* socket,
not every group some other process joined on the host), and is non-blocking
so the event loop drives it (``receivers.Receiver``, a direct reader of ``precise_loop``).

Namespaces: a socket belongs to the network namespace it was created in, for
life.  ``netns=NAME`` creates it inside that namespace (pyroute2 forks a tiny
child that setns()es and passes the descriptor back), so the caller's thread
never changes namespace.  Interface indexes are resolved with an ioctl on the
socket itself, hence in the socket's namespace, never the caller's.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import socket
import struct
from collections.abc import Callable, Sequence
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import cast

import msgspec
from pyroute2 import netns as pr_netns

from services.vrrp.packet import (
    IPPROTO_AH,
    IPPROTO_VRRP,
    VRRP_TOS,
    VRRP_TTL,
    Advert,
    ChecksumMode,
    Drop,
    Frame,
    decode,
    encode_ipv4,
    encode_ipv4_ah,
    encode_vrrp,
)
from shared.addresses import IPAddress

# Linux constants the stdlib ``socket`` module does not export (uapi/linux/in.h, in6.h, sockios.h).
IP_PKTINFO = 8
IP_TTL = 2
IP_RECVTTL = 12
IP_MULTICAST_ALL = 49
IPV6_MULTICAST_ALL = 29
SIOCGIFINDEX = 0x8933
IPV6_CHECKSUM_OFFSET = 6  # offset of the checksum field in the VRRP header

RECV_BUFSIZE = 8192  # > the largest advert: 40 + 8 + 255 * 16 bytes for IPv6
ANCILLARY_BUFSIZE = socket.CMSG_SPACE(32) * 2
"""``recvmsg``'s ancillary buffer: room for the PKTINFO and TTL/hop-limit messages ``open_recv`` asks for."""


class IpIdCounter:
    """keepalived's per-instance IPv4 identification: 1, 2, ... 65535, 1, ... (never 0).

    One counter per VRRP instance, advanced once per packet sent (so each
    unicast copy has its own ID), as keepalived does.
    """

    def __init__(self, start: int = 1) -> None:
        if not 1 <= start <= 0xFFFF:
            raise ValueError(f"IP ID start {start} is not 1..65535")
        self._next = start

    def next(self) -> int:
        """The ID for the packet about to be sent."""
        ident = self._next
        self._next = ident % 0xFFFF + 1
        return ident


class Received(msgspec.Struct, frozen=True, kw_only=True):
    """One received packet and its IP-layer metadata, ready for the codec.

    ``whole_packet`` is true for IPv4 (raw IPv4 sockets return the IP header)
    and false for IPv6 (the kernel strips it; src, dst and hop limit come from
    the address and ancillary data instead).
    """

    data: bytes
    src: IPAddress
    dst: IPAddress
    ttl: int
    ifindex: int
    whole_packet: bool

    def decode(self) -> Frame | Drop:
        """Hand the bytes to the codec in the form this family needs."""
        if self.whole_packet:
            return decode(self.data)
        return decode(self.data, src=self.src, dst=self.dst, ttl=self.ttl)


# --------------------------------------------------------------------------- opening


def _new_socket(family: int, proto: int, netns: str | None) -> socket.socket:
    """A non-blocking raw socket, created in ``netns`` when given."""
    if netns is None:
        sock = socket.socket(family, socket.SOCK_RAW, proto)
    else:
        sock = cast(socket.socket, pr_netns.create_socket(netns, family, socket.SOCK_RAW, proto))
    sock.setblocking(False)
    return sock


def interface_index(sock: socket.socket, ifname: str) -> int:
    """The ifindex of ``ifname`` in the socket's own namespace (not the calling thread's)."""
    ifreq = struct.pack("16si", ifname.encode(), 0)
    result = fcntl.ioctl(sock.fileno(), SIOCGIFINDEX, ifreq)
    return int(struct.unpack("16si", result)[1])


def _bind_to_device(sock: socket.socket, ifname: str) -> int:
    """SO_BINDTODEVICE: adverts leave and arrive on this interface only; returns its ifindex."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
    return interface_index(sock, ifname)


def _guard(sock: socket.socket, configure: Callable[[], None]) -> socket.socket:
    """Close the socket if configuring it fails, so errors never leak descriptors."""
    try:
        configure()
    except BaseException:
        sock.close()
        raise
    return sock


def _ip_mreqn(group: IPv4Address, ifindex: int) -> bytes:
    """struct ip_mreqn: group, local address (any), interface index."""
    return group.packed + bytes(4) + struct.pack("@i", ifindex)


def _configure_v4_multicast(sock: socket.socket, ifindex: int) -> None:
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
    sock.setsockopt(socket.IPPROTO_IP, IP_MULTICAST_ALL, 0)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, _ip_mreqn(IPv4Address(0), ifindex))


def _configure_v6_multicast(sock: socket.socket, ifindex: int) -> None:
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
    sock.setsockopt(socket.IPPROTO_IPV6, IPV6_MULTICAST_ALL, 0)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, VRRP_TTL)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, VRRP_TTL)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, VRRP_TOS)


def open_send_v4(ifname: str, *, proto: int = IPPROTO_VRRP, netns: str | None = None) -> socket.socket:
    """The IPv4 send socket: IP_HDRINCL, so every header byte is the codec's.

    ``proto`` is 112, or 51 (``IPPROTO_AH``) for ``auth_type AH``; with
    IP_HDRINCL it only selects which raw socket this is, the header says the rest.
    """
    sock = _new_socket(socket.AF_INET, proto, netns)

    def configure() -> None:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
        _configure_v4_multicast(sock, _bind_to_device(sock, ifname))

    return _guard(sock, configure)


def open_send_v6(ifname: str, src: IPv6Address, *, netns: str | None = None) -> socket.socket:
    """The IPv6 send socket, bound to ``src`` (the interface's link-local) as keepalived sends from it.

    The kernel computes the checksum (IPV6_CHECKSUM): the payload we pass may
    carry any value in that field.
    """
    sock = _new_socket(socket.AF_INET6, IPPROTO_VRRP, netns)

    def configure() -> None:
        ifindex = _bind_to_device(sock, ifname)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_CHECKSUM, IPV6_CHECKSUM_OFFSET)
        _configure_v6_multicast(sock, ifindex)
        sock.bind((str(src), 0, 0, ifindex if src.is_link_local else 0))

    return _guard(sock, configure)


def _configure_recv_v4(sock: socket.socket, ifindex: int, group: IPv4Address | None) -> None:
    sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
    sock.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
    sock.setsockopt(socket.IPPROTO_IP, IP_MULTICAST_ALL, 0)
    if group is not None:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, _ip_mreqn(group, ifindex))


def _configure_recv_v6(sock: socket.socket, ifindex: int, group: IPv6Address | None) -> None:
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_CHECKSUM, IPV6_CHECKSUM_OFFSET)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
    sock.setsockopt(socket.IPPROTO_IPV6, IPV6_MULTICAST_ALL, 0)
    if group is not None:
        mreq = group.packed + struct.pack("@I", ifindex)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)


def open_recv(
    ifname: str,
    *,
    group: IPAddress | None,
    bind_address: IPAddress | None = None,
    proto: int = IPPROTO_VRRP,
    family: int | None = None,
    netns: str | None = None,
) -> socket.socket:
    """A receive socket for one (interface, family, multicast/unicast) triple.

    Multicast: ``group`` is 224.0.0.18 / ff02::12 (or ``mcast_dst_ip``), joined
    on this interface only.  Unicast: ``group=None`` and ``bind_address`` is
    ``unicast_src_ip``, so the kernel delivers only adverts addressed to us.
    ``family`` is needed only when neither address is given.  With IPv6 the
    kernel verifies the checksum (IPV6_CHECKSUM) and silently drops bad ones.
    """
    known = group or bind_address
    fam = family or (socket.AF_INET6 if known is not None and known.version == 6 else socket.AF_INET)
    sock = _new_socket(fam, proto, netns)

    def configure() -> None:
        ifindex = _bind_to_device(sock, ifname)
        if fam == socket.AF_INET:
            _configure_recv_v4(sock, ifindex, cast(IPv4Address | None, group))
            if bind_address is not None:
                sock.bind((str(bind_address), 0))
        else:
            _configure_recv_v6(sock, ifindex, cast(IPv6Address | None, group))
            if bind_address is not None:
                scope = ifindex if cast(IPv6Address, bind_address).is_link_local else 0
                sock.bind((str(bind_address), 0, 0, scope))

    return _guard(sock, configure)


# --------------------------------------------------------------------------- sending


def send_v4(sock: socket.socket, packet: bytes, dst: IPv4Address) -> None:
    """Send a complete IPv4 packet; multicast goes out with MSG_DONTROUTE as keepalived does."""
    flags = socket.MSG_DONTROUTE if dst.is_multicast else 0
    sock.sendto(packet, flags, (str(dst), 0))


def send_v6(sock: socket.socket, payload: bytes, dst: IPv6Address, ifindex: int) -> None:
    """Send a VRRP message; the kernel adds the IPv6 header and the checksum."""
    scope = ifindex if dst.is_link_local or dst.is_multicast else 0
    sock.sendto(payload, (str(dst), 0, 0, scope))


def send_advert_v4(
    sock: socket.socket,
    advert: Advert,
    *,
    src: IPv4Address,
    dsts: Sequence[IPv4Address],
    ids: IpIdCounter,
    ttl: int = VRRP_TTL,
    checksum_mode: ChecksumMode = ChecksumMode.PSEUDO,
    ah_key: bytes | None = None,
    ah_seq: int = 0,
) -> int:
    """Encode and send one copy of ``advert`` per destination; returns the number that went out.

    ``dsts`` is ``(group,)`` in multicast mode or the unicast peers: each copy
    is encoded for its own destination (the v3 pseudo-header and AH's ICV
    cover it) and takes the next IP ID.  With ``ah_key`` the packet is
    AH-authenticated (open the socket with ``proto=IPPROTO_AH``).  A transient
    error for one destination (link down, peer unreachable) does not stop the
    others: it shows as a return value below ``len(dsts)``; other errors raise.
    """
    sent = 0
    for dst in dsts:
        ident = ids.next()
        if ah_key is not None:
            packet = encode_ipv4_ah(advert, src=src, dst=dst, ident=ident, seq=ah_seq, key=ah_key, ttl=ttl)
        else:
            packet = encode_ipv4(advert, src=src, dst=dst, ident=ident, ttl=ttl, checksum_mode=checksum_mode)
        sent += _send_counted(functools.partial(send_v4, sock, packet, dst))
    return sent


def _send_counted(send: Callable[[], None]) -> int:
    """1 if ``send`` succeeded, 0 on a transient error (re-raise anything else)."""
    try:
        send()
    except OSError as exc:
        if is_transient_send_error(exc):
            return 0
        raise
    return 1


def send_advert_v6(
    sock: socket.socket, advert: Advert, *, src: IPv6Address, dsts: Sequence[IPv6Address], ifindex: int
) -> int:
    """Send ``advert`` to each IPv6 destination (ff02::12, or unicast peers); returns the number sent.

    Errors are handled as in :func:`send_advert_v4`.
    """
    sent = 0
    for dst in dsts:
        payload = encode_vrrp(advert, src=src, dst=dst)
        sent += _send_counted(functools.partial(send_v6, sock, payload, dst, ifindex))
    return sent


# --------------------------------------------------------------------------- receiving


def _parse_ancillary(
    ancdata: list[tuple[int, int, bytes]],
) -> tuple[IPAddress | None, int | None, int]:
    """(destination, ttl/hop limit, ifindex) from IP_PKTINFO/IP_TTL or IPV6_PKTINFO/IPV6_HOPLIMIT."""
    dst: IPAddress | None = None
    ttl: int | None = None
    ifindex = 0
    for level, kind, data in ancdata:
        if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(data) >= 12:
            ifindex = struct.unpack_from("@i", data)[0]
            dst = IPv4Address(data[8:12])  # ipi_addr: the header's destination
        elif level == socket.IPPROTO_IP and kind == IP_TTL and len(data) >= 4:
            ttl = struct.unpack_from("@i", data)[0]
        elif level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO and len(data) >= 20:
            dst = IPv6Address(data[:16])
            ifindex = struct.unpack_from("@I", data, 16)[0]
        elif level == socket.IPPROTO_IPV6 and kind == socket.IPV6_HOPLIMIT and len(data) >= 4:
            ttl = struct.unpack_from("@i", data)[0]
    return dst, ttl, ifindex


def recv_packet(sock: socket.socket) -> Received | None:
    """Read one packet without blocking; ``None`` when the socket has nothing (EAGAIN).

    A packet whose ancillary data is incomplete cannot happen with the options
    set by :func:`open_recv`; should it, ``ttl`` 0 makes the codec drop it.
    """
    try:
        data, ancdata, _flags, addr = sock.recvmsg(RECV_BUFSIZE, ANCILLARY_BUFSIZE)
    except (BlockingIOError, InterruptedError):
        return None
    return received(data, ancdata, addr[0], whole_packet=sock.family == socket.AF_INET)


def received(data: bytes, ancdata: list[tuple[int, int, bytes]], src: str, *, whole_packet: bool) -> Received:
    """The record of one datagram from ``recvmsg(RECV_BUFSIZE, ANCILLARY_BUFSIZE)`` (``src``: its address).

    Public for readers with their own receive loop (``receivers.Receiver``).
    """
    address = ip_address(src.split("%", 1)[0])
    dst, ttl, ifindex = _parse_ancillary(ancdata)
    return Received(
        data=data,
        src=address,
        dst=dst if dst is not None else address,
        ttl=ttl if ttl is not None else 0,
        ifindex=ifindex,
        whole_packet=whole_packet,
    )


def is_transient_send_error(exc: OSError) -> bool:
    """Errors a sender should count and retry next interval, not crash on (link down, no route)."""
    return exc.errno in {errno.ENETDOWN, errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENOBUFS, errno.EAGAIN}


__all__ = [
    "IPPROTO_AH",
    "IPPROTO_VRRP",
    "IpIdCounter",
    "Received",
    "interface_index",
    "is_transient_send_error",
    "open_recv",
    "open_send_v4",
    "open_send_v6",
    "recv_packet",
    "send_advert_v4",
    "send_advert_v6",
    "send_v4",
    "send_v6",
]
