"""The UDP sockets of RFC 5881: one listener per family on 3784, one sender per session.

Why a sender per session: RFC 5881 wants one source port per session, in
49152-65535, and a socket bound to it is the simplest way to keep it.  The
listener asks the kernel for each packet's TTL (IPv4 ``IP_RECVTTL``) or hop
limit (IPv6 ``IPV6_RECVHOPLIMIT``) so the TTL rule can be checked.
"""

from __future__ import annotations

import errno
import random
import socket
import struct
import sys

from services.bfd.core.params import CONTROL_PORT, SOURCE_PORTS, Transport
from shared.addresses import IPAddress

_ANCILLARY = socket.CMSG_SPACE(struct.calcsize("i"))

IP_RECVTTL = 12
"""Linux ``IP_RECVTTL`` (include/uapi/linux/in.h), which Python's socket module does not name."""


def listener(version: int, port: int = CONTROL_PORT) -> socket.socket:
    """A non-blocking socket receiving every Control packet of one family, with its TTL."""
    family = socket.AF_INET if version == 4 else socket.AF_INET6
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if version == 4:
            sock.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
            sock.bind(("0.0.0.0", port))
        else:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
            sock.bind(("::", port))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def receive(sock: socket.socket) -> tuple[bytes, str, int | None]:
    """One datagram: payload, source address, received TTL/hop limit (None if the kernel gave none)."""
    data, ancdata, _flags, address = sock.recvmsg(1500, _ANCILLARY)
    ttl = None
    for level, kind, value in ancdata:
        if (level, kind) in ((socket.IPPROTO_IP, socket.IP_TTL), (socket.IPPROTO_IPV6, socket.IPV6_HOPLIMIT)):
            ttl = int.from_bytes(value[:4], sys.byteorder)
    return data, str(address[0]).split("%", 1)[0], ttl


def sender(route: Transport, rng: random.Random | None = None) -> socket.socket:
    """A socket bound to a free source port in 49152-65535, sending with the session's TTL."""
    version = route.neighbor.version
    family = socket.AF_INET if version == 4 else socket.AF_INET6
    source = str(route.source) if route.source is not None else ("0.0.0.0" if version == 4 else "::")
    pick = rng or random.Random()
    for _ in range(64):
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            if version == 4:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, route.ttl)
            else:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, route.ttl)
            sock.bind((source, pick.choice(SOURCE_PORTS)))
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE:
                continue
            raise
        sock.setblocking(False)
        return sock
    raise OSError(errno.EADDRINUSE, "no free source port in 49152-65535")


def send(sock: socket.socket, neighbor: IPAddress, payload: bytes) -> bool:
    """Fire and forget (False: not sent, counted): a lost packet is what BFD is there to notice."""
    try:
        sock.sendto(payload, (str(neighbor), CONTROL_PORT))
    except OSError:
        return False
    return True
