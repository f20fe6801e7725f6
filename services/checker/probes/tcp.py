"""TCP_CHECK: the real server is fine if a TCP connection opens within connect_timeout."""

from __future__ import annotations

from services.checker.probes.base import ProbeFailure, ProbeResult, Success, Target, measure, timeout_of
from services.checker.probes.sockets import close_stream, open_stream
from shared.config.model_lvs import Checker


async def probe(check: Checker, target: Target) -> ProbeResult:
    return await measure(_connect(check, target))


async def _connect(check: Checker, target: Target) -> Success:
    if target.port is None:
        raise ProbeFailure("no port to connect to")
    _, writer = await open_stream(check, target.host, target.port, timeout_of(check))
    await close_stream(writer)
    return Success("connected")
