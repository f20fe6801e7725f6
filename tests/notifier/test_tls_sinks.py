"""The TLS paths of the SMTP and webhook sinks, against real TLS servers and a certificate made here.

One self-signed certificate (for ``127.0.0.1``) is generated per module with
the ``openssl`` CLI.  Servers present it; clients trust it as their only CA,
so every handshake below really verifies the chain and the host name.  The
negative tests show that verification is on by default: without the CA, the
same servers are refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from services.notifier.sinks.base import DeliveryContext, DeliveryError
from services.notifier.sinks.smtp import SmtpSink
from services.notifier.sinks.webhook import WebhookSink
from shared.events import InstanceState, VrrpState, decode
from shared.lab.nats import free_port

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")


@dataclass(frozen=True)
class Cert:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """A verifying client context (chain and host name) trusting only this certificate."""
        return ssl.create_default_context(cafile=str(self.cert))


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> Cert:
    d = tmp_path_factory.mktemp("tls")
    made = Cert(cert=d / "cert.pem", key=d / "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=lifeline test",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(made.key), "-out", str(made.cert)],
        check=True, capture_output=True, timeout=10,
    )  # fmt: skip
    return made


def master_event() -> InstanceState:
    return InstanceState(
        instance="VI_1", vrid=51, interface="eth0", state=VrrpState.MASTER, base_priority=255,
        effective_priority=255, node="n1", ts=1_700_000_000_000_000_000, seq=7, boot_id="boot-abc",
    )  # fmt: skip


def smtp_sink(port: int, **kw: Any) -> SmtpSink:
    options: dict[str, Any] = {
        "host": "127.0.0.1", "port": port, "sender": "ka@example.net",
        "recipients": ["a@example.net"], "router_id": "lab1", "helo_name": "helo.example",
        "connect_timeout": 2.0, "timeout": 2.0,
    }  # fmt: skip
    options.update(kw)
    return SmtpSink(**options)


@dataclass
class Delivered:
    """What the server knew about the session when DATA arrived."""

    rcpt_tos: list[str]
    content: bytes
    tls_version: str | None  # from the transport DATA came over: None means clear text
    starttls_seen: bool  # aiosmtpd's ``session.ssl``: set by STARTTLS only
    authenticated: bool
    login: str | None


class Recorder:
    """aiosmtpd handler keeping every message with the TLS and AUTH state of its session."""

    def __init__(self) -> None:
        self.messages: list[Delivered] = []
        self.logins: list[tuple[str, str, bool]] = []  # (user, password, over TLS)

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        ssl_object = server.transport.get_extra_info("ssl_object")
        content = envelope.original_content or b""
        self.messages.append(
            Delivered(
                rcpt_tos=list(envelope.rcpt_tos),
                content=content,
                tls_version=ssl_object.version() if ssl_object is not None else None,
                starttls_seen=session.ssl is not None,
                authenticated=bool(session.authenticated),
                login=session.auth_data.decode() if isinstance(session.auth_data, bytes) else None,
            )
        )
        return "250 OK"

    def authenticator(
        self, server: Any, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        over_tls = server.transport.get_extra_info("ssl_object") is not None
        self.logins.append((data.login.decode(), data.password.decode(), over_tls))
        ok = (data.login, data.password) == (b"alerts", b"s3cret")
        return AuthResult(success=ok, handled=False, auth_data=data.login if ok else None)  # 535 on failure


@pytest.fixture
def starttls_server(cert: Cert) -> Iterator[tuple[Recorder, int]]:
    """STARTTLS required before anything else; AUTH offered only over TLS (aiosmtpd's default)."""
    handler, port = Recorder(), free_port()
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, tls_context=cert.server_context(),
        require_starttls=True, authenticator=handler.authenticator, auth_required=True,
    )  # fmt: skip
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


# --------------------------------------------------------------------------- SMTP


