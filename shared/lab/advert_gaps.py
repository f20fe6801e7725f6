"""Mastership as the wire shows it: who advertised when, the longest silence, two masters at once.

The observer's capture (``capture.py``) holds every advert with its kernel
receive time; these helpers reduce it to what the restart tests and
``bench/resume.py`` judge: a silence longer than the backups' down interval
lets one take over, and two hosts advertising at once are two masters.
"""

from __future__ import annotations

import itertools

from shared.lab.capture import Capture, Packet, adverts, parse_advert
from shared.lab.segment import Host, Segment


def just_after_an_advert(capture: Capture, host: Host, timeout: float) -> None:
    """Return as soon as the observer sees a new advert (priority > 0) from ``host``; fail after ``timeout``.

    What is queued already is dropped first: on a loaded machine the queue may
    hold adverts seconds old, and the caller wants the instant right after one.
    """
    src = str(host.ipv4)
    capture.drain()

    def from_host(frame: bytes) -> bool:
        ad = parse_advert(Packet(0, frame))
        return ad is not None and ad.src == src and ad.priority > 0

    if not capture.frames(1, timeout, from_host):
        raise AssertionError(f"no advert from {host.role} within {timeout} s")


def advert_times(capture: Capture, seg: Segment) -> dict[str, list[float]]:
    """Every non-zero-priority advert captured so far, per host role: kernel receive times (s)."""
    by_src = {str(h.ipv4): h.role for h in seg.hosts}
    out: dict[str, list[float]] = {h.role: [] for h in seg.hosts}
    for ad in adverts(capture.drain()):
        if ad.priority > 0 and ad.src in by_src:
            out[by_src[ad.src]].append(ad.ts_ns / 1e9)
    return out


def longest_silence(times: list[float], start: float, end: float) -> float:
    """The longest stretch in [start, end] without one of ``times``."""
    stamps = sorted(t for t in times if start <= t <= end)
    return max(b - a for a, b in itertools.pairwise([start, *stamps, end]))


def runs(times: list[float], interval: float) -> list[tuple[float, float]]:
    """Advertising runs: adverts at most 1.5 intervals apart belong to one (first, last)."""
    out: list[tuple[float, float]] = []
    for t in sorted(times):
        if out and t - out[-1][1] <= 1.5 * interval:
            out[-1] = (out[-1][0], t)
        else:
            out.append((t, t))
    return out


def both_advertising(first: list[float], second: list[float], interval: float) -> float:
    """The longest time two hosts advertised as MASTER together: the overlap of their runs."""
    overlap = 0.0
    for a0, a1 in runs(first, interval):
        for b0, b1 in runs(second, interval):
            overlap = max(overlap, min(a1, b1) - max(a0, b0))
    return overlap
