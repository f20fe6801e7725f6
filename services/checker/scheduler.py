"""The real-server check loop: probes on keepalived's timing, results per real server.

Layering: ``retry.CheckerState`` decides up/down and when to probe next (sans-IO),
``probes.run_probe`` does the IO, ``dedupe.SingleFlight`` makes identical
probes due at the same moment share one connection, and ``publish.RealServerChannel``
turns states into events.  One asyncio task per checker keeps it simple; a
sleeping task costs ~1 KiB and no CPU, so 10,000 real servers are fine.

The unit of sharding is a real server *address* (``RealServerUnit``): every
virtual server's checks of ``10.0.0.1:80`` land on the same replica, so the
same-target dedupe still works and each ``RealServerState`` sees all its checkers.

Never a default "up": a real server's event goes out only once its state is
confirmed by probes (every checker has succeeded once, or one has gone down);
until then keepalived's initial state (up unless ``alpha``) is internal only.
A new owner starts the checkers from the last published state in the KV and
probes within a second instead of waiting for the warmup.

A reload changes a unit entry by entry (``add``, ``remove``, ``replace``): the
other (virtual, real) pairs of the address keep their tasks and states.  A
replaced entry starts from what the old one last published, like a new owner.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import defaultdict
from dataclasses import dataclass, field

from services.checker.core.reload_diff import fingerprint_of_checks
from services.checker.core.retry import CheckerState, RealServerState, Timing
from services.checker.dedupe import SingleFlight, Subscriber
from services.checker.probes import ProbeResult, Target, kind_of, run_probe
from services.checker.probes.misc import script_request as misc_request
from services.checker.publish import RealServerChannel, Sink, StateCache
from shared.config.lvs_keys import rs_key, vs_key
from shared.config.model import Config
from shared.config.model_lvs import FileCheck, MiscCheck
from shared.config.script import script_policy
from shared.events import (
    CheckerKind,
    RealServerHealth,
)
from shared.scripts.runner import announce

log = logging.getLogger("lifeline.checker.scheduler")

TAKEOVER_JITTER = 1.0
"""A new owner with a KV baseline probes within this many seconds (not after the warmup)."""


@dataclass(eq=False)
class CheckSlot:
    """One checker of one real server of one virtual server, with its state and last result."""

    sub: Subscriber
    target: Target
    state: CheckerState | None = None
    confirmed: bool = False
    last: ProbeResult | None = None
    probes: int = 0
    failures_total: int = 0
    transitions: int = 0

    @property
    def kind(self) -> str:
        return kind_of(self.sub.checker)


@dataclass(eq=False)
class RealServerEntry:
    """One (virtual, real) pair: its checkers, aggregate state and event channel."""

    virtual: str
    real: str
    configured_weight: int
    slots: list[CheckSlot] = field(default_factory=list)
    rstate: RealServerState | None = None
    channel: RealServerChannel | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def fingerprint(self) -> object:
        """What a reload compares (``core/reload_diff.py``): weight and every (checker, target)."""
        return fingerprint_of_checks(self.configured_weight, ((s.sub.checker, s.target) for s in self.slots))


def build_entries(config: Config) -> dict[str, list[RealServerEntry]]:
    """Shard key (``rs:<real>``) → the (virtual, real) entries checking that address."""
    by_pair: dict[tuple[str, str], RealServerEntry] = {}
    ssl = config.lvs.ssl
    policy = script_policy(config.global_defs)
    for vs, rs, check in config.lvs.checks():
        if kind_of(check) == "BFD_CHECK":
            continue
        pair = (vs_key(vs), rs_key(vs, rs))
        entry = by_pair.get(pair)
        if entry is None:
            weight = rs.weight if rs.weight is not None else vs.weight
            entry = by_pair[pair] = RealServerEntry(pair[0], pair[1], weight)
        index = next(i for i, c in enumerate(rs.checkers) if c is check)
        path = None
        if isinstance(check, FileCheck) and check.track_file is not None:
            tf = config.vrrp.track_files.get(check.track_file)
            path = tf.file if tf is not None else None
        script = misc_request(check, policy) if isinstance(check, MiscCheck) else None
        if script is not None:
            announce(script, log)
        target = Target.of(check, track_file_path=path, ssl=ssl, script=script)
        entry.slots.append(CheckSlot(Subscriber(vs, rs, check, index), target))
    shards: dict[str, list[RealServerEntry]] = defaultdict(list)
    for entry in by_pair.values():
        shards[f"rs:{entry.real}"].append(entry)
    return dict(shards)


class RealServerUnit:
    """The checks of one real-server address, run while this replica owns them."""

    def __init__(
        self,
        key: str,
        entries: list[RealServerEntry],
        sink: Sink,
        cache: StateCache | None,
        flight: SingleFlight[ProbeResult],
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.key = key
        self.entries = entries
        self.sink = sink
        self.cache = cache
        self.flight = flight
        self.rng = rng or random.Random()
        self._running = False

    @property
    def running(self) -> bool:
        return self._running

    def start(self) -> None:
        self._running = True
        for entry in self.entries:
            self._start_entry(entry)

    async def stop(self) -> None:
        self._running = False
        await _cancel([t for entry in self.entries for t in _take_tasks(entry)])

    def add(self, entry: RealServerEntry) -> None:
        """A pair the reload added: it runs at once if this replica runs the unit."""
        self.entries.append(entry)
        if self._running:
            self._start_entry(entry)

    async def remove(self, entry: RealServerEntry) -> None:
        """Stop one pair (if it runs here) and forget it."""
        self.entries.remove(entry)
        await _cancel(_take_tasks(entry))

    async def replace(self, old: RealServerEntry, new: RealServerEntry) -> None:
        """A pair whose checks changed: the new one starts from the old one's last word, not from zero.

        The old channel's last event is fresher than the KV (it may still be
        on its way there), so the new checkers agree with what was published.
        """
        tasks = _take_tasks(old)
        await _cancel(tasks)
        inherit = old.channel.last if tasks and old.channel is not None else None
        self.entries[self.entries.index(old)] = new
        if self._running:
            self._start_entry(new, inherit)

    def _start_entry(self, entry: RealServerEntry, inherit: RealServerHealth | None = None) -> None:
        """Channel, checker states and one task per checker; the baseline is ``inherit``, else the KV's."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        baseline = inherit
        if baseline is None and self.cache is not None:
            baseline = self.cache.real(entry.virtual, entry.real)
        interval = min(_timing(s).delay_loop for s in entry.slots)
        entry.channel = RealServerChannel(
            self.sink,
            entry.virtual,
            entry.real,
            interval=interval,
            baseline=baseline,
            initial_up=not any(_timing(s).alpha for s in entry.slots),
        )
        for slot in entry.slots:
            timing = _timing(slot)
            slot.state = CheckerState(timing, now, self.rng.uniform)
            slot.confirmed = False
            if baseline is not None:
                slot.state.up = baseline.up
                slot.state.next_at = now + self.rng.uniform(0.0, min(TAKEOVER_JITTER, timing.warmup))
        entry.rstate = RealServerState((i, s.state.up) for i, s in enumerate(entry.slots) if s.state)
        for i, slot in enumerate(entry.slots):
            entry.tasks.append(asyncio.create_task(self._loop(entry, i, slot), name=f"check {entry.real}"))

    async def _loop(self, entry: RealServerEntry, index: int, slot: CheckSlot) -> None:
        loop = asyncio.get_running_loop()
        assert slot.state is not None
        check = slot.sub.checker
        key = (check.probe_key(), slot.target)
        self.flight.join(key)
        try:
            while True:
                delay = slot.state.next_at - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                result = await self.flight.run(key, lambda: run_probe(check, slot.target))
                self._apply(entry, index, slot, result, loop.time())
        finally:
            self.flight.leave(key)

    def _apply(
        self, entry: RealServerEntry, index: int, slot: CheckSlot, result: ProbeResult, now: float
    ) -> None:
        assert slot.state is not None and entry.rstate is not None and entry.channel is not None
        slot.probes += 1
        slot.last = result
        was_up = slot.state.up
        if not result.ok:
            slot.failures_total += 1
            if was_up and check_logs(slot):
                log.info("%s %s of %s failed: %s", slot.kind, entry.real, entry.virtual, result.detail)
        step = slot.state.on_result(now, result.ok)
        if step.changed:
            slot.transitions += 1
            log_transition(slot, entry, step.up, result.detail)
        if result.ok or not step.up:
            slot.confirmed = True
        entry.rstate.update(index, step.up)
        if result.ok and result.weight is not None:
            entry.rstate.set_weight(index, result.weight, absolute=slot.kind == "MISC_CHECK")
        if not (
            any(s.confirmed and s.state is not None and not s.state.up for s in entry.slots)
            or all(s.confirmed for s in entry.slots)
        ):
            return  # nothing real to say yet
        failed = [s for i, s in enumerate(entry.slots) if i in entry.rstate.failed]
        culprit = slot if step.changed else (failed[0] if failed else slot)  # a mover speaks for itself
        detail = culprit.last.detail if culprit.last is not None else result.detail
        dynamic = any(s.kind in ("MISC_CHECK", "FILE_CHECK") for s in entry.slots)
        entry.channel.observe(
            up=entry.rstate.alive,
            checker=CheckerKind(culprit.kind),
            detail=detail,
            latency_ms=result.latency_ms,
            weight=entry.rstate.effective_weight(entry.configured_weight) if dynamic else None,
            failures=culprit.state.failures if culprit.state is not None else 0,
            checker_up=step.up if step.changed else None,
        )

    def status(self) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        for entry in self.entries:
            last: RealServerHealth | None = entry.channel.last if entry.channel is not None else None
            for slot in entry.slots:
                out.append(
                    {
                        "virtual": entry.virtual,
                        "real": entry.real,
                        "checker": slot.kind,
                        "state": ("up" if slot.state.up else "down") if slot.state is not None else "idle",
                        "confirmed": slot.confirmed,
                        "last_result": None
                        if slot.last is None
                        else {"ok": slot.last.ok, "detail": slot.last.detail},
                        "last_latency_ms": None if slot.last is None else slot.last.latency_ms,
                        "counters": {
                            "probes": slot.probes,
                            "failures": slot.failures_total,
                            "consecutive_failures": slot.state.failures if slot.state is not None else 0,
                            "transitions": slot.transitions,
                        },
                        "server_up": None if last is None else last.up,
                    }
                )
        return out


def _take_tasks(entry: RealServerEntry) -> list[asyncio.Task[None]]:
    tasks, entry.tasks = entry.tasks, []
    return tasks


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _timing(slot: CheckSlot) -> Timing:
    return Timing.of(slot.sub.checker)


def check_logs(slot: CheckSlot) -> bool:
    """``log_all_failures`` (the checker's, or ``checker_log_all_failures``, folded in by the loader).

    keepalived logs each failed attempt of an *up* checker with it (the ones
    its retries absorb, and the last); a down checker's failures are not
    repeated.  Transitions are logged whatever the setting (``log_transition``).
    """
    return bool(slot.sub.checker.log_all_failures)


def log_transition(slot: CheckSlot, entry: RealServerEntry, up: bool, detail: str) -> None:
    """keepalived's "TCP_CHECK on service ... failed after N retries." and its success line."""
    if up:
        log.info("%s on %s of %s: success", slot.kind, entry.real, entry.virtual)
        return
    retries = Timing.of(slot.sub.checker).retry
    after = f" after {retries} retries" if retries and slot.confirmed else ""
    log.info("%s on %s of %s failed%s: %s", slot.kind, entry.real, entry.virtual, after, detail)
