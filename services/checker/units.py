"""Tracker units: a tracker plus its event channel and heartbeat, startable and stoppable.

A unit is what sharding moves between replicas.  Starting one reads the KV
baseline (what was last published for it), so a replica that takes a tracker
over publishes only real changes; stopping one cancels the tracker (a running
script's process group is killed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from services.checker.publish import Sink, StateCache, TrackerChannel
from services.checker.trackers.base import Report, Tracker, TrackerOutcome
from shared.events import TrackerKind

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
    ) -> None:
        self.key, self.name, self.kind = key, name, kind
        self.weight, self.reverse, self.interval = weight, reverse, interval
        self.factory, self.sink, self.cache = factory, sink, cache
        self.tracker: Tracker | None = None
        self.channel: TrackerChannel | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def running(self) -> bool:
        return bool(self._tasks)

    def start(self) -> None:
        baseline = self.cache.tracker(self.name) if self.cache is not None else None
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
