"""Who was master when, from the adverts on the wire: the spans where two nodes advertised at once.

Why from the wire: a master is whoever sends adverts, and an advert capture
(:mod:`shared.lab.capture`) sees every one with a kernel timestamp, between
two samples of anyone's address list too.  A node's *run* is a series of its
adverts with no gap longer than two advert intervals and no priority-0
goodbye; two runs of different nodes that overlap in time are two masters for
that long.  A clean preemption gives no overlap at all (the old master's last
advert comes before the new master's first).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from shared.lab.capture import AdvertSeen

NS = 1e9


@dataclass(frozen=True)
class Run:
    src: str
    start: float
    end: float
    """Seconds (CLOCK_REALTIME), first and last advert of the run."""


def runs(seen: Iterable[AdvertSeen], vrid: int, interval: float) -> list[Run]:
    """Each node's runs of adverts for ``vrid``, in order of their start."""
    by_src: dict[str, list[AdvertSeen]] = {}
    for advert in sorted(seen, key=lambda a: a.ts_ns):
        if advert.vrid == vrid:
            by_src.setdefault(advert.src, []).append(advert)
    out: list[Run] = []
    for src, adverts in by_src.items():
        start: float | None = None
        last = 0.0
        for advert in adverts:
            ts = advert.ts_ns / NS
            if start is not None and (advert.priority == 0 or ts - last > 2 * interval):
                out.append(Run(src, start, last))
                start = None
            if advert.priority == 0:
                continue
            if start is None:
                start = ts
            last = ts
        if start is not None:
            out.append(Run(src, start, last))
    return sorted(out, key=lambda r: r.start)


def two_masters(seen: Iterable[AdvertSeen], vrid: int, interval: float) -> list[tuple[Run, Run, float]]:
    """Every pair of runs of different nodes that overlap, with the seconds they do."""
    found = []
    all_runs = runs(seen, vrid, interval)
    for i, one in enumerate(all_runs):
        for other in all_runs[i + 1 :]:
            if other.src == one.src:
                continue
            overlap = min(one.end, other.end) - max(one.start, other.start)
            if overlap >= 0:
                found.append((one, other, overlap))
    return found
