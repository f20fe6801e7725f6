"""Tracker results from the bus, kept while the bus is quiet.

Why the vrrp service keeps its own copy: the checker publishes results on
``lifeline.<node>.track.<name>`` (on change and as a heartbeat), but vrrp must
go on electing with the checker dead or NATS stopped (docs/vrrp.md).  So the last
result of every tracker stays in force until a new one arrives; a tracker that
has been silent for longer than its stale interval is *shown* as stale in
``status``, never treated as failed (failing it would move mastership because
of a bus outage).

The book is pure bookkeeping with an injected clock; the service wires it to a
NATS subscription and to the KV bucket (initial values at start).
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from services.vrrp.core.machine_events import TrackerChanged
from shared.events import TrackerResult


class TrackerView(msgspec.Struct, kw_only=True):
    """What ``status`` shows about one tracker."""

    name: str
    kind: str
    known: bool
    ok: bool | None = None
    value: int | None = None
    age: float | None = None
    stale: bool = False


class _Entry(msgspec.Struct, kw_only=True):
    result: TrackerResult
    at: float


class TrackerBook:
    """Last result per tracker name, when it arrived, and who listens."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._last: dict[str, _Entry] = {}

    def update(self, result: TrackerResult, *, initial: bool = False) -> TrackerChanged | None:
        """Record a result; returns the machine input when the result differs from the last one.

        ``initial`` marks a value read from the KV bucket at start: it never
        overrides a result already received live (the KV copy may be older).
        """
        entry = self._last.get(result.tracker)
        if initial and entry is not None:
            return None
        self._last[result.tracker] = _Entry(result=result, at=self._clock())
        if entry is not None and (entry.result.ok, entry.result.value) == (result.ok, result.value):
            return None
        return TrackerChanged(name=result.tracker, ok=result.ok, value=result.value)

    def current(self, name: str) -> TrackerChanged | None:
        """The machine input for the last known result of ``name`` (for a newly started instance)."""
        entry = self._last.get(name)
        if entry is None:
            return None
        return TrackerChanged(name=name, ok=entry.result.ok, value=entry.result.value)

    def view(self, name: str, kind: str, stale_after: float | None) -> TrackerView:
        """Status of one tracker; stale when silent longer than ``stale_after`` seconds."""
        entry = self._last.get(name)
        if entry is None:
            return TrackerView(name=name, kind=kind, known=False)
        age = self._clock() - entry.at
        return TrackerView(
            name=name,
            kind=kind,
            known=True,
            ok=entry.result.ok,
            value=entry.result.value,
            age=round(age, 3),
            stale=stale_after is not None and age > stale_after,
        )
