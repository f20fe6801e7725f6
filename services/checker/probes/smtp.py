"""SMTP_CHECK: banner 220, ``HELO helo_name`` answered 250, then QUIT.

Each read waits at most connect_timeout, like keepalived's per-step timers, so a
server that accepts and then stalls fails instead of hanging the checker.
"""

from __future__ import annotations

import asyncio

from services.checker.probes.base import ProbeFailure, ProbeResult, Success, Target, measure, timeout_of
from services.checker.probes.sockets import close_stream, open_stream
from shared.config.model_lvs import Checker, SmtpCheck

DEFAULT_HELO = "smtpchecker.keepalived.org"
MAX_LINE = 4096


async def probe(check: Checker, target: Target) -> ProbeResult:
    return await measure(_converse(check, target))


async def read_reply(reader: asyncio.StreamReader, timeout: float) -> tuple[int, str]:
    """One (possibly multi-line ``250-...``) SMTP reply: its code and last line's text."""
    async with asyncio.timeout(timeout):
        while True:
            line = await reader.readuntil(b"\n")
            if len(line) < 3 or not line[:3].isdigit():
                raise ProbeFailure(f"malformed SMTP reply {line[:40]!r}")
            if line[3:4] != b"-":
                return int(line[:3]), line[4:].decode("latin-1").strip()


async def _converse(check: Checker, target: Target) -> Success:
    if target.port is None:
        raise ProbeFailure("no port to connect to")
    helo = check.helo_name if isinstance(check, SmtpCheck) else DEFAULT_HELO
    timeout = timeout_of(check)
    reader, writer = await open_stream(check, target.host, target.port, timeout)
    try:
        code, text = await read_reply(reader, timeout)
        if code != 220:
            raise ProbeFailure(f"banner {code} {text}")
        writer.write(f"HELO {helo}\r\n".encode())
        code, text = await read_reply(reader, timeout)
        if code != 250:
            raise ProbeFailure(f"HELO answered {code} {text}")
        writer.write(b"QUIT\r\n")
        async with asyncio.timeout(timeout):
            await writer.drain()
        return Success("220 banner, HELO 250")
    finally:
        await close_stream(writer)
