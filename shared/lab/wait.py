"""Waiting for a condition: one helper for tests, benchmarks and the demo, and its asyncio twin.

Why one: the lab waits for things that have no event to await (a VIP in
``ip addr``, a line in a log, a pid under a supervisor), so it polls.  Each
poll loop used to carry its own deadline arithmetic, step and failure: some
returned False, some raised, some failed the test with a message and some
without.  This is the one loop, after FRR topotests' ``run_and_expect(func,
expected, count, wait)``: call a probe until it gives what is expected, and
when time is up say what was awaited and what the probe returned last.

The probe is called first, so a condition that already holds costs no sleep;
the returned elapsed time lets a test print or bound how long it took.  An
exception from the probe is not retried: it propagates at once (a daemon
that exited is a reason to stop waiting, not to keep polling).

This module imports nothing but the standard library and the lab's error
type: the in-VM tests use it under emulation, where every import costs seconds.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable

from shared.lab.errors import LabError

STEP = 0.02
"""Default seconds between two probes: fine enough for protocol timings, cheap enough for ``ip``."""

TRUTHY: object = object()
"""Default ``expect``: any truthy probe value ends the wait."""


class LabTimeout(LabError):
    """A :func:`wait_until` ran out of time; names what was awaited and the probe's last value."""

    def __init__(self, what: str, timeout: float = 0.0, last: object = False, detail: str = "") -> None:
        self.what = what
        self.timeout = timeout
        self.last = last
        message = f"timed out after {timeout:g} s waiting for {what}"
        if not isinstance(last, bool):  # a predicate's False says nothing; a list of holders does
            message += f" (last: {last!r})"
        if detail:
            message += f"\n{detail}"
        super().__init__(message)


def _met(value: object, expect: object) -> bool:
    return bool(value) if expect is TRUTHY else value == expect


def wait_until(
    what: str,
    probe: Callable[[], object],
    timeout: float,
    step: float = STEP,
    *,
    expect: object = TRUTHY,
    explain: Callable[[], str] | None = None,
) -> float:
    """Call ``probe`` every ``step`` s until its value is ``expect`` (or truthy); return the seconds it took.

    On timeout raise :class:`LabTimeout` with ``what`` ("a to hold the VIP"),
    the probe's last value and, if given, ``explain()`` (daemon logs, say).
    """
    start = time.monotonic()
    while True:
        value = probe()
        elapsed = time.monotonic() - start
        if _met(value, expect):
            return elapsed
        if elapsed >= timeout:
            raise LabTimeout(what, timeout, value, explain() if explain is not None else "")
        time.sleep(step)


async def await_until(
    what: str,
    probe: Callable[[], object],
    timeout: float,
    step: float = STEP,
    *,
    expect: object = TRUTHY,
    explain: Callable[[], str] | None = None,
) -> float:
    """:func:`wait_until` for asyncio code: sleeps without blocking the loop; ``probe`` may be async."""
    start = time.monotonic()
    while True:
        value = probe()
        if inspect.isawaitable(value):
            value = await value
        elapsed = time.monotonic() - start
        if _met(value, expect):
            return elapsed
        if elapsed >= timeout:
            raise LabTimeout(what, timeout, value, explain() if explain is not None else "")
        await asyncio.sleep(step)
