"""Tracker units: a tracker plus its event channel and heartbeat, startable and stoppable.

A unit is what sharding moves between replicas.  Starting one reads the KV
baseline (what was last published for it), so a replica that takes a tracker
over publishes only real changes; stopping one cancels the tracker (a running
script's process group is killed).

A reload keeps a unit whose ``fingerprint`` (what it runs, ``core/reload_diff.py``)
did not change, and replaces one whose did: the replacement ``inherit``s the
old unit's last result as its baseline, so a changed script starts from where
the old one stood (its counter at either end) rather than from ``rise - 1``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from services.checker.publish import Sink, StateCache, TrackerChannel
from services.checker.trackers.base import Report, Tracker, TrackerOutcome
from shared.events import TrackerKind, TrackerResult

log = logging.getLogger("lifeline.checker.units")

TrackerFactory = Callable[[Report, bool | None], Tracker]
"""Builds the tracker given its report callback and the baseline ``ok`` (None: no baseline)."""


class TrackerUnit:
    def __init__(
        self,
        key: str,
        *,
        name: str,
        kind: TrackerKind,
        weight: int,
        reverse: bool,
        interval: float,
        factory: TrackerFactory,
        sink: Sink,
        cache: StateCache | None,
        fingerprint: object = None,
    ) -> None:
        self.key, self.name, self.kind = key, name, kind
        self.weight, self.reverse, self.interval = weight, reverse, interval
        self.factory, self.sink, self.cache = factory, sink, cache
        self.fingerprint = fingerprint
        self.inherit: TrackerResult | None = None
        """Baseline for the next start instead of the KV's (set by a reload that replaces a unit)."""
        self.tracker: Tracker | None = None
        self.channel: TrackerChannel | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def running(self) -> bool:
        return bool(self._tasks)

    @property
    def last(self) -> TrackerResult | None:
        """What this unit last published (or started from) while it ran here."""
        return self.channel.last if self.channel is not None and self._tasks else None

    def start(self) -> None:
        baseline, self.inherit = self.inherit, None
        if baseline is None and self.cache is not None:
            baseline = self.cache.tracker(self.name)
        self.channel = TrackerChannel(
            self.sink,
            self.name,
            self.kind,
            self.weight,
            self.reverse,
            interval=self.interval,
            baseline=baseline,
        )
        self.tracker = self.factory(self._report, None if baseline is None else baseline.ok)
        self._tasks = [
            asyncio.create_task(self._guard(self.tracker.run()), name=f"tracker {self.name}"),
            asyncio.create_task(self._heartbeats(), name=f"heartbeat {self.name}"),
        ]

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _report(self, outcome: TrackerOutcome) -> None:
        if self.channel is not None and self._tasks:
            self.channel.observe(outcome)

    async def _guard(self, body: Coroutine[Any, Any, None]) -> None:
        try:
            await body
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("tracker %s crashed", self.name)

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.interval / 4)
            if self.channel is not None:
                self.channel.heartbeat()

    def status(self) -> dict[str, object]:
        last = self.channel.last if self.channel is not None else None
        c = self.tracker.counters if self.tracker is not None else None
        return {
            "tracker": self.name,
            "kind": self.kind.value,
            "state": "idle" if last is None else ("ok" if last.ok else "failed"),
            "last_result": None
            if last is None
            else {
                "ok": last.ok,
                "detail": last.detail,
                "contribution": last.contribution,
                "faults": last.faults,
            },
            "last_latency_ms": None if c is None else c.last_latency_ms,
            "counters": None
            if c is None
            else {
                "runs": c.runs,
                "ok": c.ok,
                "failed": c.failed,
                "changes": c.changes,
                "skipped": c.skipped,
                **c.extra,
            },
            "detail": {} if self.tracker is None else self.tracker.state(),
        }