async def test_starttls_with_auth_delivers_over_verified_tls(
    cert: Cert, starttls_server: tuple[Recorder, int]
) -> None:
    handler, port = starttls_server
    sink = smtp_sink(
        port, starttls=True, tls_context=cert.client_context(), username="alerts", password="s3cret"
    )
    await sink.deliver(master_event(), DeliveryContext())

    assert handler.logins == [("alerts", "s3cret", True)]  # AUTH happened after the handshake
    [mail] = handler.messages
    assert mail.rcpt_tos == ["a@example.net"]
    assert mail.tls_version is not None and mail.tls_version.startswith("TLSv1.")
    assert mail.starttls_seen and mail.authenticated and mail.login == "alerts"
    assert b"Subject: [lab1] VRRP Instance VI_1 - Entering MASTER state" in mail.content
    assert b"Message-ID: <lifeline.boot-abc.7@helo.example>" in mail.content


async def test_starttls_wrong_password_is_permanent(
    cert: Cert, starttls_server: tuple[Recorder, int]
) -> None:
    handler, port = starttls_server
    sink = smtp_sink(
        port, starttls=True, tls_context=cert.client_context(), username="alerts", password="nope"
    )
    with pytest.raises(DeliveryError, match="535") as err:
        await sink.deliver(master_event(), DeliveryContext())
    assert not err.value.retryable
    # aiosmtplib tries each offered mechanism (PLAIN, then LOGIN): every try was over TLS.
    assert handler.logins and set(handler.logins) == {("alerts", "nope", True)}
    assert handler.messages == []


async def test_starttls_verifies_the_server_by_default(starttls_server: tuple[Recorder, int]) -> None:
    """No ``tls_context``: the system trust store, which does not know the test certificate."""
    handler, port = starttls_server
    sink = smtp_sink(port, starttls=True, username="alerts", password="s3cret")
    with pytest.raises(DeliveryError, match="CERTIFICATE_VERIFY_FAILED"):
        await sink.deliver(master_event(), DeliveryContext())
    assert handler.logins == [] and handler.messages == []  # the password never left the client


async def test_implicit_tls_delivers(cert: Cert) -> None:
    handler, port = Recorder(), free_port()
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, ssl_context=cert.server_context(),
        # aiosmtpd only counts STARTTLS as TLS for offering AUTH; the authenticator records
        # that this login did arrive over TLS.
        authenticator=handler.authenticator, auth_require_tls=False,
    )  # fmt: skip
    controller.start()
    try:
        sink = smtp_sink(
            port, use_tls=True, tls_context=cert.client_context(), username="alerts", password="s3cret"
        )
        await sink.deliver(master_event(), DeliveryContext())
    finally:
        controller.stop()
    assert handler.logins == [("alerts", "s3cret", True)]
    [mail] = handler.messages
    assert mail.tls_version is not None
    assert not mail.starttls_seen  # TLS from the first byte, no STARTTLS dialogue
    assert mail.authenticated


async def test_starttls_refused_when_the_server_does_not_offer_it() -> None:
    """A plain server: the sink must not fall back to clear text, and retrying cannot help."""
    handler, port = Recorder(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)  # no tls_context: no STARTTLS
    controller.start()
    try:
        with pytest.raises(DeliveryError, match=rf"127\.0\.0\.1:{port} does not offer STARTTLS") as err:
            await smtp_sink(port, starttls=True).deliver(master_event(), DeliveryContext())
    finally:
        controller.stop()
    assert not err.value.retryable
    assert handler.messages == []


# --------------------------------------------------------------------------- AUTH never in clear text


class Wiretap:
    """What a plain SMTP server saw: connections and every AUTH command line (mechanism and initial data)."""

    def __init__(self) -> None:
        self.connections = 0
        self.auth_commands: list[str] = []


