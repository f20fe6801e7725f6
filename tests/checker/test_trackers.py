"""Trackers against real things: scripts that pass, fail and hang; processes that start, die and
restart (death seen through pidfd, measured); a tracked file whose value changes (inotify)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from services.checker.trackers.base import TrackerOutcome
from services.checker.trackers.file import FileTracker
from services.checker.trackers.process import ProcessTracker
from services.checker.trackers.script import ScriptTracker
from shared.config.model_vrrp import TrackFile, TrackProcess, VrrpScript
from shared.config.script import Script
from shared.lab.wait import await_until

PY = f"{sys.executable} -c 'import time; time.sleep(30)'"
STEP = 0.005
"""Seconds between two looks at the outcomes (each is stamped on arrival, so latencies stay exact)."""


class Seen:
    """Collects outcomes with their arrival time; ``arrival`` gives the first new matching one."""

    def __init__(self) -> None:
        self.items: list[tuple[float, TrackerOutcome]] = []

    def __call__(self, outcome: TrackerOutcome) -> None:
        self.items.append((time.perf_counter(), outcome))

    def first(
        self, pred: Callable[[TrackerOutcome], bool], since: int
    ) -> tuple[float, TrackerOutcome] | None:
        return next(((at, o) for at, o in self.items[since:] if pred(o)), None)

    async def arrival(
        self, pred: Callable[[TrackerOutcome], bool], timeout: float = 5.0
    ) -> tuple[float, TrackerOutcome]:
        """The first outcome from now on that ``pred`` accepts, and when it arrived (``timeout`` at most)."""
        since = len(self.items)
        await await_until(
            "a matching outcome",
            lambda: self.first(pred, since),
            timeout,
            STEP,
            explain=lambda: f"got {[o for _, o in self.items]}",
        )
        found = self.first(pred, since)
        assert found is not None  # outcomes are only ever appended
        return found


def script(path: Path, body: str, **kw: object) -> VrrpScript:
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return VrrpScript(name=path.stem, script=Script(command=str(path), argv=[str(path)]), **kw)  # type: ignore[arg-type]


async def run_for(tracker: object, seconds: float) -> None:
    task = asyncio.create_task(tracker.run())  # type: ignore[attr-defined]
    await asyncio.sleep(seconds)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_script_that_passes_then_fails(tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    spec = script(tmp_path / "chk.sh", f"test ! -e {flag}", interval=0.1)
    seen = Seen()
    task = asyncio.create_task(ScriptTracker(spec, seen).run())
    try:
        _, ok = await seen.arrival(lambda o: o.ok)
        assert ok.exit_code == 0
        flag.touch()
        _, ko = await seen.arrival(lambda o: not o.ok)
        assert ko.exit_code == 1 and ko.detail == "exit 1"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_script_fall_and_rise_need_consecutive_results(tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    spec = script(tmp_path / "chk.sh", f"test ! -e {flag}", interval=0.05, rise=2, fall=3)
    seen = Seen()
    tracker = ScriptTracker(spec, seen)
    task = asyncio.create_task(tracker.run())
    counter = tracker.risefall
    try:
        await seen.arrival(lambda o: o.ok)
        # enough successes to fill the counter to rise + fall - 1
        await await_until("the counter at rise + fall - 1", lambda: counter.counter == counter.top, 2.0)
        flag.touch()
        n = len(seen.items)
        await seen.arrival(lambda o: not o.ok)
        fails = [o for _, o in seen.items[n:] if o.exit_code == 1]
        assert len(fails) == 3  # fall 3: KO reported on the third failure
        await await_until("the counter down to 0", lambda: counter.counter == 0, 2.0)
        flag.unlink()
        n = len(seen.items)
        await seen.arrival(lambda o: o.ok)
        assert sum(o.exit_code == 0 for _, o in seen.items[n:]) == 2  # rise 2
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_hanging_script_times_out_fails_and_its_group_is_killed(tmp_path: Path) -> None:
    marker = f"lifeline-hang-{uuid.uuid4().hex[:8]}"
    # the script ignores SIGTERM and has a child: only SIGKILL of the group ends both
    spec = script(tmp_path / "hang.sh", f"trap '' TERM\n{PY} {marker} &\nexec {PY} {marker}", interval=5.0,
                  timeout=0.3)  # fmt: skip
    seen = Seen()
    tracker = ScriptTracker(spec, seen, kill_grace=0.3)
    task = asyncio.create_task(tracker.run())
    try:
        _at, ko = await seen.arrival(lambda o: not o.ok, timeout=3)
        assert "timed out" in ko.detail

        def left() -> list[str]:
            pgrep = subprocess.run(["pgrep", "-f", marker], check=False, capture_output=True, text=True)
            return pgrep.stdout.split()

        # grace 0.3 s, then SIGKILL to the group: nothing of it left 0.8 s after the timeout
        await await_until("the script's group to be killed", left, 0.8, 0.05, expect=[])
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_run_still_going_is_skipped(tmp_path: Path) -> None:
    spec = script(tmp_path / "slow.sh", "sleep 0.35", interval=0.1, timeout=2.0)
    tracker = ScriptTracker(spec, Seen())
    await run_for(tracker, 0.8)
    assert tracker.counters.skipped >= 3


@pytest.fixture
async def fake_daemon() -> AsyncIterator[Callable[[], subprocess.Popen[bytes]]]:
    """Starts ``python -c ... lifeline-fake-<id>`` processes with a unique argument; all killed at the end."""
    tag = f"lifeline-fake-{uuid.uuid4().hex[:8]}"
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", tag])
        procs.append(p)
        return p

    start.tag = tag  # type: ignore[attr-defined]
    yield start
    for p in procs:
        p.kill()
        p.wait()


def running(p: subprocess.Popen[bytes], tag: str) -> bool:
    """Has ``p`` exec'd its command line (the one the tracker matches)?"""
    try:
        return tag in Path(f"/proc/{p.pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


def proc_spec(tag: str, **kw: object) -> TrackProcess:
    return TrackProcess(name="daemon", process=[sys.executable, "-c", "import time; time.sleep(60)", tag],
                        full_command=True, **kw)  # type: ignore[arg-type]  # fmt: skip


async def test_process_death_is_seen_fast_and_restart_within_the_scan(
    fake_daemon: Callable[[], subprocess.Popen[bytes]],
) -> None:
    tag = fake_daemon.tag  # type: ignore[attr-defined]
    p = fake_daemon()
    await await_until("the fake daemon to run", lambda: running(p, tag), 5.0)
    seen = Seen()
    tracker = ProcessTracker(proc_spec(tag), seen, scan_interval=0.2)
    task = asyncio.create_task(tracker.run())
    try:
        await seen.arrival(lambda o: o.ok)
        t0 = time.perf_counter()
        p.kill()
        at, _ = await seen.arrival(lambda o: not o.ok, timeout=2)
        latency_ms = (at - t0) * 1000
        assert latency_ms < 500, latency_ms  # pidfd: typically ~1 ms (bench/RESULTS.md, "Checker")
        p.wait()
        fake_daemon()
        await seen.arrival(lambda o: o.ok, timeout=2)  # found by the periodic scan
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_quorum_and_terminate_delay_absorb_a_quick_restart(
    fake_daemon: Callable[[], subprocess.Popen[bytes]],
) -> None:
    tag = fake_daemon.tag  # type: ignore[attr-defined]
    a, b = fake_daemon(), fake_daemon()
    await await_until("both fake daemons to run", lambda: running(a, tag) and running(b, tag), 5.0)
    seen = Seen()
    tracker = ProcessTracker(proc_spec(tag, quorum=2, terminate_delay=1.0), seen, scan_interval=0.1)
    task = asyncio.create_task(tracker.run())
    try:
        await seen.arrival(lambda o: o.ok)
        a.kill()
        a.wait()
        fake_daemon()  # back within the terminate_delay: no KO at all
        await asyncio.sleep(1.4)
        assert all(o.ok for _, o in seen.items)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_terminate_delay_longer_than_the_scan_still_reports_the_death(
    fake_daemon: Callable[[], subprocess.Popen[bytes]],
) -> None:
    """Regression: each scan used to re-arm the terminate_delay timer, so with a scan shorter
    than the delay (keepalived's ``delay 1`` with our 1 s scan, as in the seed's example) a
    dead process was never reported."""
    tag = fake_daemon.tag  # type: ignore[attr-defined]
    p = fake_daemon()
    await await_until("the fake daemon to run", lambda: running(p, tag), 5.0)
    seen = Seen()
    tracker = ProcessTracker(proc_spec(tag, terminate_delay=0.5, fork_delay=0.5), seen, scan_interval=0.1)
    task = asyncio.create_task(tracker.run())
    try:
        await seen.arrival(lambda o: o.ok)
        t0 = time.perf_counter()
        p.kill()
        at, _ = await seen.arrival(lambda o: not o.ok, timeout=3)
        assert at - t0 >= 0.45  # the delay is honoured, and the report does come
        p.wait()
        fake_daemon()
        await seen.arrival(lambda o: o.ok, timeout=3)  # fork_delay likewise
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_track_file_changes_are_seen_by_inotify(tmp_path: Path) -> None:
    path = tmp_path / "prio"
    path.write_text("1\n")
    seen = Seen()
    tracker = FileTracker(TrackFile(name="prio", file=str(path), weight=5), seen, refresh=30.0)
    task = asyncio.create_task(tracker.run())
    try:
        await seen.arrival(lambda o: o.value == 1)
        assert tracker.mode == "inotify"
        t0 = time.perf_counter()
        path.write_text("-3\n")
        at, o = await seen.arrival(lambda o: o.value == -3, timeout=1)
        assert o.contribution == -15 and (at - t0) < 0.5  # no 30 s refresh involved
        tmp = tmp_path / "prio.tmp"
        tmp.write_text("-60\n")
        os.replace(tmp, path)  # replaced by rename
        _, o = await seen.arrival(lambda o: o.value == -60, timeout=1)
        assert o.faults and not o.ok
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
