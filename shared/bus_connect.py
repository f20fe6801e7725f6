"""Connecting to NATS so that a service never gives up on the bus.

Why its own module: every service connects the same way, and the choices here
(reconnect forever, short waits, one-line logs instead of tracebacks) are part
of the promise that a service keeps working while NATS is away.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import nats
from nats.aio.client import Client

log = logging.getLogger("lifeline.bus")

Callback = Callable[[], Awaitable[None]]


async def connect(
    servers: str | Sequence[str],
    name: str,
    *,
    reconnect_wait: float = 0.5,
    connect_timeout: float = 2.0,
    ping_interval: float = 5.0,
    max_outstanding_pings: int = 3,
    on_disconnected: Callback | None = None,
    on_reconnected: Callback | None = None,
    **options: Any,
) -> Client:
    """Connect and keep reconnecting forever (``max_reconnect_attempts=-1``).

    With ``-1`` nats-py also retries the *first* connection forever, so this
    returns only once a server answered; run it in a task when the caller must
    work without NATS (the ``Publisher`` queues meanwhile).  Pings every
    ``ping_interval`` s detect a half-open connection within
    ``ping_interval * max_outstanding_pings`` s.  ``options`` go to
    ``nats.connect`` unchanged (credentials, TLS...).
    """

    async def error_cb(exc: Exception) -> None:
        # nats-py's default prints a traceback per failed attempt; one line is enough.
        log.warning("nats %s: %s: %s", name, type(exc).__name__, exc)

    async def disconnected_cb() -> None:
        log.warning("nats %s: disconnected", name)
        if on_disconnected is not None:
            await on_disconnected()

    async def reconnected_cb() -> None:
        log.info("nats %s: reconnected to %s", name, _where(nc))
        if on_reconnected is not None:
            await on_reconnected()

    async def closed_cb() -> None:
        log.warning("nats %s: connection closed", name)

    urls = [servers] if isinstance(servers, str) else list(servers)
    nc: Client = await nats.connect(
        servers=urls,
        name=name,
        allow_reconnect=True,
        max_reconnect_attempts=-1,
        reconnect_time_wait=reconnect_wait,
        connect_timeout=connect_timeout,
        ping_interval=ping_interval,
        max_outstanding_pings=max_outstanding_pings,
        error_cb=error_cb,
        disconnected_cb=disconnected_cb,
        reconnected_cb=reconnected_cb,
        closed_cb=closed_cb,
        **options,
    )
    log.info("nats %s: connected to %s", name, _where(nc))
    return nc


def _where(nc: Client) -> str:
    """host:port of the server we are on; never the netloc, which carries user:password@."""
    url = nc.connected_url
    return f"{url.hostname}:{url.port}" if url is not None else "?"
