"""Takeover of one instance with 80 VIPs: every VIP and GARP out, and the adverts still on time.

Why: a new master adds all its addresses and sends
a gratuitous ARP for each; if that work sits between two adverts, the next
advert leaves late, and at advert_int 0.1 a late enough one makes the old
backup (or anyone) take over again: a flap caused by the takeover itself.

How: two nodes, one instance (v3, ``--interval`` 0.1 by default) with 80 /32
VIPs; ``a`` (priority 200) is master, ``b`` (priority 100) backup.  Each
repetition stops ``a`` gracefully (its priority-0 advert makes ``b`` take
over after the skew time), and the observer timestamps every frame in the
kernel.  From ``b``'s first advert (t0) we report:

* ``all_garps_ms``: t0 → the first GARP of the *last* VIP (every VIP is then
  on ``b`` and announced: a GARP is sent only after its address is added);
* ``burst_ms``: t0 → the last GARP of the initial burst (``garp_master_repeat``
  rounds; the delayed burst 5 s later is outside the window);
* ``lateness_ms``: for ``b``'s next adverts, (gap to the previous advert minus
  advert_int); ``next`` is the advert right after t0, ``max`` the worst of the
  window (10 intervals, at least 1 s, at most 4.5 s).  Positive = late.

``a`` is restarted (and preempts) between repetitions.  Prints one JSON object.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import partial

from bench._configs import one_instance
from services.vrrp.core.timers import CS, master_down_interval
from shared.lab.capture import Capture, Packet, adverts, garps
from shared.lab.errors import LabError
from shared.lab.report import measure_impl, quantile, write_report
from shared.lab.segment import IMPLS, Impl, Segment
from shared.lab.wait import wait_until

VIPS = 80
MASTER_PRIORITY, BACKUP_PRIORITY = 200, 100


def window_s(interval: float) -> float:
    """After t0: the initial GARP burst and up to ten adverts, ending before the delayed burst (5 s)."""
    return min(4.5, max(1.0, 10 * interval))


@dataclass(frozen=True)
class Sample:
    """One takeover as seen on the wire (ms from b's first advert)."""

    all_garps_ms: float
    burst_ms: float
    garps: int
    next_lateness_ms: float
    max_lateness_ms: float
    adverts: int


def config(name: str, priority: int, vips: Sequence[str], interval: float) -> str:
    """The same instance for both implementations; only the priority differs between nodes."""
    return one_instance(name, priority, vips, version=3, advert_int=f"{interval:g}")


def analyse(packets: Sequence[Packet], b_ip: str, b_mac: str, vips: set[str], interval: float) -> Sample:
    """Read one takeover off the wire (see the module docstring for each number)."""
    ours = [a for a in adverts(packets) if a.src == b_ip and a.priority > 0]
    if len(ours) < 2:
        raise LabError(f"only {len(ours)} adverts from b after the takeover")
    t0 = ours[0].ts_ns
    end = t0 + window_s(interval) * 1e9
    window = [a.ts_ns for a in ours if a.ts_ns <= end]
    lateness = [(y - x) / 1e6 - interval * 1e3 for x, y in itertools.pairwise(window)]
    announced = [g for g in garps(packets) if g.mac == b_mac and g.vip in vips and g.ts_ns >= t0]
    first: dict[str, int] = {}
    for g in announced:
        first.setdefault(g.vip, g.ts_ns)
    if set(first) != vips:
        raise LabError(f"GARPs for {len(first)} of {len(vips)} VIPs in the window")
    burst = [g.ts_ns for g in announced if g.ts_ns <= end]
    return Sample(
        all_garps_ms=round((max(first.values()) - t0) / 1e6, 3),
        burst_ms=round((max(burst) - t0) / 1e6, 3),
        garps=len(burst),
        next_lateness_ms=round(lateness[0], 3),
        max_lateness_ms=round(max(lateness), 3),
        adverts=len(window),
    )


def collect(cap: Capture, seconds: float) -> list[Packet]:
    packets: list[Packet] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        packets += cap.drain(wait=0.05)
    return packets


def run_impl(impl: Impl, interval: float, reps: int) -> dict[str, object]:
    """``reps`` takeovers by b after a graceful stop of a, a restarted in between."""
    samples: list[Sample] = []
    errors: list[str] = []
    with Segment(["a", "b"]) as seg, seg.capture() as cap:
        a, b = seg.hosts
        vips = [seg.address(100 + i) for i in range(VIPS)]
        wanted = set(vips)
        settle = 2 * master_down_interval(3, 1, round(interval * CS), 3) + 10

        def a_holds_all() -> bool:
            return wanted <= a.addresses() and not wanted & b.addresses()

        a.start(impl, config("a", MASTER_PRIORITY, vips, interval))
        wait_until(f"{impl}: a to become master", lambda: wanted <= a.addresses(), settle, 0.2)
        b.start(impl, config("b", BACKUP_PRIORITY, vips, interval))
        for rep in range(reps):
            wait_until(f"{impl}: a to hold every VIP before rep {rep}", a_holds_all, settle, 0.2)
            time.sleep(6)  # past garp_master_delay: a's delayed burst is not in b's window
            cap.drain()
            a.stop()
            try:
                wait_until("b to hold every VIP", lambda: wanted <= b.addresses(), 10, 0.05)
                packets = collect(cap, window_s(interval) + 0.5)
                samples.append(analyse(packets, str(b.ipv4), b.mac, wanted, interval))
            except LabError as exc:
                errors.append(f"rep {rep}: {exc}")
            print(f"{impl} rep {rep}: {samples[-1:] or errors[-1:]}", file=sys.stderr)
            a.start(impl, config("a", MASTER_PRIORITY, vips, interval))
    return summarize(samples, errors)


def summarize(samples: Sequence[Sample], errors: Sequence[str]) -> dict[str, object]:
    """Median and worst of each number, and every sample."""
    out: dict[str, object] = {"n": len(samples), "errors": list(errors)}
    for name in ("all_garps_ms", "burst_ms", "next_lateness_ms", "max_lateness_ms"):
        values = [float(getattr(s, name)) for s in samples]
        out[name] = {"median": round(quantile(values, 0.5), 3), "worst": max(values) if values else None}
    out["samples"] = [asdict(s) for s in samples]
    return out


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--impl", nargs="+", choices=IMPLS, default=list(IMPLS))
    parser.add_argument("--interval", type=float, default=0.1, help="advert_int, s (0.1 or 1)")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--out", help="also write the JSON here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    results: dict[str, object] = {
        impl: measure_impl(impl, partial(run_impl, impl, args.interval, args.reps)) for impl in args.impl
    }
    write_report("vip_burst", results, args.out, vips=VIPS, advert_int_s=args.interval, reps=args.reps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
