"""TCP_CHECK: the real server is fine if a TCP connection opens within connect_timeout.

As keepalived does: a non-blocking ``connect``, wait until the socket is
writable, read ``SO_ERROR``, close.  No asyncio transport or stream is built
around the socket, and ``loop.sock_connect``'s per-call bookkeeping is skipped:
together that was most of the Python CPU of a probe (bench/RESULTS.md, "Checker").
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket

from services.checker.probes.base import ProbeFailure, ProbeResult, Success, Target, measure, timeout_of
from services.checker.probes.sockets import family_of, make_socket, sockaddr
from shared.config.model_lvs import Checker

CONNECTED = Success("connected")


async def probe(check: Checker, target: Target) -> ProbeResult:
    return await measure(_connect(check, target))


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


async def connect(sock: socket.socket, address: tuple[object, ...], timeout: float) -> None:
    """Connect a non-blocking socket within ``timeout`` s; OSError (with errno) or TimeoutError."""
    err = sock.connect_ex(address)
    if err in (errno.EINPROGRESS, errno.EAGAIN):
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        fd = sock.fileno()
        loop.add_writer(fd, _wake, fut)
        try:
            async with asyncio.timeout(timeout):
                await fut
        finally:
            loop.remove_writer(fd)
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err:
        raise OSError(err, os.strerror(err))


async def _connect(check: Checker, target: Target) -> Success:
    if target.port is None:
        raise ProbeFailure("no port to connect to")
    with make_socket(family_of(target.host), socket.SOCK_STREAM, check) as sock:
        await connect(sock, sockaddr(target.host, target.port, check), timeout_of(check))
    return CONNECTED
