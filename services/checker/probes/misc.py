"""MISC_CHECK: run ``misc_path`` and judge its exit status.

Exit 0 passes, 1 fails; 2..255 fail too unless ``misc_dynamic``, which makes
them pass with weight ``exit - 2``.  Death by a signal fails.  The script runs
in a session (and so a process group) of its own without a shell of ours, so
on ``misc_timeout`` the whole group gets SIGTERM and, if still alive after
``KILL_GRACE`` seconds, SIGKILL; a timed-out script fails.  The check is an
asyncio subprocess: no thread and no blocking wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

from services.checker.parent_death import die_with_parent
from services.checker.probes.base import ProbeFailure, ProbeResult, Success, Target, measure
from shared.config.model_lvs import Checker, MiscCheck

KILL_GRACE = 2.0
"""Seconds between SIGTERM and SIGKILL, keepalived's script kill delay."""


async def probe(check: Checker, target: Target) -> ProbeResult:
    return await measure(_run(check, KILL_GRACE))


def verdict(check: MiscCheck, status: int) -> Success:
    """The exit-status rules; ``status`` as asyncio reports it (negative: killed by that signal)."""
    if status == 0:
        return Success("exit 0")
    if status < 0:
        raise ProbeFailure(f"killed by signal {-status}")
    if status >= 2 and check.misc_dynamic:
        return Success(f"exit {status}", weight=status - 2)
    raise ProbeFailure(f"exit {status}")


def timeout_for(check: MiscCheck) -> float:
    if check.misc_timeout is not None:
        return check.misc_timeout
    return check.delay_loop if check.delay_loop is not None else 60.0


async def _run(check: Checker, grace: float) -> Success:
    if not isinstance(check, MiscCheck) or check.misc_path is None:
        raise ProbeFailure("MISC_CHECK without misc_path")
    proc = await asyncio.create_subprocess_exec(
        *check.misc_path.argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=die_with_parent,
        user=check.user,
        group=check.group,
    )
    try:
        async with asyncio.timeout(timeout_for(check)):
            status = await proc.wait()
    except TimeoutError:
        await terminate_group(proc, grace)
        raise ProbeFailure(f"timed out after {timeout_for(check):g}s") from None
    finally:
        if proc.returncode is None:  # cancelled: never leave the script behind
            await terminate_group(proc, grace)
    return verdict(check, status)


async def terminate_group(proc: asyncio.subprocess.Process, grace: float) -> None:
    """SIGTERM the script's process group, SIGKILL it after ``grace`` seconds, reap the script."""
    _signal_group(proc.pid, signal.SIGTERM)
    try:
        async with asyncio.timeout(grace):
            await proc.wait()
    except TimeoutError:
        pass
    _signal_group(proc.pid, signal.SIGKILL)  # children may outlive a script that obeyed SIGTERM
    with contextlib.suppress(asyncio.CancelledError):
        await proc.wait()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
