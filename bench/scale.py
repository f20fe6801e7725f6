"""VRRP at scale: no spurious transition, and the CPU and memory it costs.

Scenarios:

* ``1000x1s-v3-4if``: 1,000 instances, VRRPv3, advert_int 1, spread over 4
  interfaces (4 bridges between the two nodes; VRIDs 1..250 on each);
* ``256x100ms-v3``: 256 instances, VRRPv3, advert_int 0.1, on one interface.
  A VRID is unique per (interface, family, multicast group) and only 255
  exist, so VRIDs 1..128 use 224.0.0.18 and VRIDs 1..128 again use
  ``mcast_dst_ip 224.0.0.19`` (docs/keepalived.md#receive-sockets-and-vrids).

Two nodes run the same file: ``a`` (priority 200) starts first and becomes
master of everything, then ``b`` (priority 100) joins as backup.  After
convergence (every VIP on a, none on b, plus the 5 s ``garp_master_delay``)
the window starts, and over it we count what would be a spurious
transition, three ways:

* on the wire (an observer on every bridge): any advert sent by b means b
  became master of that VRID; a gap in a's adverts longer than b's
  Master_Down_Interval means b should have; the longest gap is reported;
* in the daemons' logs: ``Entering ... STATE`` lines written in the window;
* VIP ownership sampled every few seconds (every VIP on a, none on b).

CPU is the daemon's whole process tree (``/proc``, as ``bench/footprint.py``)
over the window, as a share of one CPU; memory RSS/PSS at the end.  Each
scenario runs keepalived and lifeline one after the other in the same run.
Prints one JSON object.  ``--quick``: 20 s windows, for development.
"""

from __future__ import annotations

import argparse
import re
import select
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from ipaddress import IPv4Address
from pathlib import Path

from bench._configs import Slot, slotted_instances
from bench.footprint import tree_cpu, tree_memory
from services.vrrp.core.timers import CS, master_down_interval
from shared.lab.capture import ETH_P_IP, IPPROTO_VRRP, Capture
from shared.lab.daemon import Daemon
from shared.lab.errors import LabError
from shared.lab.report import measure_impl, write_report
from shared.lab.segment import IMPLS, Host, Impl, Segment
from shared.lab.wait import wait_until

MASTER_PRIO, BACKUP_PRIO = 200, 100
SETTLE_S = 6.0  # past garp_master_delay (5 s): the second GARP burst is not in the window
SAMPLE_EVERY_S = 5.0
STATE_LINE = re.compile(r"\((\S+)\) Entering (\w+) STATE")


@dataclass(frozen=True)
class Scenario:
    name: str
    slots: tuple[Slot, ...]
    interval: float
    links: int
    version: int = 3

    def vip(self, net: int, slot: Slot) -> str:
        """10.<net>.<10 + interface number (+10 for the second group)>.<vrid>: one /32 per slot."""
        third = 10 + int(slot.interface.removeprefix("eth")) + (10 if slot.group is not None else 0)
        return f"10.{net}.{third}.{slot.vrid}"


def _scenarios() -> dict[str, Scenario]:
    four = tuple(Slot(f"eth{k}", vrid) for k in range(4) for vrid in range(1, 251))
    two_groups = tuple(Slot("eth0", v) for v in range(1, 129)) + tuple(
        Slot("eth0", v, "224.0.0.19") for v in range(1, 129)
    )
    return {
        s.name: s
        for s in (Scenario("1000x1s-v3-4if", four, 1.0, 4), Scenario("256x100ms-v3", two_groups, 0.1, 1))
    }


SCENARIOS = _scenarios()


@dataclass
class Wire:
    """What the observer saw in the window, reduced on the fly (2,560 adverts/s need no list)."""

    backup_src: set[bytes]
    adverts: int = 0
    from_backup: int = 0
    backup_vrids: set[tuple[int, bytes, int]] = field(default_factory=set)
    last: dict[tuple[int, bytes, int], int] = field(default_factory=dict)
    max_gap_ns: int = 0
    gaps_over_down: int = 0
    down_ns: int = 0

    def feed(self, link: int, ts_ns: int, data: bytes) -> None:
        """One frame: count IPv4 VRRP adverts, by sender; track a's gaps per (link, group, VRID)."""
        if len(data) < 40 or data[12:14] != ETH_P_IP.to_bytes(2, "big") or data[23] != IPPROTO_VRRP:
            return
        self.adverts += 1
        ihl = (data[14] & 0x0F) * 4
        key = (link, data[30:34], data[14 + ihl + 1])
        if data[26:30] in self.backup_src:
            self.from_backup += 1
            self.backup_vrids.add(key)
            return
        previous = self.last.get(key)
        self.last[key] = ts_ns
        if previous is not None:
            gap = ts_ns - previous
            self.max_gap_ns = max(self.max_gap_ns, gap)
            self.gaps_over_down += gap > self.down_ns

    def report(self, expected_keys: int) -> dict[str, object]:
        return {
            "adverts_seen": self.adverts,
            "adverts_from_backup": self.from_backup,
            "vrids_backup_sent_for": len(self.backup_vrids),
            "master_vrids_seen": len(self.last),
            "expected_vrids": expected_keys,
            "master_max_gap_ms": round(self.max_gap_ns / 1e6, 2),
            "master_gaps_over_backup_down_interval": self.gaps_over_down,
        }


def state_lines(log: Path, offset: int) -> dict[str, int]:
    """``Entering X STATE`` lines written after ``offset``, counted by state."""
    counts: dict[str, int] = {}
    with log.open("rb") as file:
        file.seek(offset)
        for line in file.read().decode(errors="replace").splitlines():
            if (m := STATE_LINE.search(line)) is not None:
                counts[m.group(2)] = counts.get(m.group(2), 0) + 1
    return counts


