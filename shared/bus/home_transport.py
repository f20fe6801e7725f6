"""The NATS connection of a service that runs inside ``net_namespace``: its socket lives where it started.

keepalived's ``net_namespace`` puts the whole daemon in a namespace; a lifeline
service moves there too (``shared/runner``), but its bus (``--nats``, usually
the node's nats-server on 127.0.0.1) is where the service was started.  This
transport is nats-py's TCP transport with one change: the socket is resolved,
made and connected by ``shared.netns.Home``'s thread, which never left the
start namespace.  Everything after the connect (TLS upgrade, reads, writes,
reconnects, which call ``connect`` again) is nats-py's own.
"""

from __future__ import annotations

import asyncio
from urllib.parse import ParseResult

from nats.aio.client import Client
from nats.aio.transport import TcpTransport

from shared.netns import Home


class HomeTransport(TcpTransport):
    """``TcpTransport`` whose connections are opened in the home namespace."""

    def __init__(self, home: Home) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.home = home

    async def connect(self, uri: ParseResult, buffer_size: int, connect_timeout: int) -> None:
        assert uri.hostname is not None and uri.port is not None
        reader, writer = await asyncio.wait_for(
            self.home.open_connection(uri.hostname, uri.port, limit=buffer_size, timeout=connect_timeout),
            connect_timeout,
        )
        # nats-py keeps the first (pre-TLS) streams alive in these two, as its own connect does
        self._bare_io_reader = self._io_reader = reader
        self._bare_io_writer = self._io_writer = writer

    def __bool__(self) -> bool:
        """Always true: nats-py replaces a *false* transport with a plain one before connecting."""
        return True

    def write(self, payload: bytes) -> None:
        if self._io_writer is not None:  # nothing to write on before the first connect
            self._io_writer.write(payload)

    def writelines(self, payload: list[bytes]) -> None:
        if self._io_writer is not None:
            self._io_writer.writelines(payload)

    async def drain(self) -> None:
        if self._io_writer is not None:
            await self._io_writer.drain()


def client_for(home: Home | None) -> Client:
    """A nats-py client; inside ``net_namespace`` one that connects from the home namespace.

    nats-py picks its TCP transport only when the one it has is false, and
    keeps it across reconnects, so a transport that is always true, set before
    ``connect``, is the one every connection uses.
    """
    nc = Client()
    if home is not None:
        nc._transport = HomeTransport(home)
    return nc
