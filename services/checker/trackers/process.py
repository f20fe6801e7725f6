"""``vrrp_track_process``: count matching processes, OK while quorum <= count <= quorum_max.

Why pidfd and a scan instead of keepalived's process connector: the kernel
answers the connector only in the initial network namespace (keepalived puts
the instance in FAULT inside a netns).  Here each matching process is watched
through ``os.pidfd_open``: the fd becomes readable the moment the process
exits, ``loop.add_reader`` wakes us, and the death is reported within
milliseconds with no polling of the process table.  New processes (and name
changes) are found by a periodic psutil scan in a worker thread, every
``scan_interval`` (<= ``fork_delay`` when one is set, else 1 s), which works
in any network namespace.  The proc connector is not used (an optional
accelerator for the initial namespace, left for later).

``fork_delay`` delays reporting a gained quorum, ``terminate_delay`` a lost one;
a change back within the delay cancels the report (no bounce).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

import psutil  # type: ignore[import-untyped]

from services.checker.core.process_match import ProcessPattern
from services.checker.trackers.base import Counters, Report, TrackerOutcome
from shared.config.model_vrrp import TrackProcess
from shared.events import TrackerKind

log = logging.getLogger("lifeline.checker.process")

DEFAULT_SCAN = 1.0
MIN_SCAN = 0.05


def scan(pattern: ProcessPattern) -> set[int]:
    """PIDs of running (non-zombie) processes matching ``pattern``; runs in a worker thread."""
    attrs = ["name", "status"] + (["cmdline"] if pattern.needs_cmdline else [])
    found: set[int] = set()
    me = os.getpid()
    for proc in psutil.process_iter(attrs):
        info = proc.info
        if proc.pid == me or info.get("status") == psutil.STATUS_ZOMBIE:
            continue
        if pattern.matches(info.get("name") or "", info.get("cmdline")):
            found.add(proc.pid)
    return found


class ProcessTracker:
    kind = TrackerKind.PROCESS

    def __init__(
        self,
        spec: TrackProcess,
        report: Report,
        *,
        scan_interval: float | None = None,
        baseline: bool | None = None,
    ) -> None:
        self.name = spec.name
        self.spec = spec
        self.pattern = ProcessPattern.of(spec)
        self.weight = spec.weight
        self.reverse = spec.weight_reverse
        self.quorum = spec.quorum
        self.quorum_max = spec.quorum_max
        if scan_interval is None:
            scan_interval = min(DEFAULT_SCAN, spec.fork_delay) if spec.fork_delay > 0 else DEFAULT_SCAN
        self.scan_interval = max(MIN_SCAN, scan_interval)
        self.counters = Counters()
        self._report = report
        self._fds: dict[int, int] = {}
        self._reported: bool | None = baseline
        self._first = True
        self._pending: asyncio.TimerHandle | None = None
        self._pending_ok = False
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def count(self) -> int:
        return len(self._fds)

    def _quorate(self) -> bool:
        n = self.count
        return n >= self.quorum and (self.quorum_max is None or n <= self.quorum_max)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    pids = await asyncio.to_thread(scan, self.pattern)
                except Exception as exc:  # psutil on a vanishing /proc entry, ...
                    log.warning("track_process %s: scan failed: %s", self.name, exc)
                else:
                    self._apply_scan(pids)
                await asyncio.sleep(self.scan_interval)
        finally:
            self._close()

    def _apply_scan(self, pids: set[int]) -> None:
        for pid in list(self._fds):
            if pid not in pids:  # renamed (comm changed) or exited while we scanned
                self._unwatch(pid)
        for pid in pids - self._fds.keys():
            self._watch(pid)
        self.counters.record(self._quorate(), f"{self.count} running", None)
        self._evaluate(immediate=self._first)
        self._first = False

    def _watch(self, pid: int) -> None:
        assert self._loop is not None
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            return
        self._fds[pid] = fd
        self._loop.add_reader(fd, self._exited, pid)

    def _unwatch(self, pid: int) -> None:
        fd = self._fds.pop(pid, None)
        if fd is None:
            return
        if self._loop is not None:
            self._loop.remove_reader(fd)
        os.close(fd)

    def _exited(self, pid: int) -> None:
        """pidfd readable: the process has exited (zombie or reaped), so it no longer counts."""
        self._unwatch(pid)
        self.counters.extra["exits"] = self.counters.extra.get("exits", 0) + 1
        self._evaluate(immediate=False)

    def _evaluate(self, *, immediate: bool) -> None:
        ok = self._quorate()
        if ok == self._reported and not immediate:
            if self._pending is not None:  # came back within the delay: no bounce
                self._pending.cancel()
                self._pending = None
            return
        if self._pending is not None and self._pending_ok == ok and not immediate:
            return  # already on its way: a later scan must not push the report back
        delay = 0.0 if immediate else (self.spec.fork_delay if ok else self.spec.terminate_delay)
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        if delay <= 0:
            self._emit(ok)
        else:
            assert self._loop is not None
            self._pending = self._loop.call_later(delay, self._delayed, ok)
            self._pending_ok = ok

    def _delayed(self, ok: bool) -> None:
        self._pending = None
        if self._quorate() == ok:
            self._emit(ok)

    def _emit(self, ok: bool) -> None:
        if ok != self._reported:
            self.counters.changes += 1
        self._reported = ok
        self._report(TrackerOutcome(ok=ok, detail=f"{self.count} process(es) running"))

    def _close(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
        for pid in list(self._fds):
            with contextlib.suppress(OSError):
                self._unwatch(pid)

    def state(self) -> dict[str, object]:
        return {"pids": sorted(self._fds), "quorum": self.quorum, "quorum_max": self.quorum_max}
