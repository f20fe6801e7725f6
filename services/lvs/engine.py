"""The lvs engine: pools + reconciler + kernel, without the bus (so tests and the bench drive it directly).

Why separate from ``service.py``: everything that decides and programs IPVS is
here and synchronous; ``service.py`` only wires it to NATS, signals and the
status endpoint.  The engine keeps a cached view of the kernel rows it owns, so
a health change costs one diff of one virtual server and a few netlink
messages, not a table dump; start and reload read the real kernel table.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from services.lvs.core.desired import (
    FWD_NAMES,
    ServiceEntry,
    ServiceKey,
    Table,
    VirtualPlan,
    build_plans,
    plan_table,
)
from services.lvs.core.pool import Pool
from services.lvs.core.reconcile import Op, apply_to, diff
from services.lvs.core.suspend import SuspendChange, Suspension
from shared.config.model_lvs import LvsConfig
from shared.events import PoolEvent
from shared.safe_files import read_regular, write_atomic

log = logging.getLogger("lifeline.lvs")


class Kernel(Protocol):
    """What the engine needs from ``ipvs.Ipvs`` (a fake in unit tests)."""

    ops_applied: int

    def read_table(self) -> Table: ...

    def apply(self, ops: list[Op]) -> object: ...

    def flush(self) -> int: ...


@dataclass
class Release:
    """What a stop without ``--keep`` did: kernel operations, and the ``omega`` events to publish in order."""

    ops: int
    events: list[PoolEvent]


@dataclass
class ReconcileReport:
    reason: str
    ops: int
    seconds: float
    kinds: dict[str, int] = field(default_factory=dict)


class Engine:
    """Owns the pools of one configuration and keeps the kernel equal to their membership."""

    def __init__(self, kernel: Kernel, lvs: LvsConfig, state_file: Path | None = None) -> None:
        self.kernel = kernel
        self.state_file = state_file
        self.plans: dict[str, VirtualPlan] = build_plans(lvs)
        self.pools: dict[str, Pool] = {name: Pool(plan) for name, plan in self.plans.items()}
        self.cache: Table = {}
        self.owned: set[ServiceKey] = self._load_owned()
        self.last: ReconcileReport | None = None
        self.latencies_ms: deque[float] = deque(maxlen=10_000)
        self.suspension = Suspension(self.plans)
        self.ignored = 0
        """Health facts dropped because their virtual server was suspended (``ha_suspend``)."""
        self.released = False

    # ------------------------------------------------------------------ whole-table paths

    def desired(self) -> Table:
        table: Table = {}
        for name, plan in self.plans.items():
            table.update(plan_table(plan, self.pools[name].members()))
        return table

    def reconcile(self, reason: str = "start") -> ReconcileReport:
        """Read the kernel, apply the difference, remember what we own now. Never flushes."""
        started = time.perf_counter()
        kernel = self.kernel.read_table()
        desired = self.desired()
        ops = diff(kernel, desired, self.owned)
        self._apply(ops)
        self.cache = {k: v for k, v in kernel.items() if k in desired}
        apply_to(self.cache, ops)
        self.owned = set(desired)
        self._save_owned()
        kinds: dict[str, int] = {}
        for op in ops:
            kinds[str(op.kind)] = kinds.get(str(op.kind), 0) + 1
        self.last = ReconcileReport(reason, len(ops), time.perf_counter() - started, kinds)
        log.info("reconcile (%s): %d operations %s in %.3f s", reason, len(ops), kinds, self.last.seconds)
        return self.last

    def reload(self, lvs: LvsConfig) -> ReconcileReport:
        """New configuration: pools keep the health of servers that stayed, the kernel gets the diff."""
        plans = build_plans(lvs)
        self.pools = {name: Pool(plan, previous=self.pools.get(name)) for name, plan in plans.items()}
        self.plans = plans
        self._log_suspend(self.suspension.replan(plans))
        return self.reconcile("reload")

    def release(self, flush_on_stop: str = "disabled") -> Release:
        """Stop without ``--keep``: delete every service we own (and only those), or flush.

        The pools are released first so their ``omega`` events describe the
        state just before the deletion; afterwards health facts are ignored,
        so a late message cannot re-add what was just removed.
        ``flush_on_stop`` is ``lvs_flush_on_stop``: ``"full"`` flushes the
        whole IPVS table (other tools' services too, as keepalived does),
        ``"vs"`` deletes our services as a whole; with either, ``omega``
        announces quorum only (keepalived runs no real server's notifier then).
        Without it our services are deleted too (a deleted service takes its
        real servers with it; the end state is keepalived's one-by-one removal).
        """
        per_server = flush_on_stop == "disabled"
        events = [e for pool in self.pools.values() for e in pool.release(per_server=per_server)]
        self.released = True
        if flush_on_stop == "full":
            count = self.kernel.flush()
            log.info("lvs_flush_on_stop: flushed the IPVS table (%d services)", count)
        else:
            ops = diff(self.kernel.read_table(), {}, self.owned)
            self._apply(ops)
            count = len(ops)
        self.owned = set()
        self.cache = {}
        self._save_owned()
        return Release(count, events)

    # ------------------------------------------------------------------ ha_suspend

    def addresses(self, snapshot: Iterable[tuple[int, str]]) -> list[SuspendChange]:
        """The node's addresses as (interface index, address), from a netlink dump."""
        return self._log_suspend(self.suspension.snapshot(snapshot))

    def address(self, index: int, address: str, present: bool) -> list[SuspendChange]:
        """One address appeared (``present``) or went away on an interface."""
        return self._log_suspend(self.suspension.address(index, address, present))

    def _log_suspend(self, changes: list[SuspendChange]) -> list[SuspendChange]:
        for change in changes:
            verb = "suspending" if change.suspended else "resuming"
            log.info(
                "%s health handling of %s (ha_suspend: address %s)",
                verb,
                change.virtual,
                "gone" if change.suspended else "local",
            )
        return changes

    # ------------------------------------------------------------------ the hot path

    def health(
        self,
        virtual: str,
        real: str,
        up: bool,
        *,
        checker: str = "check",
        weight: int | None = None,
        ts_ns: int = 0,
    ) -> list[PoolEvent]:
        """One health fact: update the pool, push its new rows to the kernel, return the events.

        Ignored after ``release`` (a late fact must not re-add a removed row)
        and while ``ha_suspend`` suspends the virtual server (its pool keeps
        its last state, as under keepalived's disabled checkers).
        """
        pool = self.pools.get(virtual)
        if pool is None or self.released:
            return []
        if self.suspension.suspended(virtual):
            self.ignored += 1
            return []
        events = pool.health(real, up, checker, weight)
        if events:
            self.sync_virtual(virtual)
            if ts_ns:
                self.latencies_ms.append((time.time_ns() - ts_ns) / 1e6)
        return events

    def sync_virtual(self, virtual: str) -> int:
        """Diff one virtual server's rows against the cached kernel view and apply."""
        want = plan_table(self.plans[virtual], self.pools[virtual].members())
        have = {k: self.cache[k] for k in want if k in self.cache}
        ops = diff(have, want)
        self._apply(ops)
        apply_to(self.cache, ops)
        return len(ops)

    # ------------------------------------------------------------------ status

    def status(self) -> dict[str, object]:
        kernel = self.kernel.read_table()
        desired = self.desired()
        mine = {k: v for k, v in kernel.items() if k in self.owned or k in desired}
        return {
            "in_sync": not diff(mine, desired, self.owned),
            "desired": render(desired),
            "kernel": render(mine),
            "pools": {name: self._pool_status(name, pool, kernel) for name, pool in self.pools.items()},
            "ha_suspend_ignored": self.ignored,
            "ops_applied": self.kernel.ops_applied,
            "last_reconcile": self.last.__dict__ if self.last else None,
            "health_to_kernel_ms": percentiles(self.latencies_ms),
        }

    # ------------------------------------------------------------------ internals

    def _pool_status(self, name: str, pool: Pool, kernel: Table) -> dict[str, object]:
        detail = pool.status()
        # what IPVS really holds (live real servers, or the sorry server): per kernel service
        detail["kernel_dests"] = {
            str(key): len(kernel[key].dests) if key in kernel else 0 for key in self.plans[name].services
        }
        if name in self.suspension.watch:
            detail["suspended"] = self.suspension.suspended(name)
        return detail

    def _apply(self, ops: list[Op]) -> None:
        if not ops:
            return
        result = self.kernel.apply(ops)
        for op, err in getattr(result, "errors", []):
            log.error("IPVS refused %s: errno %d", op, err)

    def _load_owned(self) -> set[ServiceKey]:
        """The services a previous run created; a symlink or a foreign file there is refused, not read."""
        if self.state_file is None or not os.path.lexists(self.state_file):
            return set()
        try:
            rows = json.loads(read_regular(self.state_file))
            return {ServiceKey(*row) for row in rows}
        except (OSError, ValueError, TypeError) as exc:
            log.warning("ignoring unreadable state file %s: %s", self.state_file, exc)
            return set()

    def _save_owned(self) -> None:
        """Atomically, 0600, never through a symlink, in a directory others cannot swap files in."""
        if self.state_file is None:
            return
        try:
            data = json.dumps(sorted((list(k) for k in self.owned), key=str)).encode()
            write_atomic(self.state_file, data, mode=0o600, dir_mode=0o755)
        except OSError as exc:
            log.warning("cannot write state file %s: %s", self.state_file, exc)


def render(table: Table) -> dict[str, object]:
    """A table as ``ipvsadm -Ln`` would group it, JSON-friendly, sorted for stable output."""
    out: dict[str, object] = {}
    for key in sorted(table, key=str):
        entry: ServiceEntry = table[key]
        out[str(key)] = {
            "scheduler": entry.attrs.sched,
            "flags": entry.attrs.flags,
            "timeout": entry.attrs.timeout,
            "dests": {
                str(d): {"fwd": FWD_NAMES.get(a.fwd, a.fwd), "weight": a.weight}
                for d, a in sorted(entry.dests.items())
            },
        }
    return out


def percentiles(values: Iterable[float]) -> dict[str, float]:
    data = sorted(values)
    if not data:
        return {}

    def pick(q: float) -> float:
        return round(data[min(len(data) - 1, int(q * len(data)))], 3)

    return {"n": len(data), "p50": pick(0.5), "p99": pick(0.99), "max": round(data[-1], 3)}