def clear_auth_server(handler: Recorder, tap: Wiretap, cert: Cert | None = None) -> Controller:
    """aiosmtpd offering AUTH PLAIN/LOGIN over a clear connection (STARTTLS too when ``cert``)."""

    class TappedSMTP(SMTP):
        def connection_made(self, transport: Any) -> None:
            tap.connections += 1
            super().connection_made(transport)

        async def smtp_AUTH(self, arg: str) -> None:
            tap.auth_commands.append(arg)
            await super().smtp_AUTH(arg)

    class TappedController(Controller):
        def factory(self) -> SMTP:
            return TappedSMTP(self.handler, **self.SMTP_kwargs)

    tls: dict[str, Any] = {"tls_context": cert.server_context()} if cert is not None else {}
    return TappedController(
        handler, hostname="127.0.0.1", port=free_port(), authenticator=handler.authenticator,
        auth_require_tls=False, **tls,
    )  # fmt: skip


@pytest.fixture
def clear_auth() -> Iterator[tuple[Recorder, Wiretap, int]]:
    handler, tap = Recorder(), Wiretap()
    controller = clear_auth_server(handler, tap)
    controller.start()
    try:
        yield handler, tap, controller.port
    finally:
        controller.stop()


async def test_auth_is_never_sent_in_clear_text(
    clear_auth: tuple[Recorder, Wiretap, int], caplog: pytest.LogCaptureFixture
) -> None:
    """Credentials without TLS or STARTTLS: refused before connecting, for good, with the reason, logged."""
    handler, tap, port = clear_auth
    connections = tap.connections  # aiosmtpd's own readiness probe at start
    sink = smtp_sink(port, username="alerts", password="s3cret")
    with pytest.raises(DeliveryError, match="neither use_tls nor starttls") as err:
        await sink.deliver(master_event(), DeliveryContext())
    assert not err.value.retryable  # the core dead-letters it at once
    assert "clear text" in str(err.value) and "allow_plaintext_auth" in str(err.value)
    assert tap.auth_commands == [] and handler.logins == [] and handler.messages == []
    assert tap.connections == connections  # nothing left the client, not even the mail
    assert any("SMTP AUTH" in r.getMessage() and r.levelname == "ERROR" for r in caplog.records)


async def test_allow_plaintext_auth_sends_it(clear_auth: tuple[Recorder, Wiretap, int]) -> None:
    """The operator's explicit choice: AUTH over the clear connection, and the mail goes out."""
    handler, tap, port = clear_auth
    sink = smtp_sink(port, username="alerts", password="s3cret", allow_plaintext_auth=True)
    await sink.deliver(master_event(), DeliveryContext())
    assert tap.auth_commands and tap.auth_commands[0].split()[0] in ("PLAIN", "LOGIN")
    assert handler.logins == [("alerts", "s3cret", False)]  # it did cross in clear: the operator asked
    [mail] = handler.messages
    assert mail.authenticated and mail.tls_version is None


async def test_starttls_on_a_server_that_also_offers_clear_auth(cert: Cert) -> None:
    """The same server with STARTTLS: AUTH only after the handshake, the mail over TLS."""
    handler, tap = Recorder(), Wiretap()
    controller = clear_auth_server(handler, tap, cert)
    controller.start()
    try:
        sink = smtp_sink(
            controller.port,
            starttls=True,
            tls_context=cert.client_context(),
            username="alerts",
            password="s3cret",
        )
        await sink.deliver(master_event(), DeliveryContext())
    finally:
        controller.stop()
    assert len(tap.auth_commands) == 1
    assert handler.logins == [("alerts", "s3cret", True)]
    [mail] = handler.messages
    assert mail.starttls_seen and mail.tls_version is not None


async def test_the_connection_is_checked_again_just_before_auth(
    clear_auth: tuple[Recorder, Wiretap, int],
) -> None:
    """The last guard, on a real clear connection: whatever led here, AUTH does not follow."""
    _handler, tap, port = clear_auth
    sink = smtp_sink(port, username="alerts", password="s3cret", starttls=True)  # config says TLS...
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=2)
    await client.connect()  # ...but this connection never did STARTTLS
    try:
        await client.ehlo()
        with pytest.raises(DeliveryError, match="not encrypted") as err:
            sink._check_encrypted(client)
        assert not err.value.retryable
    finally:
        client.close()
    assert tap.auth_commands == []


