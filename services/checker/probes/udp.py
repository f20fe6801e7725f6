"""UDP_CHECK: send ``payload`` (random bytes if none) on a connected UDP socket.

A connected socket is what makes an ICMP port/host/net unreachable surface as
``ECONNREFUSED``/``EHOSTUNREACH`` on the next receive.  Without ``require_reply``
the check passes unless such an error arrives within connect_timeout (so a pass
costs the whole timeout, as in keepalived); any reply passes at once.  With
``require_reply`` a reply must arrive, its length must lie in
``[min_reply_length, max_reply_length]``, and if a pattern was given it must
match the reply for the shorter of the two lengths, ``X`` nibbles matching anything.
"""

from __future__ import annotations

import asyncio
import os
import socket

from services.checker.probes.base import ProbeFailure, ProbeResult, Success, Target, measure, timeout_of
from services.checker.probes.sockets import family_of, make_socket, sockaddr
from shared.config.model_lvs import Checker, UdpCheck

RANDOM_PAYLOAD_LEN = 16


def pattern_matches(pattern: str, reply: bytes) -> bool:
    """``pattern`` is two hex characters per byte (``X``/``x`` = any nibble)."""
    nibbles = reply.hex()
    return all(want in ("x", got) for want, got in zip(pattern.lower(), nibbles, strict=False))


def check_reply(check: UdpCheck, reply: bytes) -> str:
    if not check.min_reply_length <= len(reply) <= check.max_reply_length:
        raise ProbeFailure(
            f"reply length {len(reply)} outside [{check.min_reply_length}, {check.max_reply_length}]"
        )
    if check.reply_pattern and not pattern_matches(check.reply_pattern, reply):
        raise ProbeFailure(f"reply {reply[:16].hex()} does not match {check.reply_pattern}")
    return f"reply of {len(reply)} bytes"


async def probe(check: Checker, target: Target) -> ProbeResult:
    return await measure(_exchange(check, target))


async def _exchange(check: Checker, target: Target) -> Success:
    if not isinstance(check, UdpCheck):
        raise ProbeFailure(f"not a UDP checker: {type(check).__name__}")
    if target.port is None:
        raise ProbeFailure("no port to send to")
    payload = check.payload if check.payload is not None else os.urandom(RANDOM_PAYLOAD_LEN)
    loop = asyncio.get_running_loop()
    with make_socket(family_of(target.host), socket.SOCK_DGRAM, check) as sock:
        await loop.sock_connect(sock, sockaddr(target.host, target.port, check))
        await loop.sock_sendall(sock, payload)
        try:
            async with asyncio.timeout(timeout_of(check)):
                reply = await loop.sock_recv(sock, 65535)
        except TimeoutError:
            if check.require_reply:
                raise
            return Success("no reply and no ICMP error")
    return Success(check_reply(check, reply) if check.require_reply else f"reply of {len(reply)} bytes")
