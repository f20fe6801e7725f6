"""Tracker bookkeeping: effective priority and tracker-caused FAULT.

keepalived 2.2.7 (reference section 2.12): effective priority = base + the sum
of active weight adjustments, clamped to [1, 254]; an owner (255) never moves.
A tracker with weight 0 puts the instance in FAULT when it fails; ``reverse``
turns the direction of the adjustment (and, for weight 0, which result is the
failure).  Scripts, processes and files start unknown: an unknown weighted
tracker adjusts nothing, an unknown unweighted one means FAULT, and
``init_fail`` makes the tracker count as failed from the start.  Interface
trackers start up: the shell knows carrier at start and reports down links.
BFD trackers start down, as keepalived's do (a session starts Down and
``bfd_up`` is false until the peer answers): a weight-0 one faults the
instance (unless ``reverse``), a negative weight counts at once, until the
bfd service publishes the session Up (docs/bfd.md).
"""

from __future__ import annotations

import enum

from services.vrrp.core.machine_types import OWNER_PRIORITY, TrackerSpec

MIN_PRIORITY = 1
MAX_PRIORITY = 254
FILE_FAULT_BELOW = -253
"""A track_file adjustment below this puts the instance in FAULT."""


class Status(enum.Enum):
    """What the instance currently believes about one tracker."""

    UNKNOWN = "unknown"
    OK = "ok"
    FAILED = "failed"


def effective_priority(base: int, adjustment: int) -> int:
    """Base plus adjustments, clamped to [1, 254]; 255 is never changed."""
    if base == OWNER_PRIORITY:
        return base
    return max(MIN_PRIORITY, min(MAX_PRIORITY, base + adjustment))


def _bool_adjustment(spec: TrackerSpec, status: Status) -> int:
    """A positive weight counts while OK, a negative one while failed; reverse negates."""
    if status is Status.UNKNOWN:
        return 0
    ok = status is Status.OK
    active = (spec.weight > 0 and ok) or (spec.weight < 0 and not ok)
    adjustment = spec.weight if active else 0
    return -adjustment if spec.reverse else adjustment


def _file_adjustment(spec: TrackerSpec, value: int | None) -> int:
    """track_file adds value x weight (negated with reverse)."""
    if value is None:
        return 0
    adjustment = value * spec.weight
    return -adjustment if spec.reverse else adjustment


class Tracking:
    """The last known result of every tracker of one instance."""

    def __init__(self, specs: tuple[TrackerSpec, ...]) -> None:
        self._specs = specs
        self._status = [self._initial(spec) for spec in specs]
        self._value: list[int | None] = [None for _ in specs]

    def carried_to(self, specs: tuple[TrackerSpec, ...]) -> Tracking:
        """New trackers (a reload), keeping what is known of every (name, kind) that stays."""
        known = {
            (s.name, s.kind): (st, v) for s, st, v in zip(self._specs, self._status, self._value, strict=True)
        }
        out = Tracking(specs)
        for index, spec in enumerate(specs):
            if (spec.name, spec.kind) in known:
                out._status[index], out._value[index] = known[(spec.name, spec.kind)]
        return out

    @staticmethod
    def _initial(spec: TrackerSpec) -> Status:
        """Interfaces start up; BFD sessions and init_fail start failed; everything else unknown."""
        if spec.kind == "interface":
            return Status.OK
        return Status.FAILED if spec.init_fail or spec.kind == "bfd" else Status.UNKNOWN

    def report(self, name: str, ok: bool, value: int | None) -> bool:
        """Record a checker result; False when no non-interface tracker has that name.

        For track_file the value is what counts (0 when absent); ``ok`` is kept
        only so the status reads sensibly in diagnostics.
        """
        found = False
        for index, spec in enumerate(self._specs):
            if spec.name != name or spec.kind == "interface":
                continue
            found = True
            self._status[index] = Status.OK if ok else Status.FAILED
            if spec.kind == "file":
                self._value[index] = 0 if value is None else value
        return found

    def link(self, interface: str, up: bool) -> bool:
        """Record carrier of a tracked interface; False when it is not tracked."""
        found = False
        for index, spec in enumerate(self._specs):
            if spec.kind == "interface" and spec.name == interface:
                self._status[index] = Status.OK if up else Status.FAILED
                found = True
        return found

    def adjustment(self) -> int:
        """Sum of the weighted trackers' current adjustments."""
        total = 0
        for index, spec in enumerate(self._specs):
            if spec.weight == 0:
                continue
            if spec.kind == "file":
                total += _file_adjustment(spec, self._value[index])
            else:
                total += _bool_adjustment(spec, self._status[index])
        return total

    def _faulted(self, index: int) -> bool:
        """Whether tracker ``index`` alone forces FAULT."""
        spec, status, value = self._specs[index], self._status[index], self._value[index]
        if spec.kind == "file":
            if spec.weight != 0:
                return _file_adjustment(spec, value) < FILE_FAULT_BELOW
            if value is None:
                return True
            return (value == 0) if spec.reverse else (value != 0)
        if spec.weight != 0:
            return False
        if status is Status.UNKNOWN:
            return True
        return (status is Status.OK) if spec.reverse else (status is Status.FAILED)

    def fault(self) -> str | None:
        """Name of the first tracker (in configuration order) that forces FAULT."""
        for index, spec in enumerate(self._specs):
            if self._faulted(index):
                return spec.name
        return None