def log_size(daemon: Daemon) -> int:
    return daemon.log.stat().st_size if daemon.log.exists() else 0


def observe(
    captures: Sequence[Capture], wire: Wire, a: Host, b: Host, *, wanted: set[str], seconds: float
) -> int:
    """Drain every capture into ``wire`` for ``seconds``; returns VIP samples that were wrong."""
    bad_samples = 0
    end = time.monotonic() + seconds
    next_sample = time.monotonic() + SAMPLE_EVERY_S
    socks = {c.sock.fileno(): (k, c) for k, c in enumerate(captures)}
    while (now := time.monotonic()) < end:
        ready, _, _ = select.select(list(socks), [], [], min(0.2, end - now))
        for fd in ready:
            link, cap = socks[fd]
            for packet in cap.drain():
                wire.feed(link, packet.ts_ns, packet.data)
        if now >= next_sample:
            next_sample += SAMPLE_EVERY_S
            on_a, on_b = a.addresses(None), b.addresses(None)
            bad_samples += not (wanted <= on_a) or bool(wanted & on_b)
    return bad_samples


def run_impl(impl: Impl, scenario: Scenario, seconds: float) -> dict[str, object]:
    """Converge (a first, then b), then watch the wire, the logs and the CPU over ``seconds``."""
    with Segment(["a", "b"], links=scenario.links) as seg:
        a, b = seg.hosts
        wanted = {scenario.vip(seg.net, s) for s in scenario.slots}

        def conf(name: str, priority: int) -> str:
            vip = partial(scenario.vip, seg.net)
            return slotted_instances(
                name, priority, scenario.slots, version=scenario.version, interval=scenario.interval, vip=vip
            )

        captures = [seg.capture(f"eth{k}") for k in range(scenario.links)]
        try:
            started = time.monotonic()
            daemons = {"master": a.start(impl, conf("a", MASTER_PRIO))}
            what = f"{impl} {scenario.name}"
            wait_until(
                f"{what}: a to be master of every instance", lambda: wanted <= a.addresses(None), 180, 1.0
            )
            master_after = time.monotonic() - started
            daemons["backup"] = b.start(impl, conf("b", BACKUP_PRIO))
            wait_until(f"{what}: b to settle as backup", lambda: not wanted & b.addresses(None), 60, 1.0)
            if not wanted <= a.addresses(None):
                raise LabError(f"{what}: a lost instances when b joined")
            time.sleep(SETTLE_S)
            src = {IPv4Address(seg.link_address(k, b.index)).packed for k in range(scenario.links)}
            down = master_down_interval(scenario.version, BACKUP_PRIO, round(scenario.interval * CS), 3)
            wire = Wire(backup_src=src, down_ns=int(down * 1e9))
            for cap in captures:
                cap.drain()
            offsets = {role: log_size(d) for role, d in daemons.items()}
            cpu_before = {role: tree_cpu(d.pid) for role, d in daemons.items()}
            bad_samples = observe(captures, wire, a, b, wanted=wanted, seconds=seconds)
            cpu = {role: tree_cpu(d.pid) - cpu_before[role] for role, d in daemons.items()}
        finally:
            for cap in captures:
                cap.close()
        result: dict[str, object] = {"master_converged_s": round(master_after, 1)}
        logged = 0
        for role, daemon in daemons.items():
            if not daemon.running:
                raise LabError(f"{impl} {role} exited during the window:\n{daemon.tail()}")
            lines = state_lines(daemon.log, offsets[role])
            logged += sum(lines.values())
            result[role] = {
                "cpu_s": round(cpu[role], 3),
                "cpu_pct": round(100 * cpu[role] / seconds, 2),
                **tree_memory(daemon.pid),
                "state_lines_in_window": lines,
            }
        result["wire"] = wire.report(len(scenario.slots))
        result["vip_samples_wrong"] = bad_samples
        result["transitions_logged_in_window"] = logged
        buses = {n: node.nats for n, node in (("master", a), ("backup", b)) if node.nats is not None}
        if buses:
            result["nats_server"] = {n: tree_memory(d.pid) for n, d in buses.items()}
        return result


def ratios(per_impl: dict[str, object]) -> dict[str, float]:
    """lifeline's CPU over keepalived's, per role (the issue's target: within 3x)."""
    k, lf = per_impl.get("keepalived"), per_impl.get("lifeline")
    if not isinstance(k, dict) or not isinstance(lf, dict):
        return {}
    out: dict[str, float] = {}
    for role in ("master", "backup"):
        kc, lc = float(k[role]["cpu_s"]), float(lf[role]["cpu_s"])
        out[role] = round(lc / kc, 2) if kc else float("inf")
    return out


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--impl", nargs="+", choices=IMPLS, default=list(IMPLS))
    parser.add_argument("--scenario", nargs="+", choices=sorted(SCENARIOS), default=list(SCENARIOS))
    parser.add_argument("--duration", type=float, default=300.0, help="observation window, s (issue: 300)")
    parser.add_argument("--quick", action="store_true", help="20 s windows, for development")
    parser.add_argument("--out", help="also write the JSON here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    seconds = 20.0 if args.quick else args.duration
    results: dict[str, object] = {}
    for name in args.scenario:
        per_impl: dict[str, object] = {
            impl: measure_impl(impl, partial(run_impl, impl, SCENARIOS[name], seconds), f"{name} {impl}")
            for impl in args.impl
        }
        per_impl["cpu_ratio_lifeline_over_keepalived"] = ratios(per_impl)
        results[name] = per_impl
    write_report("scale", results, args.out, seconds=seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
