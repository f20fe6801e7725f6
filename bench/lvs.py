"""Benchmark: program 2,500 virtual services with 40,000 real servers, then a 1 % reload; ours vs keepalived.

Why in a VM: IPVS is not in the host kernel, so ``--vm`` boots Debian's kernel
once (shared/lab/vm.py) and runs ``--inside`` there: our engine from an
empty table, a reload changing 1 % of the real servers' weights, release; then
``keepalived -n -l -C`` (checker process only) on the same file, timed by
polling the kernel until it holds the whole table, and again after SIGHUP.
``--dry`` measures our user-space cost alone on the host (diff + netlink
encoding, no kernel), which separates our code from emulation overhead.
Output: one JSON document on stdout.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from shared.lab.errors import LabError
from shared.lab.report import keepalived_version, print_json
from shared.lab.vm import bench_in_vm
from shared.lab.wait import wait_until

N_VS = 2500
RS_PER_VS = 16


def make_config(n_vs: int = N_VS, per_vs: int = RS_PER_VS, bumped: int = 0) -> str:
    """``n_vs`` TCP rr NAT services on 10.1.x.y:80, ``per_vs`` real servers each, no checkers.

    ``bumped``: how many real servers (spread over the table) get weight 2 instead of 1.
    """
    lines: list[str] = []
    total = n_vs * per_vs
    step = max(1, total // bumped) if bumped else 0
    for v in range(n_vs):
        lines.append(f"virtual_server 10.1.{v // 250}.{v % 250 + 1} 80 {{")
        lines += ["  lb_algo rr", "  lb_kind NAT", "  protocol TCP"]
        for r in range(per_vs):
            index = v * per_vs + r
            weight = 2 if step and index % step == 0 else 1
            lines.append(f"  real_server 10.2.{r}.{v % 250 + 1 + 0} {8000 + v // 250} {{ weight {weight} }}")
        lines.append("}")
    return "\n".join(lines) + "\n"


def _count_dests() -> tuple[int, int]:
    from services.lvs.kernel.ipvs import Ipvs

    ipvs = Ipvs()
    try:
        table = ipvs.read_table()
    finally:
        ipvs.close()
    return len(table), sum(len(e.dests) for e in table.values())


def _ipvsadm_dests() -> list[int]:
    """Weights of every real server, from ``ipvsadm -Ln`` (C, so polling costs little next to Python)."""
    out = subprocess.run(["ipvsadm", "-Ln"], capture_output=True, text=True, check=True).stdout
    rows = (line.split() for line in out.splitlines() if line.startswith("  -> "))
    return [int(words[3]) for words in rows if words[3].isdigit()]


def _weight_sum() -> int:
    return sum(_ipvsadm_dests())


def bench_ours(conf: Path, changed: Path) -> dict[str, Any]:
    from services.lvs.engine import Engine
    from services.lvs.kernel.ipvs import Ipvs
    from shared.config.load import load

    t0 = time.perf_counter()
    lvs = load(str(conf)).config.lvs
    parse = time.perf_counter() - t0
    ipvs = Ipvs()
    engine = Engine(ipvs, lvs)
    start = engine.reconcile("start")
    services, dests = _count_dests()
    t1 = time.perf_counter()
    lvs2 = load(str(changed)).config.lvs
    parse2 = time.perf_counter() - t1
    reload = engine.reload(lvs2)
    t2 = time.perf_counter()
    engine.release()
    release = time.perf_counter() - t2
    ipvs.close()
    return {
        "parse_s": round(parse, 2),
        "program_from_empty_s": round(start.seconds, 2),
        "program_ops": start.ops,
        "kernel_services": services,
        "kernel_dests": dests,
        "reload_parse_s": round(parse2, 2),
        "reload_s": round(reload.seconds, 2),
        "reload_ops": reload.kinds,
        "release_s": round(release, 2),
    }


def bench_keepalived(conf: Path, changed: Path, total: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="ka-bench-"))
    live = work / "keepalived.conf"
    live.write_text(conf.read_text())
    argv = ["keepalived", "-n", "-l", "-C", "-f", str(live), "-p", str(work / "k.pid")]
    argv += ["-c", str(work / "c.pid"), "-r", str(work / "v.pid")]
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(
            "keepalived to program every destination", lambda: len(_ipvsadm_dests()) >= total, 900, 0.25
        )
        program = time.monotonic() - started
        base = _weight_sum()
        live.write_text(changed.read_text())
        t = time.monotonic()
        proc.send_signal(signal.SIGHUP)
        wait_until("keepalived to apply the reload", lambda: _weight_sum() > base, 900, 0.25)
        reload = time.monotonic() - t
    finally:
        t = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(300)
        stop = time.monotonic() - t
    return {
        "version": keepalived_version(),
        "program_from_empty_s": round(program, 2),
        "reload_s_upper_bound": round(reload, 2),
        "stop_s": round(stop, 2),
        "note": "timed by polling `ipvsadm -Ln` (whole table per poll; resolution = one dump)",
    }


def bench_dry(n_vs: int, per_vs: int) -> dict[str, Any]:
    """Our user-space cost without a kernel: config -> desired -> diff -> netlink bytes."""
    from services.lvs.core.desired import build_plans, plan_table
    from services.lvs.core.pool import Pool
    from services.lvs.core.reconcile import diff
    from services.lvs.kernel import ipvs_codec as codec
    from services.lvs.kernel.ipvs_reference import IpvsMsg, dest_nla, service_nla
    from shared.config.load import load

    with tempfile.TemporaryDirectory() as d:
        conf = Path(d) / "k.conf"
        conf.write_text(make_config(n_vs, per_vs))
        t = time.perf_counter()
        lvs = load(str(conf)).config.lvs
        parse = time.perf_counter() - t
    t = time.perf_counter()
    table = {}
    for plan in build_plans(lvs).values():
        table.update(plan_table(plan, Pool(plan).members()))
    ops = diff({}, table)
    plan_s = time.perf_counter() - t
    t = time.perf_counter()
    for op in ops:
        body = codec.nla(codec.CMD_ATTR_SERVICE, codec.service_attrs_bytes(op.service, None))
        if op.dest is not None:
            body += codec.nla(codec.CMD_ATTR_DEST, codec.dest_attrs_bytes(op.dest, op.dest_attrs))
        codec.message(0x20, 5, 1, 5, body)
    encode = time.perf_counter() - t
    t = time.perf_counter()
    for op in ops[:2000]:
        msg = IpvsMsg()
        msg["cmd"] = 1
        msg["version"] = 1
        attrs: list[tuple[str, Any]] = [("IPVS_CMD_ATTR_SERVICE", {"attrs": service_nla(op.service, None)})]
        if op.dest is not None:
            attrs.append(("IPVS_CMD_ATTR_DEST", {"attrs": dest_nla(op.dest, op.dest_attrs)}))
        msg["attrs"] = attrs
        msg.encode()
    pyroute2_per_op = (time.perf_counter() - t) / min(len(ops), 2000)
    return {
        "ops": len(ops),
        "parse_s": round(parse, 2),
        "plan_and_diff_s": round(plan_s, 2),
        "netlink_encode_s": round(encode, 2),
        "pyroute2_genlmsg_encode_would_take_s": round(pyroute2_per_op * len(ops), 2),
    }


def inside(args: argparse.Namespace) -> dict[str, Any]:
    subprocess.run(["modprobe", "ip_vs"], check=True)
    work = Path(tempfile.mkdtemp(prefix="lvs-bench-"))
    conf, changed = work / "k.conf", work / "k2.conf"
    total = args.vs * args.rs
    conf.write_text(make_config(args.vs, args.rs))
    changed.write_text(make_config(args.vs, args.rs, bumped=total // 100))
    out: dict[str, Any] = {
        "virtual_services": args.vs,
        "real_servers": total,
        "ours": bench_ours(conf, changed),
    }
    if not args.no_keepalived:
        try:
            out["keepalived"] = bench_keepalived(conf, changed, total)
        except (OSError, LabError, subprocess.SubprocessError) as exc:
            out["keepalived"] = {"error": str(exc)}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.lvs", description=__doc__)
    p.add_argument("--vs", type=int, default=N_VS)
    p.add_argument("--rs", type=int, default=RS_PER_VS, help="real servers per virtual service")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--vm", action="store_true", help="boot the Debian kernel and run --inside there")
    mode.add_argument("--inside", action="store_true", help="run against this kernel (needs ip_vs)")
    mode.add_argument("--dry", action="store_true", help="user-space cost only, no kernel")
    p.add_argument("--no-keepalived", action="store_true")
    p.add_argument("--out", help="also write the JSON here")
    args = p.parse_args(argv)
    meta = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.node()} {platform.machine()}"}
    if args.dry:
        result: dict[str, Any] = {**meta, "dry": bench_dry(args.vs, args.rs)}
    elif args.inside:
        result = {**meta, "kernel": platform.release(), **inside(args)}
    else:
        cmd = [
            "--vs",
            str(args.vs),
            "--rs",
            str(args.rs),
            *(["--no-keepalived"] if args.no_keepalived else []),
        ]
        got = bench_in_vm("bench.lvs", cmd, prefix="lvs-bench-vm-", timeout=3600)
        if got is None:
            return 1
        result = {**got, **meta}
    print_json(result, args.out)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.exit(main())
