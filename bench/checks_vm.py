"""Benchmark: the same 1,000 TCP real servers checked by keepalived's checker and by ours, CPU ratio.

Why in a VM: keepalived's checker (``keepalived -n -l -C``) programs IPVS
before it checks anything and IPVS is not in the host kernel, so ``--vm`` boots
Debian's kernel once (shared/lab/vm.py, as bench/lvs.py does) and runs
``--inside`` there:

* one listener process (``selectors``/epoll, no asyncio) listens on 1,000
  ports of 127.0.0.1, accepts and closes, and keeps a running accept count in a
  file: that count, split by window, is the probe rate of whichever checker is
  running (the same meter for both);
* one keepalived.conf: ``--vs`` virtual servers whose ``--reals`` real servers
  in total are those listeners, each with ``TCP_CHECK``, ``delay_loop 6``;
* keepalived's checker on it, then (after it is stopped) nats-server and our
  checker on it, one after the other so they never share the 2 vCPUs; each is
  warmed up until the accept rate reaches 90 % of ``reals / delay_loop``, then
  measured for ``--window`` seconds: utime+stime (+ reaped children) of the
  whole process tree from /proc/PID/stat, nats-server's separately.

Output: one JSON document on stdout. Everything runs under TCG emulation
(no KVM), so absolute numbers are inflated; the ratio is the result.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from shared.lab.errors import LabError
from shared.lab.nats import free_port
from shared.lab.report import print_json
from shared.lab.vm import bench_in_vm
from shared.lab.wait import wait_until

REALS = 1000
N_VS = 10
DELAY_LOOP = 6
BASE_PORT = 20000
TICK = os.sysconf("SC_CLK_TCK")

LISTENER = r"""
import os, selectors, socket, sys, time
base, n, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
sel = selectors.EpollSelector()
for p in range(base, base + n):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", p)); s.listen(128); s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
count, last = 0, 0.0
tmp = out + ".tmp"
while True:
    for key, _ in sel.select(0.5):
        try:
            c, _ = key.fileobj.accept()
        except OSError:
            continue
        c.close(); count += 1
    now = time.monotonic()
    if now - last >= 0.5:
        with open(tmp, "w") as f:
            f.write(f"{count}\n")
        os.replace(tmp, out); last = now
"""


def make_config(n_vs: int, reals: int, delay_loop: int, base_port: int = BASE_PORT) -> str:
    lines: list[str] = []
    per = reals // n_vs
    for v in range(n_vs):
        lines.append(f"virtual_server 10.1.0.{v + 1} 80 {{")
        lines += [f"  delay_loop {delay_loop}", "  lb_algo rr", "  lb_kind NAT", "  protocol TCP"]
        count = per if v < n_vs - 1 else reals - per * (n_vs - 1)
        for r in range(count):
            port = base_port + v * per + r
            lines.append(f"  real_server 127.0.0.1 {port} {{")
            lines.append("    weight 1")
            lines.append("    TCP_CHECK {")
            lines.append("      connect_timeout 3")
            lines.append("    }")
            lines.append("  }")
        lines.append("}")
    return "\n".join(lines) + "\n"


def _stat(pid: int, fields_from: int = 11, fields_to: int = 15) -> tuple[int, int] | None:
    """(ppid, utime+stime+cutime+cstime in ticks) of ``pid``, None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    # fields[0] is state (field 3); utime is field 14 -> fields[11].
    return int(fields[1]), sum(int(x) for x in fields[fields_from:fields_to])


def tree_cpu(root: int, part: str = "all") -> float:
    """CPU seconds of ``root`` and all its live descendants (reaped children included via cutime).

    ``part``: "all", "user" (utime+cutime) or "system" (stime+cstime).
    """
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            if part == "all":
                st = _stat(int(entry))
            else:
                a = _stat(int(entry), 11, 12) if part == "user" else _stat(int(entry), 12, 13)
                b = _stat(int(entry), 13, 14) if part == "user" else _stat(int(entry), 14, 15)
                st = None if a is None or b is None else (a[0], a[1] + b[1])
            if st is not None:
                parents[int(entry)], ticks[int(entry)] = st
    keep = {root}
    changed = True
    while changed:
        changed = False
        for pid, ppid in parents.items():
            if ppid in keep and pid not in keep:
                keep.add(pid)
                changed = True
    return sum(ticks.get(p, 0) for p in keep) / TICK


