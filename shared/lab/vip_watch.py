"""Who holds a VIP, over time, from the kernel's own address events: gaps and overlaps to the microsecond.

Why events and not sampling: ``ip addr`` in a loop sees a gap only if a
sample falls into it, and on a loaded machine one call can wait for the RTNL
lock longer than the gap lasts.  ``ip -ts monitor address`` in each host
namespace prints every add and delete as the kernel makes it, stamped; the
holders' timeline is rebuilt from those lines, starting from the holders
seen once the monitors run.  Timestamps are wall-clock seconds (``ip -ts``
prints local time; the lab's hosts share it), comparable with
``Capture``'s kernel receive stamps.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from shared.lab.segment import Host
from shared.lab.wait import wait_until

MONITOR_READY = 20.0
"""Seconds a monitor may take to start (``ip netns exec`` on a busy machine)."""
MARKER = "198.18.255.254"
"""Added and deleted on each host's ``lo`` once: its monitor runs when it prints that (benchmark range)."""


@dataclass(frozen=True)
class Holding:
    """What a window of the timeline says: time nobody held the VIP, and time two or more did."""

    longest_none: float
    total_none: float
    longest_shared: float


class VipWatch:
    """``ip -ts -o monitor address`` in each host; ``holding(start, end)`` summarises the window."""

    def __init__(self, hosts: Sequence[Host], vip: str) -> None:
        self.vip = vip
        self._events: list[tuple[float, str, bool]] = []
        self._ready: set[str] = set()
        self._lock = threading.Lock()
        self._procs: list[subprocess.Popen[str]] = []
        self._threads: list[threading.Thread] = []
        for host in hosts:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", host.name, "ip", "-ts", "-o", "monitor", "address"],
                stdout=subprocess.PIPE,
                text=True,
            )
            self._procs.append(proc)
            thread = threading.Thread(target=self._read, args=(host.role, proc), daemon=True)
            thread.start()
            self._threads.append(thread)
        for host in hosts:
            host.ip("addr", "add", f"{MARKER}/32", "dev", "lo")
            host.ip("addr", "del", f"{MARKER}/32", "dev", "lo")
            wait_until(f"address monitor in {host.name}", partial(self._saw, host.role), MONITOR_READY)
        self.started = time.time()
        self._initial = frozenset(h.role for h in hosts if h.holds(vip))

    def _saw(self, role: str) -> bool:
        with self._lock:
            return role in self._ready

    def _read(self, role: str, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if f" {MARKER}/" in line:
                with self._lock:
                    self._ready.add(role)
                continue
            parsed = _parse(line, self.vip)
            if parsed is None:
                continue
            at, added = parsed
            with self._lock:
                self._events.append((at, role, added))

    def timeline(self) -> list[tuple[float, frozenset[str]]]:
        """(since when, holders) from the start on, in time order."""
        holders = set(self._initial)
        out = [(self.started, frozenset(holders))]
        with self._lock:
            events = sorted(self._events)
        for at, role, added in events:
            if at < self.started:
                continue
            (holders.add if added else holders.discard)(role)
            out.append((at, frozenset(holders)))
        return out

    def holders(self) -> frozenset[str]:
        """Who holds the VIP now, by the events seen so far."""
        return self.timeline()[-1][1]

    def holding(self, start: float, end: float) -> Holding:
        """The window [start, end] of the timeline: no holder (longest, total), shared (longest)."""
        longest_none = total_none = longest_shared = 0.0
        steps = self.timeline()
        for (at, holders), (until, _) in zip(steps, [*steps[1:], (end, frozenset())], strict=True):
            lo, hi = max(at, start), min(until, end)
            if hi <= lo:
                continue
            if not holders:
                longest_none = max(longest_none, hi - lo)
                total_none += hi - lo
            elif len(holders) > 1:
                longest_shared = max(longest_shared, hi - lo)
        return Holding(longest_none, total_none, longest_shared)

    def close(self) -> None:
        for proc in self._procs:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(2)
        for thread in self._threads:
            thread.join(2)

    def __enter__(self) -> VipWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _parse(line: str, vip: str) -> tuple[float, bool] | None:
    """``[2026-01-01T12:00:00.123456] [Deleted ]5: eth0    inet 10.1.0.100/24 ...`` → (epoch s, added)."""
    if not line.startswith("[") or f" {vip}/" not in line:
        return None
    stamp, _, rest = line[1:].partition("] ")
    with contextlib.suppress(ValueError):
        return datetime.fromisoformat(stamp).timestamp(), not rest.startswith("Deleted")
    return None