# --------------------------------------------------------------------------- webhook


@dataclass
class HttpsServer:
    port: int = 0
    requests: list[tuple[bytes, dict[str, str], bytes, str | None]] = field(default_factory=list)


@contextlib.asynccontextmanager
async def serve_https(cert: Cert, host: str = "127.0.0.1") -> AsyncIterator[HttpsServer]:
    """A one-request-per-connection HTTPS server presenting ``cert``, answering 204."""
    state = HttpsServer()

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            request_line = (await r.readuntil(b"\r\n")).rstrip()
            headers: dict[str, str] = {}
            while (line := await r.readuntil(b"\r\n")) != b"\r\n":
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await r.readexactly(int(headers.get("content-length", "0")))
            ssl_object = w.get_extra_info("ssl_object")
            state.requests.append((request_line, headers, body, ssl_object.version() if ssl_object else None))
            w.write(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
            await w.drain()
        finally:
            w.close()

    server = await asyncio.start_server(handle, host, 0, ssl=cert.server_context())
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
async def https(cert: Cert) -> AsyncIterator[HttpsServer]:
    async with serve_https(cert) as state:
        yield state


async def test_webhook_https_with_cafile(cert: Cert, https: HttpsServer) -> None:
    sink = WebhookSink(f"https://127.0.0.1:{https.port}/hook?x=1", cafile=str(cert.cert), timeout=5.0)
    await sink.deliver(master_event(), DeliveryContext(attempt=2))
    [(request_line, headers, body, tls_version)] = https.requests
    assert request_line == b"POST /hook?x=1 HTTP/1.1"
    assert tls_version is not None and tls_version.startswith("TLSv1.")
    assert headers["host"] == f"127.0.0.1:{https.port}"
    assert headers["idempotency-key"] == "boot-abc:7"
    assert headers["x-lifeline-attempt"] == "2"
    assert decode(body) == master_event()


async def test_webhook_https_with_ssl_context(cert: Cert, https: HttpsServer) -> None:
    sink = WebhookSink(f"https://localhost:{https.port}/", ssl_context=cert.client_context(), timeout=5.0)
    await sink.deliver(master_event(), DeliveryContext())
    assert len(https.requests) == 1


async def test_webhook_https_verifies_by_default(https: HttpsServer) -> None:
    """No CA given: the system trust store refuses the certificate; retryable (a cert can be fixed)."""
    sink = WebhookSink(f"https://127.0.0.1:{https.port}/", timeout=5.0)
    with pytest.raises(DeliveryError, match="CERTIFICATE_VERIFY_FAILED") as err:
        await sink.deliver(master_event(), DeliveryContext())
    assert err.value.retryable
    assert https.requests == []


async def test_webhook_https_checks_the_host_name(cert: Cert) -> None:
    """The CA is trusted, but the certificate is not for this name (it covers 127.0.0.1 and localhost)."""
    async with serve_https(cert, host="127.0.0.2") as other:  # still loopback on Linux
        sink = WebhookSink(f"https://127.0.0.2:{other.port}/", cafile=str(cert.cert), timeout=5.0)
        with pytest.raises(DeliveryError, match="IP address mismatch"):
            await sink.deliver(master_event(), DeliveryContext())
    assert other.requests == []


def test_webhook_cafile_needs_https_and_no_ssl_context(cert: Cert) -> None:
    with pytest.raises(ValueError, match="cafile"):
        WebhookSink("http://127.0.0.1/", cafile=str(cert.cert))
    with pytest.raises(ValueError, match="cafile"):
        WebhookSink("https://127.0.0.1/", cafile=str(cert.cert), ssl_context=cert.client_context())
