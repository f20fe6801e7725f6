"""Connecting to NATS so that a service never gives up on the bus.

Why its own module: every service connects the same way, and the choices here
(reconnect forever, short waits, one-line logs instead of tracebacks) are part
of the promise that a service keeps working while NATS is away.  It is also
the one place credentials come from: ``connect`` adds the NATS user/password,
creds file and TLS of ``lifeline.toml`` / ``LIFELINE_NATS_*`` (``connect_options``)
unless the caller passed its own, so no service has to thread them through.
And it gives every connection its user's private inbox prefix ``_INBOX_<user>``
(``inbox_prefix``): the generated NATS users may subscribe to their own
prefix only, so nobody reads another user's replies (docs/security.md).
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from nats.aio.client import Client

from shared.bus.home_transport import client_for
from shared.bus.outage_log import OutageLog
from shared.bus.trust import INBOX, inbox_prefix
from shared.events import is_token
from shared.netns import home
from shared.settings import Settings, SettingsError, load_settings

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
    settings: Settings | None = None,
    **options: Any,
) -> Client:
    """Connect and keep reconnecting forever (``max_reconnect_attempts=-1``).

    With ``-1`` nats-py also retries the *first* connection forever, so this
    returns only once a server answered; run it in a task when the caller must
    work without NATS (the ``Publisher`` queues meanwhile).  Pings every
    ``ping_interval`` s detect a half-open connection within
    ``ping_interval * max_outstanding_pings`` s.  ``options`` go to
    ``nats.connect`` unchanged (credentials, TLS...); what they leave out
    (credentials, TLS) comes from the settings (``settings`` or, when None,
    this process's ``lifeline.toml`` and environment).
    """
    urls = [servers] if isinstance(servers, str) else list(servers)
    defaults = connect_options(settings or _process_settings(), urls)
    if CREDENTIAL_KEYS & options.keys():
        defaults = {k: v for k, v in defaults.items() if k not in CREDENTIAL_KEYS}
    options = {**defaults, **options}
    options.setdefault("inbox_prefix", user_inbox(urls, options))

    outage = OutageLog()

    async def error_cb(exc: Exception) -> None:
        # nats-py's default prints a traceback per failed attempt; one line per outage is enough.
        line = outage.failed(time.monotonic(), f"{type(exc).__name__}: {exc}")
        if line is not None:
            log.warning("nats %s: %s", name, line)

    async def disconnected_cb() -> None:
        log.warning("nats %s: disconnected", name)
        if on_disconnected is not None:
            await on_disconnected()

    async def reconnected_cb() -> None:
        log.info(
            "nats %s: reconnected to %s, %s",
            name,
            _where(nc),
            outage.recovered(time.monotonic()) or "at once",
        )
        if on_reconnected is not None:
            await on_reconnected()

    async def closed_cb() -> None:
        log.warning("nats %s: connection closed", name)

    nc = client_for(home())  # inside net_namespace the bus is still reached where the service started
    settings_for_connect: dict[str, Any] = dict(  # nats-py annotates the timings int; they are seconds
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
    await nc.connect(**settings_for_connect)
    log.info("nats %s: connected to %s", name, _where(nc))
    return nc


def _where(nc: Client) -> str:
    """host:port of the server we are on; never the netloc, which carries user:password@."""
    url = nc.connected_url
    return f"{url.hostname}:{url.port}" if url is not None else "?"


def user_inbox(urls: Sequence[str], options: dict[str, Any]) -> str:
    """``_INBOX_<user>`` for the user the connection logs in as (URL or ``user=``), else ``_INBOX``.

    A creds file (JWT) names no user here: such a deployment's permissions are
    its operator's, and it keeps nats-py's shared prefix.
    """
    user = options.get("user")
    if not user:
        for url in urls:
            user = urlsplit(url if "://" in url else f"nats://{url}").username
            if user:
                break
    return inbox_prefix(user) if user and is_token(user) else INBOX


CREDENTIAL_KEYS = frozenset({"user", "password", "token", "user_credentials", "nkeys_seed"})
"""``nats.connect`` keywords that mean the caller chose its own credentials."""


def connect_options(settings: Settings, urls: Sequence[str] = ()) -> dict[str, Any]:
    """The settings' credentials and TLS as ``nats.connect`` keywords.

    A creds file wins over user/password; credentials in a URL win over both
    (nats-py would prefer the options, which would break ``nats://vrrp:pw@``
    URLs that deployments already use).  TLS: a context trusting
    ``nats_tls_ca`` (else the system's CAs), with the client certificate when
    one is set; ``tls://`` URLs without either still get nats-py's default.
    """
    options: dict[str, Any] = {}
    in_url = any(urlsplit(u if "://" in u else f"nats://{u}").username for u in urls)
    if settings.nats_creds:
        options["user_credentials"] = settings.nats_creds
    elif settings.nats_user and not in_url:
        options.update(user=settings.nats_user, password=settings.nats_password or "")
    tls = tls_context(settings)
    if tls is not None:
        options["tls"] = tls
    return options


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """A client TLS context from ``nats_tls_ca`` / ``nats_tls_cert`` + ``nats_tls_key``; None if unset."""
    if not (settings.nats_tls_ca or settings.nats_tls_cert):
        return None
    ctx = ssl.create_default_context(cafile=settings.nats_tls_ca)
    if settings.nats_tls_cert:
        ctx.load_cert_chain(settings.nats_tls_cert, settings.nats_tls_key)
    return ctx


def _process_settings() -> Settings:
    """This process's settings (the services load them the same way at start)."""
    try:
        return load_settings()
    except SettingsError as exc:  # the service's own start already reported it
        log.warning("nats: settings unreadable, connecting without their credentials: %s", exc)
        return Settings()
