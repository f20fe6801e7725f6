"""Advert timing jitter: 100 instances at advert_int 0.1 (v3) on one node while a core is burnt.

Why it matters: a backup declares the master dead after 3 x interval + skew;
an advert that leaves late eats into that margin, and at 100 ms a few tens of
ms of scheduling delay give a spurious failover.  The issue's target is a p99
deviation below 5 ms.

How: one node runs the instances (no peer, so all become master); an
observer on the segment timestamps every advert in the kernel; a separate
process spins on a core for the whole window.  For each VRID, deviation =
interval between consecutive adverts - 100 ms.  Reported per implementation
(over ``--rounds`` runs that alternate keepalived and lifeline):
|deviation| p50 / p99 / max, the signed p1 / p50 / p99, and gaps > 150 ms
(an advert effectively missed).  Each round starts its own node and burner.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import itertools
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Sequence

from bench._configs import many_instances
from shared.lab.capture import Capture, Packet, adverts
from shared.lab.errors import LabError
from shared.lab.report import loadavg, quantile, write_report
from shared.lab.segment import IMPLS, Impl, Segment
from shared.lab.wait import wait_until

INTERVAL_S = 0.1
MISSED_MS = 150.0


def start_burners(count: int, seconds: float) -> list[subprocess.Popen[bytes]]:
    """Busy loops that stop by themselves after ``seconds`` (no stray spinner if we die)."""
    code = f"import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end:\n    pass\n"
    return [subprocess.Popen([sys.executable, "-c", code]) for _ in range(count)]


def stop_burners(burners: Sequence[subprocess.Popen[bytes]]) -> None:
    for proc in burners:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def collect(cap: Capture, seconds: float) -> list[Packet]:
    """Drain the capture regularly for ``seconds`` so the socket buffer never overflows."""
    packets: list[Packet] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        packets += cap.drain(wait=0.2)
    return packets + cap.drain()


def deviations_ms(packets: Sequence[Packet], src: str) -> dict[int, list[float]]:
    """Per VRID: (interval between consecutive adverts - advert_int), in ms."""
    times: dict[int, list[int]] = defaultdict(list)
    for advert in adverts(packets):
        if advert.src == src:
            times[advert.vrid].append(advert.ts_ns)
    out: dict[int, list[float]] = {}
    for vrid, stamps in times.items():
        stamps.sort()
        out[vrid] = [(b - a) / 1e6 - INTERVAL_S * 1e3 for a, b in itertools.pairwise(stamps)]
    return out


def summarize(signed: Sequence[float], expected: int, loads: Sequence[list[float]]) -> dict[str, object]:
    """Quantiles of |deviation| (the target is on these) and of the signed value (late vs early)."""
    absolute = [abs(d) for d in signed]
    return {
        "intervals": len(signed),
        "expected_intervals": expected,
        "loadavg_before_rounds": list(loads),
        "abs_deviation_ms": {
            "p50": round(quantile(absolute, 0.5), 3),
            "p99": round(quantile(absolute, 0.99), 3),
            "max": round(max(absolute), 3) if absolute else None,
        },
        "signed_deviation_ms": {
            q: round(quantile(signed, v), 3) for q, v in (("p1", 0.01), ("p50", 0.5), ("p99", 0.99))
        },
        "missed": sum(1 for d in signed if d + INTERVAL_S * 1e3 > MISSED_MS),
    }


def run_round(impl: Impl, instances: int, seconds: float, burners: int, warmup: float) -> list[float]:
    """Start ``instances`` masters, burn, capture; all signed deviations (ms); torn down after."""
    with Segment(["a"]) as seg, seg.capture() as cap:
        node = seg.hosts[0]

        def vip(vrid: int) -> str:
            return f"10.{seg.net}.1.{vrid}"

        node.start(impl, many_instances("a", 100, instances, version=3, interval=INTERVAL_S, vip=vip))
        wanted = {vip(v) for v in range(1, instances + 1)}
        wait_until(f"{impl}: every instance to become master", lambda: wanted <= node.addresses(), 30, 0.2)
        spinners = start_burners(burners, warmup + seconds + 2)
        try:
            time.sleep(warmup)
            cap.drain()
            packets = collect(cap, seconds)
        finally:
            stop_burners(spinners)
        per_vrid = deviations_ms(packets, str(node.ipv4))
        if len(per_vrid) != instances:
            raise LabError(f"{impl}: adverts seen for {len(per_vrid)} of {instances} VRIDs")
        return [d for values in per_vrid.values() for d in values]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--impl", nargs="+", choices=IMPLS, default=list(IMPLS))
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30.0, help="capture window")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--burners", type=int, default=1, help="busy-loop processes")
    parser.add_argument("--rounds", type=int, default=2, help="alternate the implementations this often")
    parser.add_argument("--out", help="also write the JSON here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    results: dict[str, object] = {}
    impls = list(args.impl)
    for impl in set(args.impl) - set(impls):
        results[impl] = {"skipped": "services/vrrp/__main__.py does not exist yet"}
    signed: dict[str, list[float]] = {i: [] for i in impls}
    loads: dict[str, list[list[float]]] = {i: [] for i in impls}
    for _ in range(args.rounds):  # alternating evens out a shared machine's changing load
        for impl in impls:
            loads[impl].append(loadavg())
            signed[impl] += run_round(impl, args.instances, args.seconds, args.burners, args.warmup)
    expected = int(args.rounds * args.instances * args.seconds / INTERVAL_S)
    for impl in impls:
        results[impl] = summarize(signed[impl], expected, loads[impl])
        print(f"{impl}: {results[impl]}", file=sys.stderr)
    write_report(
        "jitter",
        results,
        args.out,
        instances=args.instances,
        advert_int_s=INTERVAL_S,
        seconds=args.seconds,
        burners=args.burners,
        rounds=args.rounds,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
