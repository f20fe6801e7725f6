"""keepalived's up/down rules as a sans-IO state machine (no clock, no IO, no asyncio).

One ``CheckerState`` per (virtual server, real server, checker).  The caller
owns time: it passes ``now`` in and gets back when to probe next, so tests
drive it with a fake clock and the scheduler with ``loop.time()``.

Rules (docs/keepalived.md#health-checks):

* one success marks the checker up;
* an up checker is marked down after ``retry + 1`` consecutive failures; the
  retries come ``delay_before_retry`` apart, every other probe ``delay_loop``
  after the previous result (a down checker is not retried, it waits delay_loop);
* ``alpha``: start down, so the first success brings the server in; without it
  start up, and the first failure that exhausts the retries takes it out;
* ``warmup``: the first probe waits a random time in ``[0, warmup]`` (0: at once);
* HTTP_GET/SSL_GET without ``fast_recovery`` (``confirm_recovery``): a checker
  that failures took down comes back only after a second passing probe,
  ``delay_loop`` after the first.  keepalived 2.2.7 checks one url per
  ``delay_loop`` and, once the failed url passes again, goes through every url
  once more before it calls the server up; ``fast_recovery`` checks those urls
  at once instead (observed on 2.2.7: two urls, ``delay_loop`` 2, recovery 4 s
  later without it, at once with it).  Here every probe checks every url, so
  the second full pass is one more probe.

``RealServerState`` aggregates the checkers of one real server: it is alive iff
no checker has failed, and it combines MISC/FILE weights into one IPVS weight.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass

from shared.config.model_lvs import (
    DEFAULT_DELAY_BEFORE_RETRY,
    DEFAULT_DELAY_LOOP,
    DEFAULT_RETRY,
    Checker,
    HttpGetCheck,
)

IPVS_WEIGHT_MAX = 2**31 - 1

Uniform = Callable[[float, float], float]
"""``random.uniform``'s signature: the injected source of the warmup delay."""


@dataclass(frozen=True, slots=True)
class Timing:
    """The timing fields of one checker, as the config loader resolved them."""

    retry: int = DEFAULT_RETRY
    delay_loop: float = DEFAULT_DELAY_LOOP
    delay_before_retry: float = DEFAULT_DELAY_BEFORE_RETRY
    warmup: float = 0.0
    alpha: bool = False
    confirm_recovery: bool = False
    """HTTP_GET/SSL_GET without ``fast_recovery``: a second passing probe before up again."""

    @classmethod
    def of(cls, check: Checker) -> Timing:
        delay_loop = check.delay_loop if check.delay_loop is not None else DEFAULT_DELAY_LOOP
        return cls(
            retry=check.retry if check.retry is not None else DEFAULT_RETRY,
            delay_loop=delay_loop,
            delay_before_retry=(
                check.delay_before_retry
                if check.delay_before_retry is not None
                else DEFAULT_DELAY_BEFORE_RETRY
            ),
            warmup=check.warmup if check.warmup is not None else delay_loop,
            alpha=bool(check.alpha),
            confirm_recovery=isinstance(check, HttpGetCheck) and not check.fast_recovery,
        )


@dataclass(frozen=True, slots=True)
class Step:
    """What one result did: the new state, whether it changed, and when to probe next."""

    up: bool
    changed: bool
    next_at: float
    failures: int
    """Consecutive failures so far (0 after a success)."""
    retrying: bool = False
    """This failure was absorbed: the next probe is a retry, ``delay_before_retry`` away."""


class CheckerState:
    """The up/down state and next due time of one checker."""

    def __init__(self, timing: Timing, now: float, uniform: Uniform = random.uniform) -> None:
        self.timing = timing
        self.up = not timing.alpha
        self.failures = 0
        self.failed_down = False
        """Down because probes failed (not because of ``alpha``): what ``confirm_recovery`` is about."""
        self.recovering = False
        self.next_at = now + (uniform(0.0, timing.warmup) if timing.warmup > 0 else 0.0)

    def due(self, now: float) -> bool:
        return now >= self.next_at

    def on_result(self, now: float, ok: bool) -> Step:
        """Apply one probe result that arrived at ``now``."""
        t = self.timing
        if ok:
            if not self.up and self.failed_down and t.confirm_recovery and not self.recovering:
                self.recovering, self.failures, self.next_at = True, 0, now + t.delay_loop
                return Step(False, False, self.next_at, 0)
            changed = not self.up
            self.up, self.failures, self.next_at = True, 0, now + t.delay_loop
            self.failed_down = self.recovering = False
            return Step(True, changed, self.next_at, 0)
        self.failures += 1
        self.recovering = False
        if self.up and self.failures <= t.retry:
            self.next_at = now + t.delay_before_retry
            return Step(True, False, self.next_at, self.failures, retrying=True)
        changed = self.up
        self.up, self.failed_down, self.next_at = False, True, now + t.delay_loop
        return Step(False, changed, self.next_at, self.failures)


class RealServerState:
    """Alive iff no checker has failed; the effective weight from MISC/FILE results.

    Checker ids are whatever the caller uses to tell a real server's checkers
    apart (an index is enough).  A real server with no checkers is always alive.
    """

    def __init__(self, checkers: Iterable[tuple[Hashable, bool]]) -> None:
        """``checkers``: (id, initially up) pairs; ``initially up`` is ``not alpha``."""
        self._failed = {cid for cid, up in checkers if not up}
        self._absolute: dict[Hashable, int] = {}
        self._delta: dict[Hashable, int] = {}

    @property
    def alive(self) -> bool:
        return not self._failed

    @property
    def failed(self) -> frozenset[Hashable]:
        return frozenset(self._failed)

    def update(self, checker: Hashable, up: bool) -> bool | None:
        """Record a checker's state; return the new ``alive`` if it changed, else None."""
        before = self.alive
        if up:
            self._failed.discard(checker)
        else:
            self._failed.add(checker)
        return self.alive if self.alive != before else None

    def set_weight(self, checker: Hashable, weight: int | None, *, absolute: bool) -> None:
        """Record a probe's weight: MISC_CHECK ``misc_dynamic`` is absolute, FILE_CHECK a delta.

        ``None`` keeps the previous value (MISC exit 0 leaves the weight as it was).
        """
        if weight is not None:
            (self._absolute if absolute else self._delta)[checker] = weight

    def effective_weight(self, configured: int) -> int:
        """keepalived's sum: each dynamic MISC adds ``(exit - 2) - configured``, each FILE its delta."""
        total = configured
        total += sum(w - configured for w in self._absolute.values())
        total += sum(self._delta.values())
        return max(0, min(total, IPVS_WEIGHT_MAX))
