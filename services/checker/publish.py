"""From observations to events: change detection, heartbeats, and the KV baseline.

Why a baseline cache: the rule "a restart publishes nothing false" means a new
owner of a check (a restarted replica, or one taking over a dead replica's
share) must know what was last published before it says anything.  Every
replica reads the state KV's entries of its checks (``StateCache``: one
batched direct get, at start and again before it takes over units, since
the service users may not create the consumers a watch needs); a channel
starts from that entry and publishes only after a real observation, with
``changed`` true only when the observation differs.
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
from collections.abc import Callable, Iterable

import msgspec
from nats.aio.client import Client

from services.checker.trackers.base import TrackerOutcome
from shared.bus.direct_get import last_messages
from shared.events import (
    STATE_BUCKET,
    CheckerKind,
    Event,
    RealServerHealth,
    TrackerKind,
    TrackerResult,
    check_subject,
    decode,
    durable_transition,
    kv_key_for_subject,
    tracker_subject,
)
from shared.tracker_weights import contribution, faults

log = logging.getLogger("lifeline.checker.publish")

Sink = Callable[[Event], object]
"""Where events go: ``Publisher.publish`` in the service, a list's ``append`` in tests."""


class StateCache:
    """The node's last published tracker and real-server results, as read from the state bucket.

    ``refresh(nc, keys)`` reads the entries of ``keys`` (this node's tracker
    and check keys, from the config) in one batched direct get: at start,
    before this replica starts units (a takeover), and for ``status``.
    """

    def __init__(self, node: str) -> None:
        self.node = node
        self.entries: dict[str, Event] = {}
        self.ready = asyncio.Event()

    def tracker(self, name: str) -> TrackerResult | None:
        got = self.entries.get(kv_key_for_subject(tracker_subject(self.node, name)))
        return got if isinstance(got, TrackerResult) else None

    def real(self, virtual: str, real: str) -> RealServerHealth | None:
        got = self.entries.get(kv_key_for_subject(check_subject(self.node, virtual, real)))
        return got if isinstance(got, RealServerHealth) else None

    def tracker_key(self, name: str) -> str:
        return kv_key_for_subject(tracker_subject(self.node, name))

    def real_key(self, virtual: str, real: str) -> str:
        return kv_key_for_subject(check_subject(self.node, virtual, real))

    async def refresh(self, nc: Client, keys: Iterable[str], *, timeout: float = 5.0) -> None:
        """Read ``keys``'s entries now; a key with no entry (or a deleted one) is forgotten."""
        wanted = list(keys)
        prefix = f"$KV.{STATE_BUCKET}."
        stored = await last_messages(nc, f"KV_{STATE_BUCKET}", [prefix + k for k in wanted], timeout=timeout)
        for key in wanted:
            message = stored.get(prefix + key)
            if message is None or message.deleted:
                self.entries.pop(key, None)
                continue
            with contextlib.suppress(msgspec.ValidationError, msgspec.DecodeError):
                self.entries[key] = decode(message.data)
        self.ready.set()


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
    """One (virtual, real) server's ``RealServerHealth``: on change, and as a heartbeat.

    Durable (the ``health`` copy too): a change of the real server, and a
    checker's own transition (``checker_up``), which keepalived mails even when
    the server's state stays (unless ``no_checker_emails``).
    """

    def __init__(
        self,
        sink: Sink,
        virtual: str,
        real: str,
        *,
        interval: float,
        baseline: RealServerHealth | None = None,
        initial_up: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sink, self.virtual, self.real, self.interval = sink, virtual, real, interval
        self.last: RealServerHealth | None = baseline
        self.initial_up: bool | None = None if baseline is not None else initial_up
        """keepalived's starting state (up unless ``alpha``), told with the first transition only."""
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
        checker_up: bool | None = None,
    ) -> RealServerHealth | None:
        """A verdict on the real server; ``checker_up`` when this result moved one of its checkers."""
        prev = self.last
        changed = prev is None or prev.up != up or prev.weight != weight
        initial_up = self.initial_up if changed else None
        if changed:
            self.initial_up = None
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
            initial_up=initial_up,
            checker_up=checker_up,
        )
        self.last, self.observed = event, True
        if changed or checker_up is not None or self._heartbeat_due():
            return self._send(event)
        return None

    def heartbeat(self) -> RealServerHealth | None:
        if not self.observed or self.last is None or not self._heartbeat_due():
            return None
        beat = msgspec.structs.replace(self.last, changed=False, ts=0, initial_up=None, checker_up=None)
        return self._send(beat)

    def _heartbeat_due(self) -> bool:
        return self.published_at is None or self.clock() - self.published_at >= self.interval * 0.95

    def _send(self, event: RealServerHealth) -> RealServerHealth:
        self.published_at = self.clock()
        stamped = self.sink(event)
        if event.changed or event.checker_up is not None:  # the durable copy, same time (docs/bus.md)
            ts = stamped.ts if isinstance(stamped, RealServerHealth) else event.ts
            self.sink(msgspec.structs.replace(durable_transition(event), ts=ts))
        return event
