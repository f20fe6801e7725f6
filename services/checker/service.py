"""The checker service: config in, trackers and real-server checks shared among replicas, events out.

Start-up order matters for "a restart publishes nothing false": connect, load
the KV snapshot of this node's last results (``StateCache``, a batched direct
get), join the replica set and wait until it settles, and only then start the
units this replica owns (reading the snapshot again first: a takeover starts
from what the dead replica last published).  Each unit publishes after its
first real observation.  The checker creates nothing on the bus: an admin
provisions the stream, the bucket and the replicas' stream.

A reload (``apply``) is a difference, check by check (``core/reload_diff.py``):
kept checks run on untouched, removed ones stop and their state-bucket entries
are withdrawn, changed ones are replaced from their last result, added ones
start on the replica that owns them.  A bus reload reaches every replica
(``shared/bus/replica_reload.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from nats.aio.client import Client

from services.checker.core.reload_diff import CheckDiff, comparable, diff
from services.checker.dedupe import SingleFlight
from services.checker.probes import ProbeResult
from services.checker.probes.http import ssl_problem
from services.checker.publish import Sink, StateCache
from services.checker.scheduler import RealServerEntry, RealServerUnit, build_entries
from services.checker.sharding import owner
from services.checker.trackers.base import Report, Tracker
from services.checker.trackers.file import FileTracker, init_file
from services.checker.trackers.process import ProcessTracker
from services.checker.trackers.script import ScriptTracker, script_request
from services.checker.units import TrackerFactory, TrackerUnit
from shared.bus import Publisher, connect, register_service
from shared.bus.replica_reload import ReloadFanout
from shared.bus.replicas import Membership
from shared.config.model import Config
from shared.config.model_lvs import SslGetCheck
from shared.config.model_vrrp import TrackFile, TrackProcess, VrrpScript
from shared.config.script import script_policy
from shared.config.support import Area
from shared.events import (
    ReloadReply,
    ReloadTrigger,
    Service,
    TrackerKind,
    check_subject,
    health_subject,
    tracker_subject,
)
from shared.runner.run import ReloadRefused, ServiceContext, ServiceSpec, StartFailed
from shared.scripts.runner import announce

log = logging.getLogger("lifeline.checker")

VERSION = "0.1.0"


class Unit(Protocol):
    key: str

    @property
    def running(self) -> bool: ...

    def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class Options:
    node: str
    nats_url: str
    replica_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    tracker_heartbeat: float = 1.0
    """Heartbeat interval of trackers that have no interval of their own (process, file)."""
    process_scan: float | None = None
    beat: float = 0.25
    ttl: float = 1.0


def build_tracker_units(
    config: Config, options: Options, sink: Sink, cache: StateCache | None
) -> list[TrackerUnit]:
    """One unit per vrrp_script, vrrp_track_process and track_file (invalid ones logged, skipped)."""
    out: list[TrackerUnit] = []
    policy = script_policy(config.global_defs)

    def add(
        spec: VrrpScript | TrackProcess | TrackFile,
        kind: TrackerKind,
        interval: float,
        factory: TrackerFactory,
        *how: object,
    ) -> None:
        out.append(
            TrackerUnit(
                f"track:{spec.name}",
                name=spec.name,
                kind=kind,
                weight=spec.weight,
                reverse=spec.weight_reverse,
                interval=interval,
                factory=factory,
                sink=sink,
                cache=cache,
                fingerprint=(kind.value, comparable(spec), interval, *how),
            )
        )

    def script(spec: VrrpScript) -> None:
        if spec.user_invalid or spec.script is None:
            log.error("vrrp_script %s: script or user invalid, not run", spec.name)
            return
        request = script_request(spec, policy)
        announce(request, log)

        def factory(report: Report, baseline: bool | None) -> Tracker:
            return ScriptTracker(spec, report, request=request, baseline=baseline)

        add(spec, TrackerKind.SCRIPT, spec.interval, factory, request)

    def process(spec: TrackProcess) -> None:
        if not spec.process:
            log.error("vrrp_track_process %s: no process, not run", spec.name)
            return

        def factory(report: Report, baseline: bool | None) -> Tracker:
            return ProcessTracker(spec, report, scan_interval=options.process_scan, baseline=baseline)

        add(spec, TrackerKind.PROCESS, options.tracker_heartbeat, factory)

    def track_file(spec: TrackFile) -> None:
        if spec.file is None:
            log.error("track_file %s: no file, not run", spec.name)
            return

        def factory(report: Report, baseline: bool | None) -> Tracker:
            return FileTracker(spec, report, refresh=options.tracker_heartbeat)

        add(spec, TrackerKind.FILE, options.tracker_heartbeat, factory)

    for s in config.vrrp.scripts.values():
        script(s)
    for p in config.vrrp.track_processes.values():
        process(p)
    for f in config.vrrp.track_files.values():
        track_file(f)
    return out


class CheckKey(NamedTuple):
    """One check as a reload sees it: a tracker (``track:<name>``, no virtual) or a (virtual, real) pair.

    ``unit`` is the key replicas share work by, so a pair's unit is its real
    server's address (``rs:<ip>:<port>``) and ``virtual`` tells its pairs apart.
    """

    unit: str
    virtual: str = ""


def init_files(config: Config, *, reload: bool = False) -> None:
    """``init_file`` of every ``track_file``: at start as configured, at a reload only a missing file.

    keepalived never overwrites an existing track file on reload, ``overwrite``
    or not: the file is where an operator or a script put the current value.
    """
    for spec in config.vrrp.track_files.values():
        init_file(spec, reload=reload)


class CheckerService:
    """One checker replica: its share of the node's trackers and real-server checks."""

    def __init__(self, config: Config, options: Options, ctx: ServiceContext | None = None) -> None:
        self.config = config
        self.options = options
        self.ctx = ctx
        self.publisher = ctx.publisher() if ctx is not None else Publisher(options.node)
        self.cache = StateCache(options.node)
        self.flight: SingleFlight[ProbeResult] = SingleFlight()
        self.units: dict[str, Unit] = {}
        if (problem := _ssl_problem(config)) is not None:  # keepalived's checker exits at start too
            raise StartFailed(problem)
        for tu in build_tracker_units(config, options, self.publisher.publish, self.cache):
            self.units[tu.key] = tu
        for key, entries in build_entries(config).items():
            self.units[key] = self._real_server_unit(key, entries)
        self.live: frozenset[str] = frozenset()
        self.nc: Client | None = None
        self.membership: Membership | None = None
        self.fanout: ReloadFanout | None = None
        self._reassign_lock = asyncio.Lock()
        self._stopping = asyncio.Event()

    def _real_server_unit(self, key: str, entries: list[RealServerEntry]) -> RealServerUnit:
        return RealServerUnit(key, entries, self.publisher.publish, self.cache, self.flight)

    async def start(self) -> None:
        init_files(self.config)
        name = self.ctx.client_name if self.ctx else f"lifeline-checker-{self.options.node}"
        settings = self.ctx.settings if self.ctx else None
        self.nc = await connect(self.options.nats_url, name, settings=settings)
        await self.publisher.start(self.nc)
        try:
            await asyncio.wait_for(self.publisher.ready.wait(), 5.0)
        except TimeoutError:
            missing = self.publisher.missing
            log.warning("state bucket not there after 5 s (%s); starting without a snapshot", missing)
        await self._refresh_cache()
        self.membership = Membership(
            self.nc,
            self.options.node,
            Service.CHECKER.value,
            self.options.replica_id,
            self._on_members,
            beat=self.options.beat,
            ttl=self.options.ttl,
        )
        if self.ctx is not None:
            members = self.membership
            self.fanout = ReloadFanout(
                self.nc,
                self.options.node,
                Service.CHECKER.value,
                replica_id=members.id,
                reload=self._reload_here,
                peers=members.members,
            )
            await self.fanout.start()
        await register_service(
            self.nc,
            node=self.options.node,
            service=Service.CHECKER.value,
            version=VERSION,
            status=self.status,
            reload=self.fanout.request if self.fanout is not None else None,
            publisher=self.publisher,
        )
        await self.membership.start()
        log.info("checker %s on %s: %d units", self.options.replica_id, self.options.node, len(self.units))

    async def _reload_here(self, trigger: ReloadTrigger) -> ReloadReply:
        """This process's runner re-reads the file (and announces the outcome)."""
        assert self.ctx is not None
        return await self.ctx.reload(trigger)

    def _on_members(self, live: frozenset[str]) -> None:
        self.live = live
        asyncio.get_running_loop().create_task(self._reassign())

    def _owns(self, unit_key: str) -> bool:
        return owner(unit_key, sorted(self.live)) == self.options.replica_id

    def _state_keys(self) -> list[str]:
        """This node's state-bucket keys of every tracker and real server in the config."""
        keys: list[str] = []
        for unit in self.units.values():
            if isinstance(unit, TrackerUnit):
                keys.append(self.cache.tracker_key(unit.name))
            elif isinstance(unit, RealServerUnit):
                keys += [self.cache.real_key(e.virtual, e.real) for e in unit.entries]
        return keys

    async def _refresh_cache(self, timeout: float = 3.0) -> None:
        """The last published results of our checks (a failure leaves the cache as it was, logged)."""
        if self.nc is None or not self.publisher.ready.is_set():
            return
        try:
            await self.cache.refresh(self.nc, self._state_keys(), timeout=timeout)
        except Exception as exc:
            log.warning("state KV snapshot not read (%s: %s)", type(exc).__name__, exc)

    async def _reassign(self) -> None:
        async with self._reassign_lock:
            if self._stopping.is_set():
                return
            if any(self._owns(k) and not u.running for k, u in self.units.items()):
                await self._refresh_cache()  # a takeover: start from what the last owner published
            stops = []
            for key, unit in self.units.items():
                mine = self._owns(key)
                if mine and not unit.running:
                    unit.start()
                elif not mine and unit.running:
                    stops.append(unit.stop())
            await asyncio.gather(*stops)
            log.info(
                "replica %s owns %d of %d units",
                self.options.replica_id,
                sum(u.running for u in self.units.values()),
                len(self.units),
            )

    # ------------------------------------------------------------------ reload

    def _running_checks(self) -> dict[CheckKey, object]:
        out: dict[CheckKey, object] = {}
        for key, unit in self.units.items():
            if isinstance(unit, TrackerUnit):
                out[CheckKey(key)] = unit.fingerprint
            elif isinstance(unit, RealServerUnit):
                out.update((CheckKey(key, e.virtual), e.fingerprint) for e in unit.entries)
        return out

    async def apply(self, config: Config) -> str:
        """A valid new file (the runner refused any with errors): only the difference, check by check.

        Kept checks are not touched (their tasks, rise/fall and retry state
        run on, and they publish nothing because of the reload).  The new
        units are only built here (no task, no IO); under the lock the diff
        decides which of them replace or join the running ones.
        """
        if (problem := _ssl_problem(config)) is not None:
            raise ReloadRefused([problem])
        trackers = {
            CheckKey(u.key): u
            for u in build_tracker_units(config, self.options, self.publisher.publish, self.cache)
        }
        entries = {CheckKey(key, e.virtual): e for key, shard in build_entries(config).items() for e in shard}
        async with self._reassign_lock:
            if self._stopping.is_set():
                raise ReloadRefused(["the checker is stopping"])
            wanted = {k: u.fingerprint for k, u in trackers.items()}
            wanted.update((k, e.fingerprint) for k, e in entries.items())
            plan = diff(self._running_checks(), wanted)
            init_files(config, reload=True)
            for key in plan.removed:
                await self._remove(key)
            for key in plan.changed:
                await self._replace(key, trackers.get(key) or entries[key])
            for key in plan.added:
                self._add(key, trackers.get(key) or entries[key])
            self.config = config
        self._log_plan(plan)
        return plan.summary()

    async def _remove(self, key: CheckKey) -> None:
        """Stop it, and withdraw its state-bucket entries (docs/checker.md, "Reload").

        The replica that ran it (or owns it) withdraws; before membership has
        settled nobody is known to own anything, so this one does.
        """
        unit = self.units[key.unit]
        mine = unit.running or self._owns(key.unit) or not self.live
        node = self.options.node
        if isinstance(unit, TrackerUnit):
            await unit.stop()
            del self.units[key.unit]
            if mine:
                self.publisher.withdraw(tracker_subject(node, unit.name))
        elif isinstance(unit, RealServerUnit):
            entry = next(e for e in unit.entries if e.virtual == key.virtual)
            await unit.remove(entry)
            if not unit.entries:
                await unit.stop()
                del self.units[key.unit]
            if mine:
                self.publisher.withdraw(check_subject(node, entry.virtual, entry.real))
                self.publisher.withdraw(health_subject(node, entry.virtual, entry.real))

    async def _replace(self, key: CheckKey, new: TrackerUnit | RealServerEntry) -> None:
        """Same key, new fingerprint: the new check starts from the old one's last result."""
        unit = self.units[key.unit]
        if isinstance(unit, TrackerUnit) and isinstance(new, TrackerUnit):
            inherit = unit.last
            await unit.stop()
            self.units[key.unit] = new
            if self._owns(key.unit):
                new.inherit = inherit
                new.start()
        elif isinstance(unit, RealServerUnit) and isinstance(new, RealServerEntry):
            old = next(e for e in unit.entries if e.virtual == key.virtual)
            await unit.replace(old, new)

    def _add(self, key: CheckKey, new: TrackerUnit | RealServerEntry) -> None:
        """A new check: into its unit (running if this replica runs the unit), or a unit of its own."""
        if isinstance(new, TrackerUnit):
            self.units[key.unit] = new
            if self._owns(key.unit):
                new.start()
            return
        unit = self.units.get(key.unit)
        if isinstance(unit, RealServerUnit):
            unit.add(new)
            return
        created = self.units[key.unit] = self._real_server_unit(key.unit, [new])
        if self._owns(key.unit):
            created.start()

    def _log_plan(self, plan: CheckDiff[CheckKey]) -> None:
        for verb, keys in (("added", plan.added), ("removed", plan.removed), ("changed", plan.changed)):
            for key in keys:
                log.info("reload: %s %s%s", verb, key.unit, f" of {key.virtual}" if key.virtual else "")

    async def stop(self) -> None:
        self._stopping.set()
        if self.fanout is not None:
            await self.fanout.stop()
        async with self._reassign_lock:
            if self.membership is not None:
                await self.membership.stop()
            await asyncio.gather(*(u.stop() for u in self.units.values() if u.running))
        await self.publisher.close()
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self.nc.drain()

    async def status(self) -> Mapping[str, object]:
        if any(not u.running for u in self.units.values()):
            await self._refresh_cache(timeout=1.0)  # what the other replicas last published
        live = sorted(self.live)
        trackers: list[object] = []
        reals: list[object] = []
        for key, unit in self.units.items():
            who = owner(key, live)
            if isinstance(unit, TrackerUnit):
                row = unit.status()
                cached = self.cache.tracker(unit.name)
                if not unit.running and cached is not None:  # another replica runs it: its last result
                    row["state"] = "ok" if cached.ok else "failed"
                    row["last_result"] = {
                        "ok": cached.ok,
                        "detail": cached.detail,
                        "contribution": cached.contribution,
                        "faults": cached.faults,
                    }
                trackers.append({**row, "owner": who, "running_here": unit.running})
            elif isinstance(unit, RealServerUnit):
                for row in unit.status():
                    health = self.cache.real(str(row["virtual"]), str(row["real"]))
                    if not unit.running and health is not None:
                        row["server_up"] = health.up
                        row["last_result"] = {"ok": health.up, "detail": health.detail}
                        row["last_latency_ms"] = health.latency_ms
                    reals.append({**row, "owner": who, "running_here": unit.running})
        return {
            "replica": self.options.replica_id,
            "replicas": live,
            "owned": sum(u.running for u in self.units.values()),
            "units": len(self.units),
            "probe_runs": self.flight.runs,
            "trackers": trackers,
            "real_servers": reals,
        }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tracker-heartbeat", type=float, default=1.0, help="heartbeat of process/file trackers, s"
    )
    parser.add_argument("--process-scan", type=float, default=None, help="process table scan period, s")


def build(ctx: ServiceContext, config: Config) -> CheckerService:
    options = Options(
        node=ctx.node,
        nats_url=ctx.nats_url,
        tracker_heartbeat=ctx.args.tracker_heartbeat,
        process_scan=ctx.args.process_scan,
    )
    if ctx.replica:
        options.replica_id = ctx.replica
    return CheckerService(config, options, ctx)


def _ssl_problem(config: Config) -> str | None:
    """Load the ``SSL`` block's files if some SSL_GET uses them (keepalived: only when SSL is required)."""
    if not any(isinstance(check, SslGetCheck) for _vs, _rs, check in config.lvs.checks()):
        return None
    return ssl_problem(config.lvs.ssl)


SPEC = ServiceSpec(
    name="checker",
    description="lifeline checker service: trackers and real-server checks (docs/checker.md)",
    build=build,
    add_arguments=add_arguments,
    replicas=True,
    areas=frozenset({Area.TRACKERS, Area.CHECKS}),
)
"""What ``python -m services.checker`` runs (``shared.runner``)."""
