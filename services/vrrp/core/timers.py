"""VRRP timer arithmetic and the machine's table of deadlines.

The machine owns no clock: it stores absolute deadlines (in the caller's
monotonic seconds) and the shell sleeps until ``next_deadline()``.  The
formulas follow keepalived 2.2.7 (docs/keepalived.md#timers), which differs from
RFC 9568 for v2: the v2 skew is in whole seconds, not scaled by the interval.
"""

from __future__ import annotations

import enum

from services.vrrp.core.machine_types import OWNER_PRIORITY

CS = 100.0
"""Centiseconds per second: the v3 wire unit of the advert interval."""


class TimerKind(enum.Enum):
    """The independent deadlines an instance may have armed at once."""

    MASTER_DOWN = "master_down"
    ADVERT = "advert"
    GARP_MASTER_DELAYED = "garp_master_delayed"
    GARP_REFRESH = "garp_refresh"
    GARP_LOWER_PRIO = "garp_lower_prio"
    MAINTENANCE_END = "maintenance_end"


def skew_time(version: int, priority: int, master_adver_int_cs: int) -> float:
    """Skew in seconds: v2 (256-p)/256 s unscaled, v3 (256-p) x interval / 256."""
    if version == 2:
        return (256 - priority) / 256.0
    return (256 - priority) * master_adver_int_cs / 256.0 / CS


def master_down_interval(version: int, priority: int, master_adver_int_cs: int, adverts: int) -> float:
    """``down_timer_adverts`` x Master_Adver_Interval + skew, in seconds."""
    return adverts * master_adver_int_cs / CS + skew_time(version, priority, master_adver_int_cs)


def extra_if_due(now: float, period: float, vips: tuple[object, ...]) -> float | None:
    """When ``garp_extra_if`` is next due (None: off, or no interface to announce on).

    Not a deadline of its own: keepalived checks it when a MASTER's advert
    timer fires, so the machine compares it at each periodic advert.
    """
    return now + period if period > 0 and vips else None


def skew_priority(base: int, effective: int) -> int:
    """The priority the skew uses: 255 for an owner, else the effective one."""
    return OWNER_PRIORITY if base == OWNER_PRIORITY else effective


class Deadlines:
    """Absolute deadlines by kind; at most one of each kind is armed."""

    def __init__(self) -> None:
        self._at: dict[TimerKind, float] = {}

    def arm(self, kind: TimerKind, at: float) -> None:
        """Arm (or move) the deadline of ``kind``."""
        self._at[kind] = at

    def cancel(self, *kinds: TimerKind) -> None:
        """Disarm the given kinds; disarming an unarmed kind is fine."""
        for kind in kinds:
            self._at.pop(kind, None)

    def clear(self) -> None:
        """Disarm everything (FAULT, STOPPED)."""
        self._at.clear()

    def get(self, kind: TimerKind) -> float | None:
        """The deadline of ``kind``, or None when it is not armed."""
        return self._at.get(kind)

    def earliest(self) -> float | None:
        """The next instant something must happen, or None when idle."""
        return min(self._at.values(), default=None)

    def pop_due(self, now: float) -> TimerKind | None:
        """Disarm and return the earliest deadline due at ``now``, in time order.

        Ties are broken by the declaration order of ``TimerKind`` so replays are
        deterministic (a down timer fires before a GARP due at the same instant).
        """
        due = [(at, list(TimerKind).index(kind), kind) for kind, at in self._at.items() if at <= now]
        if not due:
            return None
        kind = min(due)[2]
        del self._at[kind]
        return kind
