"""FILE_CHECK: read the integer in the tracked file (the ``track_file`` block's ``file``).

keepalived's rules for real servers: with weight 0 a non-zero value fails and 0
passes; otherwise ``value * weight`` (negated by ``reverse``) is a delta to add
to the real server's configured weight, and the check fails only when that
delta is below the lowest IPVS weight can absorb (``-2**31``).  An unreadable
file fails; text that is not a number reads as 0 (C ``strtol``).  keepalived
re-reads on inotify; we read on every probe, so a change is seen within delay_loop.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from services.checker.probes.base import ProbeFailure, ProbeResult, Success, Target, measure
from shared.config.model_lvs import Checker, FileCheck

LEADING_INT = re.compile(rb"\s*([+-]?\d+)")
WEIGHT_FLOOR = -(2**31)
MAX_READ = 4096


def parse_value(raw: bytes) -> int:
    match = LEADING_INT.match(raw)
    return int(match.group(1)) if match else 0


def verdict(check: FileCheck, value: int) -> Success:
    if check.weight == 0:
        if value != 0:
            raise ProbeFailure(f"value {value} (weight 0: non-zero is a failure)")
        return Success("value 0")
    delta = value * check.weight * (-1 if check.reverse else 1)
    if delta <= WEIGHT_FLOOR:
        raise ProbeFailure(f"value {value} gives weight delta {delta}")
    return Success(f"value {value}", weight=delta)


async def probe(check: Checker, target: Target) -> ProbeResult:
    return await measure(_read(check, target))


async def _read(check: Checker, target: Target) -> Success:
    if not isinstance(check, FileCheck):
        raise ProbeFailure(f"not a FILE_CHECK: {type(check).__name__}")
    if not target.track_file_path:
        raise ProbeFailure(f"track_file {check.track_file}: no file")
    path = Path(target.track_file_path)
    raw = await asyncio.to_thread(_head, path)
    return verdict(check, parse_value(raw))


def _head(path: Path) -> bytes:
    with path.open("rb") as fh:
        return fh.read(MAX_READ)
