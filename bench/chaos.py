"""Faults keepalived 2.2.7 can be put through too, keepalived and lifeline side by side in one run.

Three faults hit the master (``a``, priority 200; ``b`` has 100; VRRPv2,
``advert_int 1``, PASS auth) while an observer timestamps every advert in the
kernel (:mod:`shared.lab.wire` reads who was MASTER when):

* ``flood``: foreign-VRID, wrong-password and lower-priority adverts at
  ``--rate`` frames a second for ``--seconds`` (:mod:`shared.lab.flood`).
  Figures: the master's longest advert silence, how many adverts it sent
  (each lower-priority advert is answered), whether ``b`` took over.
* ``sigstop``: SIGSTOP of the master's VRRP process until ``b`` has taken
  over, then SIGCONT.  Figures: takeover (a's last advert to b's first) and
  its lateness over Master_Down_Interval, SIGCONT to a's next advert, the
  longest time both claimed mastership.
* ``kill9``: kill -9 of the master's VRRP process; keepalived's parent
  restarts its VRRP child, ``lifeline up`` restarts the vrrp service.
  Figures: the longest advert silence, how long nobody held the VIP
  (kernel, sampled), whether ``b`` took over and how many mastership changes
  the wire shows.

lifeline runs as deployed (``lifeline up``: nats-server, vrrp, checker,
notifier); keepalived as Debian runs it (parent, VRRP child, checker child).
Prints one JSON object (``--out`` saves it).
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from services.vrrp.core.timers import master_down_interval
from shared.lab.daemon import Daemon
from shared.lab.errors import LabError
from shared.lab.flood import flood, hostile_kinds
from shared.lab.report import measure_impl, quantile, write_report
from shared.lab.segment import IMPLS, Host, Impl, Segment
from shared.lab.up import service_process, start_up
from shared.lab.wait import wait_until
from shared.lab.wire import NS, Recorder, claims, first_claim, last_claim, longest_dual_master, master_runs

MASTER, BACKUP = 200, 100
VRID = 51
PASSWORD = "chaos1"
ADVERT_INT = 1.0
FAULTS = ("flood", "sigstop", "kill9")
FLOOR = master_down_interval(2, BACKUP, 100, 3)


def config(name: str, priority: int, vip: str) -> str:
    """The same file for both implementations but the priority."""
    return f"""global_defs {{
    router_id {name}
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id {VRID}
    priority {priority}
    advert_int {ADVERT_INT:g}
    authentication {{
        auth_type PASS
        auth_pass {PASSWORD}
    }}
    virtual_ipaddress {{
        {vip}/24
    }}
}}
"""


class Node:
    """One host running either implementation; finds its VRRP process."""

    def __init__(self, host: Host, impl: Impl, priority: int, vip: str) -> None:
        self.host = host
        self.impl = impl
        self.ip = str(host.ipv4)
        conf = host.workdir / "node.conf"
        conf.write_text(config(host.role, priority, vip))
        self.up: Daemon | None = None
        if impl == "keepalived":
            host.start("keepalived", conf)
        else:
            self.up = start_up(host, conf)

    def vrrp_pid(self) -> int | None:
        """The process that sends the adverts: keepalived's VRRP child, or lifeline's vrrp service."""
        if self.up is not None:
            proc = service_process(self.up, "vrrp")
            return int(proc.pid) if proc is not None else None
        pidfile = self.host.workdir / "v.pid"
        try:
            pid = int(pidfile.read_text())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid

    def stop(self) -> None:
        if self.up is not None:
            self.up.send(signal.SIGCONT)
            self.up.stop(timeout=10)
        self.host.stop()


@dataclass(frozen=True)
class Pair:
    """The segment, its advert recorder and the two nodes a fault works on."""

    seg: Segment
    rec: Recorder
    a: Node
    b: Node


class VipSampler:
    """Who holds the VIP, sampled from the kernel every 20 ms by a thread."""

    def __init__(self, seg: Segment, vip: str) -> None:
        self.samples: list[tuple[float, bool]] = []
        self._stop = threading.Event()

        def run() -> None:
            while not self._stop.is_set():
                self.samples.append((time.monotonic(), bool(seg.holders(vip))))
                self._stop.wait(0.02)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def gap(self) -> float:
        self._stop.set()
        self._thread.join(10)
        held = [t for t, h in self.samples if h]
        return max((b - a for a, b in itertools.pairwise(held)), default=0.0)


def wait_sole_master(rec: Recorder, node: Node, timeout: float) -> float:
    """Until only ``node`` has claimed mastership for one advert interval and a bit."""

    def sole() -> bool:
        since = time.time_ns() - int(1.3 * ADVERT_INT * NS)
        srcs = {c.src for c in claims(rec.snapshot(), VRID) if c.ts_ns >= since}
        return srcs == {node.ip}

    return wait_until(f"{node.host.role} sole master", sole, timeout, 0.05)


def fault_flood(pair: Pair, args: argparse.Namespace) -> dict[str, object]:
    seg, rec, a, b = pair.seg, pair.rec, pair.a, pair.b
    assert seg.observer is not None
    kinds = hostile_kinds(VRID, seg.address(100), PASSWORD, MASTER)
    start = time.time_ns()
    sent = flood(seg.observer.name, seg.address(99), kinds, seconds=args.seconds, rate=args.rate)
    end = time.time_ns()
    seen = [c for c in claims(rec.snapshot(), VRID) if start <= c.ts_ns <= end]
    ours = [c.ts_ns for c in seen if c.src == a.ip]
    times = [start, *ours, end]
    silence = max(y - x for x, y in itertools.pairwise(times)) / NS
    return {
        "sent": sum(sent.values()),
        "master_adverts": len(ours),
        "master_longest_silence_s": round(silence, 3),
        "backup_took_over": any(c.src == b.ip for c in seen),
    }


def fault_sigstop(pair: Pair, args: argparse.Namespace) -> dict[str, object]:
    rec, a, b = pair.rec, pair.a, pair.b
    pid = a.vrrp_pid()
    if pid is None:
        raise LabError("no VRRP process on a")
    stopped = time.time_ns()
    os.kill(pid, signal.SIGSTOP)
    try:
        wait_sole_master(rec, b, FLOOR + 10)
        time.sleep(2 * ADVERT_INT)
    finally:
        resumed = time.time_ns()
        os.kill(pid, signal.SIGCONT)
    wait_sole_master(rec, a, FLOOR + 10)
    seen = rec.snapshot()
    last, first = last_claim(seen, VRID, a.ip, stopped), first_claim(seen, VRID, b.ip, stopped)
    again = first_claim(seen, VRID, a.ip, resumed)
    if last is None or first is None or again is None:
        raise LabError("no handover on the wire")
    back = (again.ts_ns - resumed) / NS
    takeover = (first.ts_ns - last.ts_ns) / NS
    runs = master_runs([s for s in seen if s.ts_ns >= resumed - NS], VRID, FLOOR)
    return {
        "takeover_s": round(takeover, 3),
        "lateness_ms": round((takeover - FLOOR) * 1000, 1),
        "back_after_sigcont_s": round(back, 3),
        "dual_master_after_sigcont_s": round(longest_dual_master(runs), 3),
    }


def fault_kill9(pair: Pair, args: argparse.Namespace) -> dict[str, object]:
    seg, rec, a, b = pair.seg, pair.rec, pair.a, pair.b
    pid = a.vrrp_pid()
    if pid is None:
        raise LabError("no VRRP process on a")
    sampler = VipSampler(seg, seg.address(100))
    killed = time.time_ns()
    os.kill(pid, signal.SIGKILL)
    restart = wait_until("a's VRRP process restarted", lambda: a.vrrp_pid() not in (None, pid), 60, 0.02)
    time.sleep(FLOOR + 2 * ADVERT_INT)  # b takes over in this time if it is going to
    wait_sole_master(rec, a, 2 * FLOOR + 10)
    gap = sampler.gap()
    seen = [c for c in claims(rec.snapshot(), VRID) if c.ts_ns >= killed - 2 * NS]
    times = [c.ts_ns for c in seen]
    runs = master_runs(seen, VRID, FLOOR)
    return {
        "restart_s": round(restart, 3),
        "advert_silence_s": round(max(y - x for x, y in itertools.pairwise(times)) / NS, 3),
        "vip_gap_s": round(gap, 3),
        "backup_took_over": any(c.src == b.ip and c.ts_ns > killed for c in seen),
        "mastership_changes": len(runs) - 1,
    }


FAULT_RUN: dict[str, Callable[[Pair, argparse.Namespace], dict[str, object]]] = {
    "flood": fault_flood,
    "sigstop": fault_sigstop,
    "kill9": fault_kill9,
}


def summarize(samples: list[dict[str, object]]) -> dict[str, object]:
    """Median and worst of every numeric figure, any-of for the booleans, and the raw samples."""
    out: dict[str, object] = {"n": len(samples)}
    for key in samples[0] if samples else []:
        values = [s[key] for s in samples]
        if all(isinstance(v, bool) for v in values):
            out[key] = sum(1 for v in values if v)
        elif all(isinstance(v, int | float) for v in values):
            nums = [float(v) for v in values if isinstance(v, int | float)]
            out[key] = {"median": quantile(nums, 0.5), "worst": max(nums)}
    out["samples"] = samples
    return out


def run_impl(impl: Impl, faults: Sequence[str], args: argparse.Namespace) -> dict[str, object]:
    """Every fault ``args.reps`` times on one fresh pair of ``impl``."""
    results: dict[str, list[dict[str, object]]] = {f: [] for f in faults}
    errors: list[str] = []
    with Segment(["a", "b"]) as seg:
        rec = Recorder(seg.capture())
        vip = seg.address(100)
        a = Node(seg.host("a"), impl, MASTER, vip)
        b = Node(seg.host("b"), impl, BACKUP, vip)
        try:
            wait_sole_master(rec, a, 2 * FLOOR + 60)
            for rep in range(args.reps):
                for fault in faults:
                    try:
                        results[fault].append(FAULT_RUN[fault](Pair(seg, rec, a, b), args))
                        wait_sole_master(rec, a, 2 * FLOOR + 30)
                        time.sleep(2 * ADVERT_INT)
                    except LabError as exc:
                        errors.append(f"{fault} rep {rep}: {exc}")
                    print(f"{impl} {fault} rep {rep}: {results[fault][-1:]}", file=sys.stderr)
        finally:
            rec.close()
            a.stop()
            b.stop()
    return {f: summarize(results[f]) for f in faults} | {"errors": errors}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--impl", nargs="+", choices=IMPLS, default=list(IMPLS))
    parser.add_argument("--fault", nargs="+", choices=FAULTS, default=list(FAULTS))
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--rate", type=int, default=2000, help="flood frames per second (default 2000)")
    parser.add_argument("--seconds", type=float, default=8.0, help="flood duration (default 8)")
    parser.add_argument("--out", help="also write the JSON here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    results: dict[str, object] = {}
    for impl in args.impl:
        results[impl] = measure_impl(impl, partial(run_impl, impl, args.fault, args))
    fields: dict[str, object] = {"reps": args.reps, "floor_s": round(FLOOR, 3), "flood_rate": args.rate}
    write_report("chaos", results, args.out, **fields)
    return 0


if __name__ == "__main__":
    sys.exit(main())
