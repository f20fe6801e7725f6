"""From observations to events: change detection, heartbeats, and the KV baseline.

Why a baseline cache: the rule "a restart publishes nothing false" means a new
owner of a check (a restarted replica, or one taking over a dead replica's
share) must know what was last published before it says anything.  Every
replica watches the state KV for its node's tracker and real-server keys
(``StateCache``); a channel starts from that entry and publishes only after a
real observation, with ``changed`` true only when the observation differs.
Heartbeats re-send the last real result (``changed`` false) each interval.

Why a real-server transition goes out twice: the ``check`` subject is core
NATS (heartbeats would flood a stream), which lvs and the KV baseline want,
but a notifier that is down or busy must not miss an up/down.  So every
transition is also published as ``durable_transition(event)`` on the
``health`` subject, which the event stream captures (docs/bus.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import msgspec
from nats.js.kv import KeyValue

from services.checker.trackers.base import TrackerOutcome, contribution, faults
from shared.events import (
    CheckerKind,
    Event,
    RealServerHealth,
    TrackerKind,
    TrackerResult,
    check_subject,
    decode,
    durable_transition,
    encode_token,
    kv_key_for_subject,
    tracker_subject,
)

log = logging.getLogger("lifeline.checker.publish")

Sink = Callable[[Event], object]
"""Where events go: ``Publisher.publish`` in the service, a list's ``append`` in tests."""


class StateCache:
    """The node's last published tracker and real-server results, kept current by KV watches."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.entries: dict[str, Event] = {}
        self.ready = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def tracker(self, name: str) -> TrackerResult | None:
        got = self.entries.get(kv_key_for_subject(tracker_subject(self.node, name)))
        return got if isinstance(got, TrackerResult) else None

    def real(self, virtual: str, real: str) -> RealServerHealth | None:
        got = self.entries.get(kv_key_for_subject(check_subject(self.node, virtual, real)))
        return got if isinstance(got, RealServerHealth) else None

    async def start(self, kv: KeyValue) -> None:
        """Watch both key families; returns once the initial snapshot is loaded."""
        token = encode_token(self.node)
        loaded = [asyncio.Event(), asyncio.Event()]
        for pattern, done in zip((f"{token}.track.*", f"{token}.check.*.*"), loaded, strict=True):
            watcher = await kv.watch(pattern)
            self._tasks.append(asyncio.create_task(self._follow(watcher, done)))
        await asyncio.gather(*(d.wait() for d in loaded))
        self.ready.set()

    async def _follow(self, watcher: KeyValue.KeyWatcher, done: asyncio.Event) -> None:
        while True:
            try:
                entry = await watcher.updates(timeout=3600)  # type: ignore[no-untyped-call]
            except TimeoutError:
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("state KV watch: %s", exc)
                await asyncio.sleep(0.5)
                continue
            if entry is None:
                done.set()
                continue
            if entry.value is None or entry.operation is not None:
                self.entries.pop(entry.key, None)
                continue
            with contextlib.suppress(msgspec.ValidationError, msgspec.DecodeError):
                self.entries[entry.key] = decode(entry.value)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()


class TrackerChannel:
    """One tracker's events: publish on change, heartbeat otherwise, never before a real result."""

    def __init__(
        self,
        sink: Sink,
        name: str,
        kind: TrackerKind,
        weight: int,
        reverse: bool,
        *,
        interval: float,
        baseline: TrackerResult | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sink, self.name, self.kind = sink, name, kind
        self.weight, self.reverse, self.interval = weight, reverse, interval
        self.last: TrackerResult | None = baseline
        self.observed = False
        self.published_at: float | None = None
        self.clock = clock

    def observe(self, outcome: TrackerOutcome) -> TrackerResult | None:
        """A real observation: publish it if it changes anything or a heartbeat is due."""
        contrib = (
            outcome.contribution
            if outcome.contribution is not None
            else contribution(self.weight, self.reverse, outcome.ok)
        )
        fault = (
            outcome.faults if outcome.faults is not None else faults(self.weight, self.reverse, outcome.ok)
        )
        prev = self.last
        changed = prev is None or (prev.ok, prev.contribution, prev.faults, prev.value) != (
            outcome.ok,
            contrib,
            fault,
            outcome.value,
        )
        event = TrackerResult(
            tracker=self.name,
            kind=self.kind,
            ok=outcome.ok,
            weight=self.weight,
            contribution=contrib,
            faults=fault,
            value=outcome.value,
            exit_code=outcome.exit_code,
            changed=changed,
            detail=outcome.detail,
        )
        self.last, self.observed = event, True
        if changed or self._heartbeat_due():
            return self._send(event)
        return None

    def heartbeat(self) -> TrackerResult | None:
        """Re-send the last real result if nothing went out for an interval."""
        if not self.observed or self.last is None or not self._heartbeat_due():
            return None
        return self._send(msgspec.structs.replace(self.last, changed=False, ts=0))

    def _heartbeat_due(self) -> bool:
        return self.published_at is None or self.clock() - self.published_at >= self.interval * 0.95

    def _send(self, event: TrackerResult) -> TrackerResult:
        self.published_at = self.clock()
        self.sink(event)
        return event


class RealServerChannel:
    """One (virtual, real) server's ``RealServerHealth``: on change, and as a heartbeat."""

    def __init__(
        self,
        sink: Sink,
        virtual: str,
        real: str,
        *,
        interval: float,
        baseline: RealServerHealth | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sink, self.virtual, self.real, self.interval = sink, virtual, real, interval
        self.last: RealServerHealth | None = baseline
        self.observed = False
        self.published_at: float | None = None
        self.clock = clock

    def observe(
        self,
        *,
        up: bool,
        checker: CheckerKind,
        detail: str,
        latency_ms: float | None,
        weight: int | None,
        failures: int,
    ) -> RealServerHealth | None:
        prev = self.last
        changed = prev is None or prev.up != up or prev.weight != weight
        event = RealServerHealth(
            virtual=self.virtual,
            real=self.real,
            up=up,
            checker=checker,
            detail=detail,
            latency_ms=latency_ms,
            weight=weight,
            consecutive_failures=failures,
            changed=changed,
        )
        self.last, self.observed = event, True
        if changed or self._heartbeat_due():
            return self._send(event)
        return None

    def heartbeat(self) -> RealServerHealth | None:
        if not self.observed or self.last is None or not self._heartbeat_due():
            return None
        return self._send(msgspec.structs.replace(self.last, changed=False, ts=0))

    def _heartbeat_due(self) -> bool:
        return self.published_at is None or self.clock() - self.published_at >= self.interval * 0.95

    def _send(self, event: RealServerHealth) -> RealServerHealth:
        self.published_at = self.clock()
        stamped = self.sink(event)
        if event.changed:  # the durable copy, same observation time (docs/bus.md)
            ts = stamped.ts if isinstance(stamped, RealServerHealth) else event.ts
            self.sink(msgspec.structs.replace(durable_transition(event), ts=ts))
        return event
