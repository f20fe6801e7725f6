"""The SMTP sink against real SMTP servers: aiosmtpd in-process, and a raw recorder for the wire bytes."""

from __future__ import annotations

import asyncio
import calendar
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from services.notifier.sinks.base import DeliveryContext, DeliveryError
from services.notifier.sinks.smtp import SmtpSink
from shared.events import InstanceState, VrrpState
from shared.lab.nats import free_port

GOLDEN = Path(__file__).parent.parent / "unit" / "notifier" / "golden"
TS = calendar.timegm((2026, 11, 25, 18, 12, 26)) * 1_000_000_000  # the captured mail's Date


def master_event() -> InstanceState:
    return InstanceState(
        instance="VI_1", vrid=51, interface="eth0", state=VrrpState.MASTER, base_priority=255,
        effective_priority=255, node="n1", ts=TS, seq=7, boot_id="boot-abc",
    )  # fmt: skip


def sink(port: int, **kw: Any) -> SmtpSink:
    options: dict[str, Any] = {
        "host": "127.0.0.1", "port": port, "sender": "ka@example.net",
        "recipients": ["a@example.net", "b@example.net"], "router_id": "lab1",
        "helo_name": "helo.example", "connect_timeout": 2.0, "timeout": 2.0, "utc_dates": True,
    }  # fmt: skip
    options.update(kw)
    return SmtpSink(**options)


class Recorder:
    """aiosmtpd handler keeping every message and the session's greeting."""

    def __init__(self, refuse_rcpt: bool = False) -> None:
        self.refuse_rcpt = refuse_rcpt
        self.messages: list[tuple[Envelope, str, bool]] = []

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if self.refuse_rcpt:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        self.messages.append((envelope, str(session.host_name), bool(session.extended_smtp)))
        return "250 OK"


@pytest.fixture
def smtpd() -> Iterator[tuple[Recorder, int]]:
    handler, port = Recorder(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


async def test_mail_arrives_with_keepalived_headers_and_message_id(smtpd: tuple[Recorder, int]) -> None:
    handler, port = smtpd
    await sink(port).deliver(master_event(), DeliveryContext())
    [(envelope, helo, esmtp)] = handler.messages
    assert (helo, esmtp) == ("helo.example", False)  # HELO, like keepalived
    assert envelope.mail_from == "ka@example.net"
    assert envelope.rcpt_tos == ["a@example.net", "b@example.net"]
    assert envelope.original_content == (
        b"Date: Wed, 25 Nov 2026 18:12:26 +0000\r\n"
        b"From: ka@example.net\r\n"
        b"Subject: [lab1] VRRP Instance VI_1 - Entering MASTER state\r\n"
        b"X-Mailer: Keepalived\r\n"
        b"To: a@example.net, b@example.net\r\n"
        b"Message-ID: <lifeline.boot-abc.7@helo.example>\r\n"
        b"\r\n"
        b"=> VRRP Instance is now owning VRRP VIPs <=\r\n"
        b"\r\n"
    )


@pytest.fixture
async def raw_smtp() -> AsyncIterator[tuple[list[bytes], int]]:
    """A byte recorder speaking just enough SMTP (the one used to capture keepalived)."""
    log: list[bytes] = []

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(b"220 cap.example ESMTP test\r\n")
        while line := await r.readline():
            log.append(b"C: " + line)
            if line.upper().startswith(b"DATA"):
                w.write(b"354 go\r\n")
                log.append(b"D: " + await r.readuntil(b"\r\n.\r\n"))
            if line.upper().startswith(b"QUIT"):
                w.write(b"221 bye\r\n")
                break
            w.write(b"250 ok\r\n")
        w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield log, server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def test_wire_bytes_equal_keepalived_capture(raw_smtp: tuple[list[bytes], int]) -> None:
    log, port = raw_smtp
    await sink(port).deliver(master_event(), DeliveryContext())
    ours = b"".join(log).replace(b"Message-ID: <lifeline.boot-abc.7@helo.example>\r\n", b"")
    golden = (GOLDEN / "smtp-instance-master.raw").read_bytes()
    client_side = b"".join(line + b"\n" for line in golden.split(b"\n") if line.startswith((b"C: ", b"D: ")))
    # golden DATA spans several lines; rebuild it as one record like ours
    start = golden.index(b"D: ")
    data = golden[start : golden.index(b"\r\n.\r\n", start) + 5]
    expected = client_side.split(b"D: ")[0] + data + b"C: QUIT\r\n"
    assert ours == expected


async def test_server_down_is_retryable() -> None:
    with pytest.raises(DeliveryError) as err:
        await sink(free_port()).deliver(master_event(), DeliveryContext())
    assert err.value.retryable


async def test_refused_recipients_are_not_retryable() -> None:
    handler, port = Recorder(refuse_rcpt=True), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with pytest.raises(DeliveryError) as err:
            await sink(port).deliver(master_event(), DeliveryContext())
    finally:
        controller.stop()
    assert not err.value.retryable
    assert handler.messages == []


async def test_auth_switches_to_ehlo_and_logs_in() -> None:
    """On a clear connection only with ``allow_plaintext_auth`` (refused otherwise: test_tls_sinks.py)."""
    seen: list[tuple[str, str]] = []

    def authenticator(
        server: Any, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        seen.append((data.login.decode(), data.password.decode()))
        return AuthResult(success=data.password == b"s3cret")

    handler, port = Recorder(), free_port()
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, authenticator=authenticator, auth_require_tls=False
    )
    controller.start()
    try:
        mailer = sink(port, username="alerts", password="s3cret", allow_plaintext_auth=True)
        await mailer.deliver(master_event(), DeliveryContext())
    finally:
        controller.stop()
    assert seen == [("alerts", "s3cret")]
    [(_envelope, helo, esmtp)] = handler.messages
    assert (helo, esmtp) == ("helo.example", True)


async def test_no_mail_for_events_keepalived_does_not_mail(smtpd: tuple[Recorder, int]) -> None:
    handler, port = smtpd
    init = InstanceState(instance="VI_1", vrid=51, interface="eth0", state=VrrpState.INIT,
                         base_priority=100, effective_priority=100)  # fmt: skip
    await sink(port).deliver(init, DeliveryContext())
    fault = InstanceState(instance="VI_1", vrid=51, interface="eth0", state=VrrpState.FAULT,
                          base_priority=100, effective_priority=100)  # fmt: skip
    await sink(port, no_email_faults=True).deliver(fault, DeliveryContext())
    assert handler.messages == []
