"""Sockets that honour the common checker keywords: bindto, bind_port, bind_if, fwmark.

Probes build their own non-blocking socket here and hand it to asyncio, because
``asyncio.open_connection`` cannot set ``SO_BINDTODEVICE`` or ``SO_MARK`` before
connecting.  Nothing here forks or blocks: every wait is an asyncio wait.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import ssl as ssl_mod

from shared.config.model_lvs import Checker

SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)
SO_MARK = getattr(socket, "SO_MARK", 36)

SockAddr = tuple[str, int] | tuple[str, int, int, int]


@functools.lru_cache(maxsize=65536)
def family_of(host: str) -> socket.AddressFamily:
    """The address family of a literal address (cached: parsing it showed up in profiles)."""
    return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET


def sockaddr(host: str, port: int, check: Checker) -> SockAddr:
    """The address tuple; an IPv6 link-local destination takes its scope from ``bind_if``."""
    if family_of(host) == socket.AF_INET6:
        scope = 0
        if ipaddress.IPv6Address(host).is_link_local and check.bind_if:
            scope = socket.if_nametoindex(check.bind_if)
        return (host, port, 0, scope)
    return (host, port)


def make_socket(
    family: socket.AddressFamily, kind: socket.SocketKind, check: Checker, proto: int = 0
) -> socket.socket:
    """A non-blocking socket bound as the checker says; closed again if any option fails."""
    sock = socket.socket(family, kind, proto)
    try:
        sock.setblocking(False)
        if check.bind_if:
            sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, check.bind_if.encode())
        if check.fwmark is not None:
            sock.setsockopt(socket.SOL_SOCKET, SO_MARK, check.fwmark)
        if check.bindto is not None or check.bind_port:
            if check.bind_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            wildcard = "::" if family == socket.AF_INET6 else "0.0.0.0"
            source = str(check.bindto) if check.bindto is not None else wildcard
            port = check.bind_port or 0
            sock.bind(sockaddr(source, port, check) if family == socket.AF_INET6 else (source, port))
    except BaseException:
        sock.close()
        raise
    return sock


async def open_stream(
    check: Checker,
    host: str,
    port: int,
    timeout: float,
    *,
    tls: ssl_mod.SSLContext | None = None,
    server_hostname: str | None = None,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """TCP (and TLS) connection within ``timeout`` seconds for connect plus handshake."""
    loop = asyncio.get_running_loop()
    sock = make_socket(family_of(host), socket.SOCK_STREAM, check)
    try:
        async with asyncio.timeout(timeout):
            await loop.sock_connect(sock, sockaddr(host, port, check))
            if tls is None:
                return await asyncio.open_connection(sock=sock)
            return await asyncio.open_connection(
                sock=sock, ssl=tls, server_hostname=server_hostname or "", ssl_handshake_timeout=timeout
            )
    except BaseException:
        sock.close()
        raise


async def close_stream(writer: asyncio.StreamWriter) -> None:
    """Close without letting a peer that already hung up (or a TLS shutdown) turn into an error."""
    writer.close()
    try:
        async with asyncio.timeout(1.0):
            await writer.wait_closed()
    except (OSError, TimeoutError):
        pass