def tree_names(root: int) -> list[str]:
    names = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st is not None and (int(entry) == root or st[0] == root):
                with contextlib.suppress(OSError):
                    names.append(Path(f"/proc/{entry}/comm").read_text().strip())
    return names


class Meter:
    def __init__(self, path: Path) -> None:
        self.path = path

    def count(self) -> int:
        try:
            return int(self.path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return 0

    def warm(self, expected_rate: float, timeout: float, span: float = 6.0) -> float:
        """Wait until the accept rate over ``span`` s reaches 90 % of ``expected_rate``; seconds waited."""
        samples: list[tuple[float, int]] = []

        def rate_reached() -> bool:
            now = time.monotonic()
            samples.append((now, self.count()))
            old = [s for s in samples if now - s[0] >= span]
            if not old:
                return False
            t0, c0 = old[-1]
            return (samples[-1][1] - c0) / (now - t0) >= 0.9 * expected_rate

        took = wait_until(f"a probe rate of {0.9 * expected_rate:.0f}/s", rate_reached, timeout, 1.0)
        return round(took, 1)


def measure(meter: Meter, root: int, window: float, extra: dict[str, int]) -> dict[str, Any]:
    c0, cpu0, t0 = meter.count(), tree_cpu(root), time.monotonic()
    user0 = tree_cpu(root, "user")
    extra0 = {k: tree_cpu(p) for k, p in extra.items()}
    time.sleep(window)
    c1, cpu1, t1 = meter.count(), tree_cpu(root), time.monotonic()
    user = tree_cpu(root, "user") - user0
    wall = t1 - t0
    cpu = cpu1 - cpu0
    out: dict[str, Any] = {
        "window_s": round(wall, 1),
        "probes": c1 - c0,
        "probes_per_s": round((c1 - c0) / wall, 1),
        "cpu_s": round(cpu, 2),
        "cpu_share_of_one_core": round(cpu / wall, 4),
        "user_s": round(user, 2),
        "system_s": round(cpu - user, 2),
        "cpu_us_per_probe": round(cpu / max(c1 - c0, 1) * 1e6, 1),
    }
    for k, p in extra.items():
        out[f"{k}_cpu_s"] = round(tree_cpu(p) - extra0[k], 2)
    return out


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 60) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _keepalived_version() -> str:
    proc = subprocess.run(["keepalived", "-v"], capture_output=True, text=True, check=False)
    return (proc.stderr or proc.stdout).split("\n")[0]


def _ipvs_dests() -> int:
    out = subprocess.run(["ipvsadm", "-Ln"], capture_output=True, text=True, check=False).stdout
    return sum(1 for line in out.splitlines() if line.startswith("  -> ") and "RemoteAddress" not in line)


