"""POST each event as JSON to a URL, with a small HTTP/1.1 client on asyncio streams.

Why no HTTP library: a webhook needs one request per event and a status code
back; asyncio's streams do that in a page, so the notifier has no extra
dependency.  The body is the event exactly as on the bus (``shared.events``
JSON), so receivers decode it with the documented contract.  Each request
carries ``Idempotency-Key: boot_id:seq`` (the bus's ``Nats-Msg-Id``): a
receiver can drop the re-sends a retry may cause.

Status codes: 2xx delivered; 408, 425, 429 and 5xx retryable; other codes
(redirects included: a webhook URL should be exact) are not.

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

import asyncio
import contextlib
import ssl
from collections.abc import Mapping
from urllib.parse import urlsplit

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
        self.name = name
        self.url = url
        self.shown_url = redact(url)
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if cafile is not None and (ssl_context is not None or parts.scheme != "https"):
            raise ValueError("webhook cafile needs an https:// URL and no ssl_context")
        self.ssl: ssl.SSLContext | None = None
        if parts.scheme == "https":
            self.ssl = ssl_context or ssl.create_default_context(cafile=cafile)
        netloc = parts.netloc.rpartition("@")[2]
        self.headers = {"Host": netloc, "User-Agent": "lifeline-notifier", **(headers or {})}
        self.timeout = timeout

    def request_bytes(self, event: Event, context: DeliveryContext) -> bytes:
        """The whole HTTP/1.1 request for ``event`` (one request per connection)."""
        body = encode(event)
        headers = {
            **self.headers,
            "Content-Type": "application/json",
            "Content-Length": str(len(body)),
            "Connection": "close",
            "Idempotency-Key": msg_id(event),
            "X-Lifeline-Attempt": str(context.attempt),
        }
        head = f"POST {self.target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        return head.encode("latin-1") + b"\r\n" + body

    async def deliver(self, event: Event, context: DeliveryContext) -> None:
        request = self.request_bytes(event, context)
        try:
            status = await asyncio.wait_for(self._post(request), self.timeout)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
            raise DeliveryError(f"POST {self.shown_url} failed: {exc!r}", retryable=True) from exc
        if 200 <= status < 300:
            return
        retryable = status >= 500 or status in _RETRYABLE_STATUS
        raise DeliveryError(f"POST {self.shown_url} answered {status}", retryable=retryable)

    async def _post(self, request: bytes) -> int:
        reader, writer = await asyncio.open_connection(self.host, self.port, ssl=self.ssl)
        try:
            writer.write(request)
            await writer.drain()
            status_line = await reader.readuntil(b"\r\n")
            status = _parse_status(status_line)
            # Read the rest of the head so the server sees an orderly close; the body is ignored.
            while await reader.readuntil(b"\r\n") != b"\r\n":
                pass
            return status
        except asyncio.LimitOverrunError as exc:
            raise ValueError("response header line longer than 64 KiB") from exc
        finally:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()


def _parse_status(line: bytes) -> int:
    """``HTTP/1.1 204 No Content`` → 204; ValueError on anything else."""
    parts = line.decode("latin-1").split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ValueError(f"not an HTTP status line: {line!r}")
    return int(parts[1])
