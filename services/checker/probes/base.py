"""What every probe returns and takes, and the one place failures become results.

A probe never raises for anything the network or the probed program does: a
refused connection, a timeout or a malformed reply is a failed ``ProbeResult``.
Each probe writes its happy path as a coroutine that raises ``ProbeFailure`` (or
lets an ``OSError``/``TimeoutError`` through); ``measure`` turns that into a
result and times it, so the eight probes share one error policy.
"""

from __future__ import annotations

import asyncio
import errno
import os
import re
import ssl
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field

from shared.config.model_lvs import Checker, SslConfig
from shared.scripts import ScriptRequest


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One probe's verdict.

    ``weight`` is only set by MISC_CHECK with ``misc_dynamic`` (the absolute
    weight ``exit - 2``) and by FILE_CHECK (the signed delta ``value * weight``
    to add to the configured weight); ``retry.RealServerState`` combines them.
    """

    ok: bool
    detail: str
    latency_ms: float
    weight: int | None = None


@dataclass(frozen=True, slots=True)
class SslFiles:
    """The root ``SSL`` block as a value: a ``Target`` is a dictionary key (same-target probes are shared)."""

    ca: str | None = None
    certificate: str | None = None
    key: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def of(cls, config: SslConfig) -> SslFiles:
        return cls(config.ca, config.certificate, config.key, config.password)


@dataclass(frozen=True, slots=True)
class Target:
    """Where a probe goes and what it needs from outside its checker block.

    ``Target.of`` takes the address from the checker (``finish`` filled
    ``connect_ip``/``connect_port`` from the real server); tests point a checker
    at a local server without rebuilding it.
    """

    host: str
    port: int | None
    track_file_path: str | None = None
    """FILE_CHECK: the ``file`` of the ``track_file`` block the checker names."""
    ssl: SslFiles | None = None
    """SSL_GET: the root ``SSL`` block (client certificate, ``ca``), if any."""
    script: ScriptRequest | None = None
    """MISC_CHECK: the script with ``global_defs``' policy (None: the default policy)."""

    @classmethod
    def of(
        cls,
        check: Checker,
        *,
        track_file_path: str | None = None,
        ssl: SslConfig | None = None,
        script: ScriptRequest | None = None,
    ) -> Target:
        host = str(check.connect_ip) if check.connect_ip is not None else ""
        files = SslFiles.of(ssl) if ssl is not None else None
        return cls(host, check.connect_port, track_file_path, files, script)


class ProbeFailure(Exception):
    """The probed service answered, but not what the checker wants."""


@dataclass(frozen=True, slots=True)
class Success:
    detail: str
    weight: int | None = None


def describe(exc: BaseException) -> str:
    """A short, stable failure text (``ECONNREFUSED``-style names log and compare well)."""
    if isinstance(exc, ProbeFailure):
        return str(exc)
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, asyncio.LimitOverrunError):
        return "reply line too long"
    if isinstance(exc, asyncio.IncompleteReadError | EOFError):
        return "connection closed early"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or exc}"
    if isinstance(exc, OSError) and exc.errno is not None and exc.errno in errno.errorcode:
        name = errno.errorcode.get(exc.errno, str(exc.errno))
        return f"{name}: {os.strerror(exc.errno)}"
    return f"{type(exc).__name__}: {exc}"


EXPECTED = (ProbeFailure, OSError, TimeoutError, EOFError, ValueError, asyncio.LimitOverrunError, re.error)


async def measure(body: Awaitable[Success]) -> ProbeResult:
    """Await a probe body and time it; expected failures become ``ok=False`` results."""
    start = time.perf_counter()
    try:
        outcome = await body
    except EXPECTED as exc:
        # IncompleteReadError is an EOFError, SSLError an OSError, UnicodeError a ValueError.
        return ProbeResult(False, describe(exc), _ms_since(start))
    return ProbeResult(True, outcome.detail, _ms_since(start), outcome.weight)


def _ms_since(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 3)


def timeout_of(check: Checker) -> float:
    """``connect_timeout`` as resolved by the config loader (5 s if a test left it unset)."""
    return check.connect_timeout if check.connect_timeout is not None else 5.0
