"""What every tracker shares: its outcome, keepalived's weight rules, and a baseline.

Why a baseline: a restarted (or newly owning) checker replica must not publish
a default "up".  It starts each tracker from the last result in the state KV
(``Baseline``) and publishes only once a real observation exists, with
``changed`` true only if that observation differs from the baseline.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from shared.events import TrackerKind


@dataclass(frozen=True, slots=True)
class TrackerOutcome:
    """One real observation of a tracker, ready to become a ``TrackerResult``."""

    ok: bool
    detail: str
    value: int | None = None
    exit_code: int | None = None
    contribution: int | None = None
    """Override of ``contribution()`` (track_file: value * weight)."""
    faults: bool | None = None
    """Override of the weight-0 fault rule (track_file: a result below -253 faults too)."""


Report = Callable[[TrackerOutcome], None]
"""Called by a tracker on every real observation (the service decides what is a change)."""


@dataclass(slots=True)
class Counters:
    """Per-tracker counters exposed by the ``status`` endpoint."""

    runs: int = 0
    ok: int = 0
    failed: int = 0
    changes: int = 0
    skipped: int = 0
    last_latency_ms: float | None = None
    last_detail: str = ""
    last_at: float | None = None
    extra: dict[str, int] = field(default_factory=dict)

    def record(self, ok: bool, detail: str, latency_ms: float | None = None) -> None:
        self.runs += 1
        if ok:
            self.ok += 1
        else:
            self.failed += 1
        self.last_detail = detail
        self.last_latency_ms = latency_ms
        self.last_at = time.time()


class Tracker(Protocol):
    """The shape the service drives: one per configured tracker, owned by one replica."""

    name: str
    kind: TrackerKind
    weight: int
    reverse: bool
    counters: Counters

    async def run(self) -> None:
        """Observe forever, calling the report callback; cancelled when the replica loses it."""
        ...

    def state(self) -> dict[str, object]:
        """JSON-friendly detail for ``status``."""
        ...
