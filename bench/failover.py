"""Failover time against the protocol's floor, keepalived and lifeline side by side in one run.

What is measured: an observer on the segment
timestamps, in the kernel (``SO_TIMESTAMPNS``), the *last advert of the old
master* and the *first gratuitous ARP of the new master*.  The gap between
them contains the protocol's own wait, which no implementation may shorten:

* link loss (the old master's switch port goes down): Master_Down_Interval
  = 3 x advert_int + skew of the backup;
* graceful stop (SIGTERM; the old master's last advert is its priority-0
  goodbye): skew of the backup.

overhead = gap - floor is what an implementation adds (timer slack, the
work of becoming master, installing the VIP before the GARP).  Reported
per implementation, mode and event: median, p90 and worst, in ms.

Two nodes: ``a`` (priority 200, the master) and ``b`` (priority 100); after
each failover ``a`` comes back (link restored, or restarted) and preempts, so
every repetition starts from the same state.  The event is fired at a random
phase of the advert schedule.  Prints one JSON object.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import partial

from bench._configs import one_instance
from services.vrrp.core.timers import CS, master_down_interval, skew_time
from shared.lab.capture import Capture, adverts, garps
from shared.lab.errors import LabError
from shared.lab.report import measure_impl, quantile, write_report
from shared.lab.segment import IMPLS, Host, Impl, Segment
from shared.lab.wait import wait_until

MASTER_PRIORITY = 200
BACKUP_PRIORITY = 100
EVENTS = ("link-loss", "graceful-stop")


@dataclass(frozen=True)
class Mode:
    """An advert regime: VRRP version and advert interval in seconds."""

    name: str
    version: int
    interval: float

    def advert_int(self) -> str:
        return f"{self.interval:g}"

    @property
    def interval_cs(self) -> int:
        return round(self.interval * CS)


MODES = {m.name: m for m in (Mode("v2-1s", 2, 1.0), Mode("v3-100ms", 3, 0.1))}


@dataclass(frozen=True)
class Sample:
    """One failover as seen on the wire (times in ms)."""

    gap_ms: float
    floor_ms: float
    overhead_ms: float
    goodbye_priority: int


def config(name: str, priority: int, vip: str, mode: Mode) -> str:
    """The same instance for both implementations; only priority differs between nodes."""
    return one_instance(name, priority, [vip], version=mode.version, advert_int=mode.advert_int())


def floor_s(event: str, mode: Mode) -> float:
    """What the protocol itself makes the backup wait before it may become master."""
    if event == "graceful-stop":
        return skew_time(mode.version, BACKUP_PRIORITY, mode.interval_cs)
    return master_down_interval(mode.version, BACKUP_PRIORITY, mode.interval_cs, 3)


def converge_timeout(mode: Mode) -> float:
    """Long enough for a start-up election plus a preemption, with slack for a slow start."""
    return 2 * master_down_interval(mode.version, 1, mode.interval_cs, 3) + 5


def start_pair(seg: Segment, impl: Impl, mode: Mode, vip: str) -> None:
    """Start a then b and wait until a alone holds the VIP."""
    a, b = seg.hosts
    a.start(impl, config("a", MASTER_PRIORITY, vip, mode))
    b.start(impl, config("b", BACKUP_PRIORITY, vip, mode))
    wait_until(f"{impl}: a to be sole master", lambda: seg.holders(vip), converge_timeout(mode), expect=["a"])


def fire(event: str, host: Host) -> None:
    if event == "graceful-stop":
        host.stop()
    else:
        host.cut()


def recover(event: str, seg: Segment, impl: Impl, mode: Mode, vip: str) -> None:
    """Bring a back (link up or restart) and wait until it has preempted b."""
    a = seg.hosts[0]
    if event == "graceful-stop":
        a.start(impl, config("a", MASTER_PRIORITY, vip, mode))
    else:
        a.restore()
    wait_until(
        f"{impl}: a to take the VIP back after {event}",
        lambda: seg.holders(vip),
        converge_timeout(mode),
        expect=["a"],
    )


def jitter_sleep(interval: float) -> None:
    """Sleep a random fraction of an advert interval, so events hit every phase of the schedule."""
    time.sleep(random.uniform(0, interval))


def measure(seg: Segment, cap: Capture, event: str, mode: Mode, vip: str) -> Sample:
    """One failover: fire the event at a random phase, read the gap off the wire."""
    a, b = seg.hosts
    time.sleep(2 * mode.interval)  # b has certainly heard a's current adverts
    cap.drain()
    jitter_sleep(mode.interval)
    time.sleep(mode.interval * 1.2)  # at least one advert of a's in the buffer
    fired_ns = time.time_ns()  # the same clock as SO_TIMESTAMPNS (CLOCK_REALTIME)
    fire(event, a)
    wait_until(
        f"b to take over after {event}", lambda: b.holds(vip), floor_s(event, mode) + 3 * mode.interval + 3
    )
    time.sleep(0.2)  # the GARP follows the VIP; let it arrive
    packets = cap.drain()
    ours = (g for g in garps(packets) if g.mac == b.mac and g.vip == vip and g.ts_ns >= fired_ns)
    first_garp = next(ours, None)
    if first_garp is None:
        raise LabError("no GARP from b on the wire")
    before = [x for x in adverts(packets) if x.src == str(a.ipv4) and x.ts_ns <= first_garp.ts_ns]
    if not before:
        raise LabError("no advert of a before b's GARP")
    last = before[-1]
    gap = (first_garp.ts_ns - last.ts_ns) / 1e6
    floor = floor_s(event, mode) * 1e3
    return Sample(round(gap, 3), round(floor, 3), round(gap - floor, 3), last.priority)


def summarize(samples: Sequence[Sample], errors: Sequence[str]) -> dict[str, object]:
    """median / p90 / worst overhead, plus the raw samples so nothing is hidden."""
    overheads = [s.overhead_ms for s in samples]
    return {
        "n": len(samples),
        "errors": list(errors),
        "overhead_ms": {
            "median": round(quantile(overheads, 0.5), 3),
            "p90": round(quantile(overheads, 0.9), 3),
            "worst": round(max(overheads), 3) if overheads else None,
        },
        "floor_ms": samples[0].floor_ms if samples else None,
        "samples": [asdict(s) for s in samples],
    }


def run_impl(impl: Impl, mode: Mode, events: Sequence[str], reps: int) -> dict[str, object]:
    """All repetitions of every event for one implementation in one mode, on a fresh segment."""
    samples: dict[str, list[Sample]] = {e: [] for e in events}
    errors: dict[str, list[str]] = {e: [] for e in events}
    with Segment(["a", "b"]) as seg, seg.capture() as cap:
        vip = seg.address(100)
        start_pair(seg, impl, mode, vip)
        for rep in range(reps):
            for event in events:
                try:
                    samples[event].append(measure(seg, cap, event, mode, vip))
                except LabError as exc:
                    errors[event].append(f"rep {rep}: {exc}")
                recover(event, seg, impl, mode, vip)
                last = samples[event][-1:] or errors[event][-1:]
                print(f"{impl} {mode.name} {event} rep {rep}: {last}", file=sys.stderr)
    return {event: summarize(samples[event], errors[event]) for event in events}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--impl", nargs="+", choices=IMPLS, default=list(IMPLS))
    parser.add_argument("--mode", nargs="+", choices=sorted(MODES), default=list(MODES))
    parser.add_argument("--event", nargs="+", choices=EVENTS, default=list(EVENTS))
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--out", help="also write the JSON here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    results: dict[str, object] = {}
    for name in args.mode:
        results[name] = {
            impl: measure_impl(impl, partial(run_impl, impl, MODES[name], args.event, args.reps))
            for impl in args.impl
        }
    priorities = {"master": MASTER_PRIORITY, "backup": BACKUP_PRIORITY}
    write_report("failover", results, args.out, reps=args.reps, priorities=priorities)
    return 0


if __name__ == "__main__":
    sys.exit(main())
