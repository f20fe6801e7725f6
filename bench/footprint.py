"""CPU seconds and memory of many VRRP instances, keepalived and lifeline on the same config.

Scenarios: 255 instances at advert_int 1 (v2) and 100 at 0.1 (v3).
Two nodes run the same file: ``a`` (priority 200) ends up master of every
instance and sends all the adverts, ``b`` (priority 100) is backup and
receives them; both roles cost something different, so both are reported.

CPU is read from ``/proc/PID/stat`` (utime + stime, plus cutime + cstime for
children already reaped) summed over the daemon's whole live process tree
(keepalived's parent and vrrp child; lifeline's service and any helper),
as a difference over a fixed window after convergence.  Memory is RSS and
PSS (``smaps_rollup``; PSS splits pages a forked child shares with its
parent, so it does not double count keepalived's children).  lifeline's
nats-server is reported beside it, not inside it: it is the node's bus,
shared by every service.  Prints one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from bench._configs import many_instances
from shared.lab.daemon import Daemon
from shared.lab.errors import LabError
from shared.lab.report import measure_impl, write_report
from shared.lab.segment import IMPLS, Impl, Segment
from shared.lab.wait import wait_until

CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Scenario:
    name: str
    instances: int
    version: int
    interval: float


SCENARIOS = {s.name: s for s in (Scenario("255x1s-v2", 255, 2, 1.0), Scenario("100x100ms-v3", 100, 3, 0.1))}


def children(pid: int) -> list[int]:
    """Direct children from /proc/PID/task/*/children (needs no extra library)."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            out += [int(c) for c in (task / "children").read_text().split()]
    return out


def tree(pid: int) -> list[int]:
    """``pid`` and all its live descendants."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        todo += children(current)
    return pids


def cpu_seconds(pid: int) -> float:
    """utime + stime + cutime + cstime of one process, in seconds (0 if it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()  # after "comm)", field 3 is at index 0
    return sum(int(f) for f in fields[11:15]) / CLK_TCK


def memory_kib(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in KiB from smaps_rollup; (0, 0) if the process is gone."""
    values = {"Rss:": 0, "Pss:": 0}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            parts = line.split()
            if parts and parts[0] in values:
                values[parts[0]] = int(parts[1])
    return values["Rss:"], values["Pss:"]


def tree_cpu(pid: int) -> float:
    return sum(cpu_seconds(p) for p in tree(pid))


def tree_memory(pid: int) -> dict[str, int]:
    pids = tree(pid)
    mems = [memory_kib(p) for p in pids]
    return {"processes": len(pids), "rss_kib": sum(m[0] for m in mems), "pss_kib": sum(m[1] for m in mems)}


def window(daemons: dict[str, Daemon], seconds: float) -> dict[str, dict[str, object]]:
    """CPU used by each daemon's tree over ``seconds``; memory sampled at the end."""
    before = {name: tree_cpu(d.pid) for name, d in daemons.items()}
    time.sleep(seconds)
    out: dict[str, dict[str, object]] = {}
    for name, daemon in daemons.items():
        if not daemon.running:
            raise LabError(f"{name} exited during the window:\n{daemon.tail()}")
        used = tree_cpu(daemon.pid) - before[name]
        out[name] = {"cpu_s": round(used, 3), "cpu_pct": round(100 * used / seconds, 2)}
        out[name].update(tree_memory(daemon.pid))
    return out


def run_impl(impl: Impl, scenario: Scenario, seconds: float) -> dict[str, object]:
    """Both nodes on the same file (priority aside); measure after every VIP sits on a.

    a starts first and b joins its running elections: started together, 100
    instances at 0.1 s on a loaded 2-core machine can fall into a dual-master
    storm (seen with keepalived), and the steady state is what is measured.
    """
    with Segment(["a", "b"]) as seg:
        a, b = seg.hosts

        def vip(vrid: int) -> str:
            return f"10.{seg.net}.{1 + vrid // 250}.{1 + vrid % 250}"

        def conf(name: str, priority: int) -> str:
            return many_instances(
                name,
                priority,
                scenario.instances,
                version=scenario.version,
                interval=scenario.interval,
                vip=vip,
            )

        wanted = {vip(v) for v in range(1, scenario.instances + 1)}
        daemons = {"master": a.start(impl, conf("a", 200))}
        wait_until(
            f"{impl} {scenario.name}: a to be master of every instance",
            lambda: wanted <= a.addresses(),
            60,
            0.5,
        )
        daemons["backup"] = b.start(impl, conf("b", 100))
        wait_until(
            f"{impl} {scenario.name}: b to settle as backup", lambda: not wanted & b.addresses(), 30, 0.5
        )
        if not wanted <= a.addresses():
            raise LabError(f"{impl} {scenario.name}: a lost instances when b joined")
        time.sleep(6)  # past garp_master_delay (5 s): the second GARP burst is not in the window
        result: dict[str, object] = dict(window(daemons, seconds))
        buses = {n: node.nats for n, node in (("master", a), ("backup", b)) if node.nats is not None}
        if buses:
            result["nats_server"] = {n: tree_memory(d.pid) for n, d in buses.items()}
        return result


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--impl", nargs="+", choices=IMPLS, default=list(IMPLS))
    parser.add_argument("--scenario", nargs="+", choices=sorted(SCENARIOS), default=list(SCENARIOS))
    parser.add_argument("--seconds", type=float, default=60.0, help="measurement window")
    parser.add_argument("--out", help="also write the JSON here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    results: dict[str, object] = {}
    for name in args.scenario:
        results[name] = {
            impl: measure_impl(impl, partial(run_impl, impl, SCENARIOS[name], args.seconds), f"{name} {impl}")
            for impl in args.impl
        }
    write_report("footprint", results, args.out, seconds=args.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
