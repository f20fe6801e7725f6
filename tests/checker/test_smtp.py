"""SMTP_CHECK against aiosmtpd and against hand-made misbehaving servers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from aiosmtpd.smtp import SMTP

from services.checker.probes import run_probe
from services.checker.probes.base import Target
from shared.config.model_lvs import SmtpCheck
from tests.checker.conftest import make


class Recorder:
    """aiosmtpd handler remembering the HELO name; ``refuse`` makes HELO fail."""

    def __init__(self, refuse: bool = False) -> None:
        self.helo: list[str] = []
        self.refuse = refuse

    async def handle_HELO(self, server: SMTP, session: object, envelope: object, hostname: str) -> str:
        self.helo.append(hostname)
        return "550 go away" if self.refuse else f"250 {server.hostname}"


async def serve(factory: Callable[[], asyncio.BaseProtocol]) -> tuple[asyncio.Server, int]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


@pytest.fixture
async def smtp() -> AsyncIterator[tuple[Recorder, int]]:
    handler = Recorder()
    server, port = await serve(lambda: SMTP(handler, hostname="mx.test"))
    yield handler, port
    server.close()
    await server.wait_closed()


async def test_smtp_default_helo(smtp: tuple[Recorder, int]) -> None:
    handler, port = smtp
    check = make(SmtpCheck, port)
    result = await run_probe(check, Target.of(check))
    assert result.ok, result.detail
    assert handler.helo == ["smtpchecker.keepalived.org"]


async def test_smtp_custom_helo(smtp: tuple[Recorder, int]) -> None:
    handler, port = smtp
    check = make(SmtpCheck, port, helo_name="lb1.example.org")
    assert (await run_probe(check, Target.of(check))).ok
    assert handler.helo == ["lb1.example.org"]


async def test_smtp_helo_refused() -> None:
    handler = Recorder(refuse=True)
    server, port = await serve(lambda: SMTP(handler))
    try:
        check = make(SmtpCheck, port)
        result = await run_probe(check, Target.of(check))
        assert not result.ok
        assert "HELO answered 550" in result.detail
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    ("greeting", "detail"),
    [(b"554 busy\r\n", "banner 554"), (b"", "timeout"), (b"garbage\r\n", "malformed")],
)
async def test_smtp_bad_banner(greeting: bytes, detail: str) -> None:
    async def handle(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(greeting)
        await asyncio.sleep(2)
        w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        check = make(SmtpCheck, server.sockets[0].getsockname()[1], connect_timeout=0.3)
        result = await run_probe(check, Target.of(check))
        assert not result.ok
        assert detail in result.detail
    finally:
        server.close()
        await server.wait_closed()
