"""PING_CHECK: one ICMP (or ICMPv6) echo, answered within connect_timeout.

An unprivileged ICMP datagram socket is tried first (allowed when our group is
in ``net.ipv4.ping_group_range``); the kernel then owns the identifier and hands
us only our replies.  Otherwise a raw socket (CAP_NET_RAW) is used and replies
are matched on identifier, sequence and a random token, since a raw socket sees
every ICMP packet the host receives.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import struct

from services.checker.probes.base import ProbeResult, Success, Target, measure, timeout_of
from services.checker.probes.sockets import family_of, make_socket, sockaddr
from shared.config.model_lvs import Checker

ECHO = struct.Struct("!BBHHH")
ECHO_REQUEST = {socket.AF_INET: 8, socket.AF_INET6: 128}
ECHO_REPLY = {socket.AF_INET: 0, socket.AF_INET6: 129}
PROTO = {socket.AF_INET: socket.IPPROTO_ICMP, socket.AF_INET6: socket.IPPROTO_ICMPV6}


def checksum(data: bytes) -> int:
    """RFC 1071 internet checksum (the kernel fills it for ICMPv6 and ping sockets anyway)."""
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def build_echo(family: socket.AddressFamily, ident: int, seq: int, token: bytes) -> bytes:
    kind = ECHO_REQUEST[family]
    draft = ECHO.pack(kind, 0, 0, ident, seq) + token
    return ECHO.pack(kind, 0, checksum(draft), ident, seq) + token


def is_our_reply(
    data: bytes, family: socket.AddressFamily, ident: int | None, seq: int, token: bytes
) -> bool:
    """True for an echo reply to our request; ``ident`` None when the kernel rewrote it."""
    if family == socket.AF_INET and data[:1] and data[0] >> 4 == 4:
        data = data[(data[0] & 0x0F) * 4 :]  # raw IPv4 sockets deliver the IP header too
    if len(data) < ECHO.size:
        return False
    kind, _, _, got_ident, got_seq = ECHO.unpack_from(data)
    return (
        kind == ECHO_REPLY[family]
        and got_seq == seq
        and (ident is None or got_ident == ident)
        and data[ECHO.size :].startswith(token)
    )


def open_icmp(family: socket.AddressFamily, check: Checker) -> tuple[socket.socket, bool]:
    """An ICMP datagram socket if the sysctl allows it, else a raw one; the flag says raw."""
    try:
        return make_socket(family, socket.SOCK_DGRAM, check, PROTO[family]), False
    except PermissionError:
        return make_socket(family, socket.SOCK_RAW, check, PROTO[family]), True


async def probe(check: Checker, target: Target) -> ProbeResult:
    return await measure(_echo(check, target))


async def _echo(check: Checker, target: Target) -> Success:
    family = family_of(target.host)
    ident, seq, token = secrets.randbits(16), secrets.randbits(16), secrets.token_bytes(16)
    loop = asyncio.get_running_loop()
    sock, raw = open_icmp(family, check)
    with sock:
        async with asyncio.timeout(timeout_of(check)):
            sock.connect(sockaddr(target.host, 0, check))  # datagram: no handshake, never blocks
            await loop.sock_sendall(sock, build_echo(family, ident, seq, token))
            while True:
                data = await loop.sock_recv(sock, 65535)
                if is_our_reply(data, family, ident if raw else None, seq, token):
                    return Success("echo reply" + (" (raw socket)" if raw else ""))
