"""One probe for identical checks: the scheduler keys ``SingleFlight`` by ``probe_key``.

Two virtual servers often share a real server, and so the same probe (same kind,
address, port, binding, timeout and kind-specific settings).  Their timing
(delay_loop, retry...) may still differ, which is why the key leaves it out:
each subscriber keeps its own ``retry.CheckerState``, and ``SingleFlight``
makes concurrent demands for one key share a single probe in flight, and may
hand a result younger than ``max_age`` to a subscriber that comes due just after.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from shared.config.model_lvs import Checker, RealServer, VirtualServer

R = TypeVar("R")


@dataclass(frozen=True, eq=False, slots=True)
class Subscriber:
    """One (virtual server, real server, checker) that wants the results of its probe."""

    virtual: VirtualServer
    real: RealServer
    checker: Checker
    index: int
    """Position of ``checker`` in ``real.checkers``: tells a real server's checkers apart."""


class SingleFlight(Generic[R]):
    """At most one run per key at a time; callers arriving meanwhile share its result.

    A caller that is cancelled does not cancel the shared run (others may wait
    on it).  Callers may ``join`` a key: a key with exactly one member runs ``fn``
    inline (nobody to share with).  With ``max_age > 0`` a result that finished at most that many
    seconds ago (by the injected ``clock``) is returned without running again.
    """

    def __init__(self, max_age: float = 0.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age = max_age
        self.clock = clock
        self._running: dict[Hashable, asyncio.Task[R]] = {}
        self._recent: dict[Hashable, tuple[float, R]] = {}
        self._members: dict[Hashable, int] = {}
        self.runs = 0
        """How many times ``fn`` actually ran: what tests and metrics look at."""

    def join(self, key: Hashable) -> None:
        """A caller that will ask for ``key`` from now on (see ``run``'s fast path)."""
        self._members[key] = self._members.get(key, 0) + 1

    def leave(self, key: Hashable) -> None:
        left = self._members.get(key, 0) - 1
        if left > 0:
            self._members[key] = left
        else:
            self._members.pop(key, None)

    async def run(self, key: Hashable, fn: Callable[[], Awaitable[R]]) -> R:
        if self._members.get(key) == 1 and self.max_age <= 0 and key not in self._running:
            # the only caller of this key: nothing to share, so no task, no shield (the cost of
            # those was a tenth of the CPU of 10,000 TCP checks); cancelling us cancels the probe
            self.runs += 1
            return await fn()
        recent = self._recent.get(key)
        if recent is not None and self.clock() - recent[0] <= self.max_age:
            return recent[1]
        task = self._running.get(key)
        if task is None:
            task = asyncio.ensure_future(fn())
            self.runs += 1
            self._running[key] = task
            task.add_done_callback(lambda t: self._finished(key, t))
        return await asyncio.shield(task)

    def _finished(self, key: Hashable, task: asyncio.Task[R]) -> None:
        if self._running.get(key) is task:
            del self._running[key]
        if not task.cancelled() and task.exception() is None and self.max_age > 0:
            self._recent[key] = (self.clock(), task.result())

    def forget(self, keys: Iterable[Hashable]) -> None:
        """Drop cached results (on reload, for keys that no longer exist)."""
        for key in keys:
            self._recent.pop(key, None)