def run_keepalived(conf: Path, work: Path, meter: Meter, args: argparse.Namespace) -> dict[str, Any]:
    argv = ["keepalived", "-n", "-l", "-C", "-f", str(conf), "-p", str(work / "k.pid")]
    argv += ["-c", str(work / "c.pid"), "-r", str(work / "v.pid")]
    log = open(work / "keepalived.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        warm = meter.warm(args.reals / args.delay_loop, args.warm_timeout)
        dests = _ipvs_dests()
        names = tree_names(proc.pid)
        result = measure(meter, proc.pid, args.window, {})
    finally:
        _stop(proc)
        log.close()
    return {
        "version": _keepalived_version(),
        "argv": " ".join(argv),
        "processes": names,
        "ipvs_dests_programmed": dests,
        "warmup_s": warm,
        **result,
    }


def run_ours(conf: Path, work: Path, meter: Meter, args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    server = shutil.which("nats-server") or str(Path(sys.executable).parent / "nats-server")
    nats = subprocess.Popen(
        [server, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(work / "js")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)
    log = open(work / "checker.log", "wb")  # noqa: SIM115
    module = "bench._checker_nopub" if args.ours_variant == "nopub" else "services.checker"
    argv = [sys.executable, "-m", module, "--config", str(conf), "--node", "bench"]
    argv += ["--nats", f"nats://127.0.0.1:{port}", "--log-level", "WARNING"]
    started = time.monotonic()
    proc = subprocess.Popen(
        argv, stdout=log, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[1]
    )
    try:
        warm = meter.warm(args.reals / args.delay_loop, args.warm_timeout)
        startup = round(time.monotonic() - started, 1)
        result = measure(meter, proc.pid, args.window, {"nats_server": nats.pid})
    finally:
        _stop(proc)
        _stop(nats, signal.SIGKILL)
        log.close()
    return {
        "argv": f"python -m {module} --config CONF --node bench --nats URL --log-level WARNING",
        "start_to_full_rate_s": startup,
        "warmup_s": warm,
        **result,
    }


def inside(args: argparse.Namespace) -> dict[str, Any]:
    subprocess.run(["modprobe", "ip_vs"], check=True)
    work = Path(tempfile.mkdtemp(prefix="checks-vm-"))
    conf = work / "keepalived.conf"
    conf.write_text(make_config(args.vs, args.reals, args.delay_loop))
    counter = work / "accepts"
    listener = subprocess.Popen(
        [sys.executable, "-c", LISTENER, str(BASE_PORT), str(args.reals), str(counter)]
    )
    meter = Meter(counter)
    out: dict[str, Any] = {
        "real_servers": args.reals,
        "virtual_servers": args.vs,
        "delay_loop": args.delay_loop,
        "expected_probes_per_s": round(args.reals / args.delay_loop, 1),
        "cpus": os.cpu_count(),
    }
    try:

        def listening() -> bool:
            if listener.poll() is not None:
                raise RuntimeError(f"the listener exited with {listener.returncode}")
            return counter.exists()

        wait_until("the listener to start", listening, 120, 0.5)
        steps = ["keepalived", "ours"] if args.only is None else [args.only]
        for step in steps:
            try:
                if step == "keepalived":
                    out["keepalived"] = run_keepalived(conf, work, meter, args)
                else:
                    out["ours"] = run_ours(conf, work, meter, args)
            except (OSError, LabError, subprocess.SubprocessError) as exc:
                out[step] = {"error": str(exc)}
                logf = work / ("keepalived.log" if step == "keepalived" else "checker.log")
                if logf.exists():
                    out[step]["log_tail"] = logf.read_text(errors="replace")[-2000:]
            time.sleep(2.0)
        out["listener_cpu_s_total"] = round(tree_cpu(listener.pid), 2)
    finally:
        _stop(listener, signal.SIGKILL)
    ka, ours = out.get("keepalived", {}), out.get("ours", {})
    if ka.get("cpu_s") and ours.get("cpu_s") is not None:
        out["ratio_cpu_ours_over_keepalived"] = round(ours["cpu_s"] / ka["cpu_s"], 2)
        if ka.get("cpu_us_per_probe") and ours.get("cpu_us_per_probe"):
            out["ratio_cpu_per_probe_ours_over_keepalived"] = round(
                ours["cpu_us_per_probe"] / ka["cpu_us_per_probe"], 2
            )
        if ours.get("nats_server_cpu_s") is not None:
            out["ratio_cpu_ours_plus_nats_over_keepalived"] = round(
                (ours["cpu_s"] + ours["nats_server_cpu_s"]) / ka["cpu_s"], 2
            )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.checks_vm", description=__doc__)
    p.add_argument("--reals", type=int, default=REALS)
    p.add_argument("--vs", type=int, default=N_VS)
    p.add_argument("--delay-loop", type=int, default=DELAY_LOOP)
    p.add_argument("--window", type=float, default=60.0)
    p.add_argument("--warm-timeout", type=float, default=150.0)
    p.add_argument("--only", choices=["keepalived", "ours"])
    p.add_argument(
        "--ours-variant",
        choices=["real", "nopub"],
        default="real",
        help="nopub: our checker with event delivery cut off (bench/_checker_nopub.py), for the cost split",
    )
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--vm", action="store_true", help="boot the Debian kernel and run --inside there")
    mode.add_argument("--inside", action="store_true", help="run against this kernel (needs ip_vs)")
    p.add_argument("--out", help="also write the JSON here")
    args = p.parse_args(argv)
    meta = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": f"{platform.node()} {platform.machine()}",
    }
    if args.inside:
        result: dict[str, Any] = {**meta, "kernel": platform.release(), **inside(args)}
    else:
        cmd = ["--reals", str(args.reals), "--vs", str(args.vs), "--delay-loop", str(args.delay_loop)]
        cmd += ["--window", str(args.window), "--warm-timeout", str(args.warm_timeout)]
        cmd += ["--only", args.only] if args.only else []
        cmd += ["--ours-variant", args.ours_variant]
        got = bench_in_vm("bench.checks_vm", cmd, prefix="checks-vm-", timeout=900)
        if got is None:
            return 1
        result = {**got, **meta}
    print_json(result, args.out)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.exit(main())
