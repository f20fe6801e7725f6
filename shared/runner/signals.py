"""Signals held from a service's first instruction until its event loop takes them over.

Why: Python's default for SIGHUP is to die, and a service spends a while
starting (imports, reading keepalived.conf, opening sockets) before asyncio can
handle signals.  A ``systemctl reload`` or ``lifeline reload`` landing in that
window killed the new process.  ``hold()`` runs before anything else: TERM,
INT and HUP are only recorded, then ``take_over`` hands them to the loop and
replays what arrived meanwhile (a HUP becomes one reload after start-up, a
TERM a clean stop).  Supervisors may also start a service with these signals
blocked (``blocked_for_child``): the mask survives ``exec``, and ``hold``
unblocks them once its handlers are in place, so not even interpreter start-up
is a window.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # kept out of the import at start-up: nothing may delay hold()
    import asyncio

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
RELOAD_SIGNAL = signal.SIGHUP
HELD = (*STOP_SIGNALS, RELOAD_SIGNAL)

_pending: list[int] = []


def _record(signum: int, _frame: FrameType | None) -> None:
    _pending.append(signum)


def hold() -> None:
    """Record TERM/INT/HUP instead of acting on them; unblock them if a supervisor blocked them."""
    for sig in HELD:
        signal.signal(sig, _record)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, HELD)


def pending() -> list[int]:
    """Signals recorded so far and not yet handed to a loop (oldest first)."""
    return list(_pending)


def take_over(
    loop: asyncio.AbstractEventLoop, *, stop: Callable[[int], None], reload: Callable[[], None]
) -> None:
    """Give TERM/INT/HUP to ``loop`` and replay the ones recorded before (in arrival order)."""
    for stop_sig in STOP_SIGNALS:
        loop.add_signal_handler(stop_sig, stop, int(stop_sig))
    loop.add_signal_handler(RELOAD_SIGNAL, reload)
    recorded, _pending[:] = list(_pending), []
    for signum in recorded:
        if signum == RELOAD_SIGNAL:
            reload()
        else:
            stop(signum)


def release(loop: asyncio.AbstractEventLoop) -> None:
    """Back to recording (the loop is closing; a late HUP must still not kill the process)."""
    for sig in HELD:
        with contextlib.suppress(Exception):
            loop.remove_signal_handler(sig)
        signal.signal(sig, _record)


def restore() -> None:
    """Python's defaults again (the runner returned inside a longer-lived process, e.g. a test)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, RELOAD_SIGNAL):
        signal.signal(sig, signal.SIG_DFL)
    _pending.clear()


@contextlib.contextmanager
def blocked_for_child() -> Iterator[None]:
    """Block TERM/INT/HUP around a fork+exec so the child inherits them blocked (see the module doc)."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, HELD)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
