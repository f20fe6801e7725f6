"""POST each event as JSON to a URL, through httpx.

Why httpx and not a hand-made client: a webhook URL in the wild carries
credentials (``https://user:pw@host/...``: Basic auth), sits behind a proxy
(``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY`` from the notifier's
environment), answers with chunked bodies or keeps the connection alive; a
maintained HTTP client does all of that right, and the connection pool reuses
one TLS session across events.  The body is the event exactly as on the bus
(``shared.events`` JSON), so receivers decode it with the documented contract.
Each request carries ``Idempotency-Key: boot_id:seq`` (the bus's
``Nats-Msg-Id``): a receiver can drop the re-sends a retry may cause.

Status codes: 2xx delivered; 408, 425, 429 and 5xx retryable; other codes
(redirects included, never followed: a webhook URL should be exact) are not.

TLS: an ``https://`` URL is always verified (certificate chain and host name)
against the system's trust store, or against ``cafile`` (a PEM bundle, for a
receiver behind a private CA; settable from ``lifeline.toml`` options), or by a
caller's own ``ssl_context``.  There is deliberately no switch to turn
verification off.

Secrets: a URL may carry a password (``https://user:pw@...``) or a token
(``?token=...``), and headers a credential.  The sink registers them with
``shared.redact`` when it is built and names its URL redacted (``shown_url``)
in every error, so neither logs, ``status`` nor dead letters show them.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx

from services.notifier.sinks.base import DeliveryContext, DeliveryError
from shared.events import Event, encode, msg_id
from shared.redact import redact, register_secrets_of

_RETRYABLE_STATUS = frozenset({408, 425, 429})


class WebhookSink:
    """Delivers events to ``url`` (``http://`` or ``https://``) as ``application/json`` POSTs."""

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        cafile: str | None = None,
        name: str = "webhook",
    ) -> None:
        register_secrets_of({"url": url, "headers": dict(headers or {})})
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"webhook URL must be http(s)://host[:port]/path, not {redact(url)!r}")
        if cafile is not None and (ssl_context is not None or parts.scheme != "https"):
            raise ValueError("webhook cafile needs an https:// URL and no ssl_context")
        self.name = name
        self.shown_url = redact(url)
        self.url = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
        self.headers = {"User-Agent": "lifeline-notifier", **(headers or {})}
        explicit = any(
            k.lower() == "authorization" for k in self.headers
        )  # a configured header wins, as in curl
        self.auth = None if explicit else _basic_auth(parts.username, parts.password)
        self.timeout = timeout
        verify: ssl.SSLContext | bool = True
        if parts.scheme == "https":
            verify = ssl_context or ssl.create_default_context(cafile=cafile)
        self._verify = verify
        self._client: httpx.AsyncClient | None = None

    def client(self) -> httpx.AsyncClient:
        """One pooled client per sink, made on first use (inside the notifier's loop)."""
        if self._client is None:
            self._client = httpx.AsyncClient(
                auth=self.auth,
                verify=self._verify,
                timeout=self.timeout,
                follow_redirects=False,
                trust_env=True,
            )
        return self._client

    async def deliver(self, event: Event, context: DeliveryContext) -> None:
        headers = {
            **self.headers,
            "Content-Type": "application/json",
            "Idempotency-Key": msg_id(event),
            "X-Lifeline-Attempt": str(context.attempt),
        }
        try:
            response = await self.client().post(self.url, content=encode(event), headers=headers)
        except (httpx.HTTPError, OSError, ssl.SSLError) as exc:
            why = redact(f"{type(exc).__name__}: {exc}")
            raise DeliveryError(f"POST {self.shown_url} failed: {why}", retryable=True) from exc
        status = response.status_code
        if 200 <= status < 300:
            return
        retryable = status >= 500 or status in _RETRYABLE_STATUS
        raise DeliveryError(f"POST {self.shown_url} answered {status}", retryable=retryable)

    async def close(self) -> None:
        """Close the pooled connections (the notifier's sink swap and shutdown)."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _basic_auth(user: str | None, password: str | None) -> httpx.BasicAuth | None:
    """``https://user:pw@host/``: HTTP Basic, as curl and every browser send it (percent-decoded)."""
    if user is None:
        return None
    return httpx.BasicAuth(unquote(user), unquote(password or ""))
