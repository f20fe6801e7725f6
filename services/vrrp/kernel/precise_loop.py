"""An asyncio event loop whose timers fire within microseconds of their deadline.

Two kernel rules make a plain loop late, and both were measured on the
failover path (bench/failover.py):

* epoll's timeout is whole milliseconds, rounded up, so asyncio's default
  loop wakes up to 1 ms late.  ``select()`` takes microseconds; the vrrp
  service watches a handful of descriptors, so its O(n) scan costs nothing.
* ``select()`` gives the kernel *slack*: a sleep of ``t`` may end up to
  ``t / 1000`` late (``select_estimate_accuracy``; ``t / 200`` for a niced
  process), and never less late than the task's timer slack (50 µs by
  default).  A v2 backup sleeps 3.6 s towards its master-down deadline, so
  it took over 3.6 ms late — the whole gap to keepalived, which arms a
  timerfd.  :class:`PreciseSelector` therefore wakes early from a long sleep
  and sleeps the rest in short steps whose slack is negligible, and
  :func:`precise_loop` lowers the timer slack to 1 µs.

The cost is a few extra wake-ups per deadline (a 3.6 s sleep becomes about
three), against adverts that leave and take over on time.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import select
import selectors
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

PR_SET_TIMERSLACK = 29
"""prctl(2) option: the task's minimum timer slack, in nanoseconds."""

TIMER_SLACK_NS = 1_000
"""What we ask for: 1 µs, so short final sleeps end on time."""

EARLY_FRACTION = 1 / 100
"""Wake this fraction of a long sleep early: five times the worst slack (a niced process: t / 200)."""

SHORT_SLEEP_S = 0.002
"""A sleep this short is taken whole: its slack is at most 10 µs (or the task's timer slack)."""


def early_timeout(timeout: float | None) -> float | None:
    """The part of ``timeout`` to sleep now so that the slack cannot carry us past the deadline.

    Every step sleeps 99 % of what is left, so the last step is a short one;
    ``None`` (no deadline) and short timeouts are returned unchanged.
    """
    if timeout is None or timeout <= SHORT_SLEEP_S:
        return timeout
    return max(timeout - max(timeout * EARLY_FRACTION, SHORT_SLEEP_S / 2), SHORT_SLEEP_S / 2)


class PreciseSelector(selectors.SelectSelector):
    """``select()`` that returns early from long sleeps, and runs *direct readers* itself.

    Returning no events before the deadline is harmless: asyncio runs the
    timers that are due (none yet), computes the now-short remainder and
    calls us again.

    Direct readers are the VRRP receive sockets.  A backup wakes once per
    advert (thousands a second at scale), and asyncio's way — a key back to
    the loop, a handle queued, run in a context — cost about as much as the
    advert itself (a backup's CPU is measured against keepalived's in
    bench/RESULTS.md, "VRRP scale").  Their
    callbacks run here, as soon as ``select()`` says the socket is readable,
    before asyncio sees the other events; a callback's exception is logged as
    asyncio would log a reader's, and the loop goes on.
    """

    def __init__(self) -> None:
        super().__init__()
        self._direct: dict[int, Callable[[], object]] = {}

    def add_direct_reader(self, fd: int, callback: Callable[[], object]) -> None:
        """Call ``callback()`` whenever ``fd`` is readable (instead of ``loop.add_reader``)."""
        self._direct[fd] = callback

    def remove_direct_reader(self, fd: int) -> None:
        self._direct.pop(fd, None)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        timeout = early_timeout(timeout)
        if not self._direct:
            return super().select(timeout)
        base: Any = self  # SelectSelector's own fd sets and map (typeshed leaves private attributes out)
        try:
            r, w, _ = select.select([*base._readers, *self._direct], base._writers, [], timeout)
        except InterruptedError:
            return []
        ready: list[tuple[selectors.SelectorKey, int]] = []
        writable = set(w)
        keys = base._fd_to_key
        for fd in r:
            callback = self._direct.get(fd)
            if callback is not None:
                _run_direct(callback)
            elif (key := keys.get(fd)) is not None:
                events = selectors.EVENT_READ | (selectors.EVENT_WRITE if fd in writable else 0)
                writable.discard(fd)
                ready.append((key, events & key.events))
        for fd in writable:
            if (key := keys.get(fd)) is not None:
                ready.append((key, selectors.EVENT_WRITE & key.events))
        return ready


def direct_readers(loop: asyncio.AbstractEventLoop) -> PreciseSelector | None:
    """The selector that takes direct readers, when ``loop`` is a :func:`precise_loop`; else None.

    The one place that looks inside asyncio's loop (its ``_selector``), so
    callers fall back to ``loop.add_reader`` on any other loop (tests, tools).
    """
    selector = getattr(loop, "_selector", None)
    return selector if isinstance(selector, PreciseSelector) else None


def _run_direct(callback: Callable[[], object]) -> None:
    try:
        callback()
    except Exception:  # a reader's bug must not stop the loop (asyncio logs and goes on too)
        log.exception("direct reader %r failed", callback)


def set_timer_slack(ns: int = TIMER_SLACK_NS) -> bool:
    """Lower this thread's timer slack (inherited by threads created later); False where unsupported."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        return int(libc.prctl(PR_SET_TIMERSLACK, ctypes.c_ulong(ns), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def precise_loop() -> asyncio.AbstractEventLoop:
    """The vrrp service's event loop: microsecond timeouts, early wake-ups, 1 µs timer slack."""
    set_timer_slack()
    return asyncio.SelectorEventLoop(PreciseSelector())
