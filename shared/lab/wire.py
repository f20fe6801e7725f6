"""Who was MASTER when, from the adverts on the wire: runs, overlaps (two masters), takeovers, silences.

Why from the wire and not from the daemons: a chaos test stops, kills and
starves the daemons, so their own word (events, logs) is exactly what is
under test.  The observer's capture (:mod:`shared.lab.capture`) is the one
witness no fault touches: a node is MASTER on the segment while it sends
adverts with a priority above 0, and two nodes doing so at once is the split
brain VRRP exists to avoid.  Pure functions over :class:`AdvertSeen` lists, so
the tests and the benchmarks (``bench/chaos.py``) read the same figures.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from shared.lab.capture import AdvertSeen, Capture, adverts
from shared.lab.errors import LabError

NS = 1_000_000_000


@dataclass(frozen=True)
class Run:
    """One node's unbroken stretch of MASTER adverts: first and last advert (CLOCK_REALTIME ns)."""

    src: str
    start_ns: int
    end_ns: int
    count: int


def claims(seen: Iterable[AdvertSeen], vrid: int) -> list[AdvertSeen]:
    """The adverts of ``vrid`` that claim mastership (priority 0 is a goodbye, not a claim), in time order."""
    return sorted((a for a in seen if a.vrid == vrid and a.priority > 0), key=lambda a: a.ts_ns)


def master_runs(seen: Iterable[AdvertSeen], vrid: int, max_gap: float) -> list[Run]:
    """Each source's runs: consecutive claims no more than ``max_gap`` seconds apart (a backup's
    Master_Down_Interval is the natural gap: a longer silence lets the peer take over)."""
    runs: list[Run] = []
    open_runs: dict[str, Run] = {}
    for advert in claims(seen, vrid):
        run = open_runs.get(advert.src)
        if run is not None and advert.ts_ns - run.end_ns <= max_gap * NS:
            open_runs[advert.src] = Run(run.src, run.start_ns, advert.ts_ns, run.count + 1)
            continue
        if run is not None:
            runs.append(run)
        open_runs[advert.src] = Run(advert.src, advert.ts_ns, advert.ts_ns, 1)
    runs.extend(open_runs.values())
    return sorted(runs, key=lambda r: r.start_ns)


def overlaps(runs: Sequence[Run]) -> list[tuple[Run, Run, float]]:
    """Every pair of runs of different sources that overlap in time, with the overlap in seconds.

    Two runs overlap while both sources send claims: that is two masters on
    the segment.  A clean handover (the old master's last advert before the
    new one's first) overlaps by nothing.
    """
    out: list[tuple[Run, Run, float]] = []
    for i, first in enumerate(runs):
        for second in runs[i + 1 :]:
            if second.src == first.src:
                continue
            start, end = max(first.start_ns, second.start_ns), min(first.end_ns, second.end_ns)
            if end >= start:
                out.append((first, second, (end - start) / NS))
    return out


def longest_dual_master(runs: Sequence[Run]) -> float:
    """The longest time two nodes claimed mastership at once (0.0: never)."""
    return max((seconds for _a, _b, seconds in overlaps(runs)), default=0.0)


def first_claim(seen: Iterable[AdvertSeen], vrid: int, src: str, after_ns: int) -> AdvertSeen | None:
    """``src``'s first claim for ``vrid`` after ``after_ns`` (its takeover), or None."""
    return next((a for a in claims(seen, vrid) if a.src == src and a.ts_ns > after_ns), None)


def last_claim(seen: Iterable[AdvertSeen], vrid: int, src: str, before_ns: int) -> AdvertSeen | None:
    """``src``'s last claim for ``vrid`` at or before ``before_ns``, or None."""
    found = [a for a in claims(seen, vrid) if a.src == src and a.ts_ns <= before_ns]
    return found[-1] if found else None


def longest_silence(seen: Iterable[AdvertSeen], vrid: int, start_ns: int, end_ns: int) -> float:
    """The longest stretch inside [start, end] without any claim for ``vrid``, in seconds."""
    times = [start_ns, *(a.ts_ns for a in claims(seen, vrid) if start_ns <= a.ts_ns <= end_ns), end_ns]
    return max(b - a for a, b in itertools.pairwise(times)) / NS


class Recorder:
    """A :class:`Capture` drained by a thread into a list of adverts, for scenarios that last a while.

    The capture's socket buffer is large, but a scenario that runs for a
    minute while the test waits elsewhere is simplest with a reader of its own.
    """

    def __init__(self, capture: Capture) -> None:
        self.capture = capture
        self.seen: list[AdvertSeen] = []
        self._lock = threading.Lock()
        self.error: Exception | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, name="advert-recorder", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while not self._stop.is_set():
            try:
                got = list(adverts(self.capture.drain(0.05)))
            except Exception as exc:  # a witness that stopped must say so, not fall silent
                self.error = exc
                return
            with self._lock:
                self.seen.extend(got)

    def snapshot(self) -> list[AdvertSeen]:
        """Every advert recorded so far (a copy); raises if the recorder stopped on an error."""
        if self.error is not None:
            raise LabError(f"the advert recorder stopped: {self.error!r}") from self.error
        with self._lock:
            return list(self.seen)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.capture.close()
