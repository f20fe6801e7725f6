"""Checker benchmarks, one JSON object out.

* ``tcp_rate``: TCP_CHECK probes per second on one core (this process is
  single-threaded asyncio) against a listener in another process that accepts
  and closes; CPU seconds of this process per probe.
* ``cpu_10k``: the real scheduler (``RealServerUnit``, retry rules, events
  encoded as they would be for the bus, no NATS) running ``--reals`` real
  servers at ``delay_loop 6``; CPU share of one core over a steady window.
* ``process_death``: a real nats-server and a real checker process tracking a
  fake daemon; time from ``kill -9`` of the daemon to the ``TrackerResult``
  (``ok`` false) arriving at a subscriber, p50/p99 over ``--deaths`` kills.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import msgspec

from shared.lab.nats import free_port

LISTENER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(4096)
while True:
    c, _ = s.accept(); c.close()
"""


def listener(port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", LISTENER, str(port)])


async def tcp_rate(seconds: float, concurrency: int) -> dict[str, object]:
    from services.checker.probes import Target, run_probe
    from shared.config.model_lvs import TcpCheck

    port = free_port()
    proc = listener(port)
    await asyncio.sleep(0.5)
    check = TcpCheck(connect_ip=ipaddress.ip_address("127.0.0.1"), connect_port=port, connect_timeout=2.0)
    target = Target.of(check)
    done = ok = 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done, ok
        while time.perf_counter() < stop:
            r = await run_probe(check, target)
            done += 1
            ok += r.ok

    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
    proc.kill()
    proc.wait()
    return {
        "probes": done,
        "ok": ok,
        "wall_s": round(wall, 2),
        "checks_per_s": round(done / wall),
        "cpu_s": round(cpu, 2),
        "cpu_us_per_check": round(cpu / max(done, 1) * 1e6, 1),
        "checks_per_cpu_s": round(done / max(cpu, 1e-9)),
        "concurrency": concurrency,
        "target": 5000,
    }


async def cpu_many(reals: int, delay_loop: float, seconds: float) -> dict[str, object]:
    from services.checker.dedupe import SingleFlight
    from services.checker.scheduler import RealServerUnit, build_entries
    from shared.config.model import Config
    from shared.config.model_lvs import LvsConfig, RealServer, TcpCheck, VirtualServer
    from shared.events import encode

    ports = [free_port() for _ in range(20)]
    procs = [listener(p) for p in ports]
    await asyncio.sleep(0.5)
    per_addr = len(ports)
    vss = []
    for i in range(0, reals, per_addr):
        addr = ipaddress.ip_address(f"127.1.{i // per_addr // 250}.{i // per_addr % 250 + 1}")
        rss = [
            RealServer(address=addr, port=p, weight=1, checkers=[TcpCheck(
                connect_ip=addr, connect_port=p, connect_timeout=3.0, retry=1, delay_before_retry=1.0,
                delay_loop=delay_loop, warmup=delay_loop)])
            for p in ports[: min(per_addr, reals - i)]
        ]  # fmt: skip
        vss.append(
            VirtualServer(address=addr, port=80, protocol="TCP", delay_loop=delay_loop, real_servers=rss)
        )
    config = Config(lvs=LvsConfig(virtual_servers=vss))
    sent = [0]

    def sink(e: object) -> None:
        encode(e)  # type: ignore[arg-type]
        sent[0] += 1

    flight: SingleFlight[object] = SingleFlight()
    units = [RealServerUnit(k, v, sink, None, flight) for k, v in build_entries(config).items()]  # type: ignore[arg-type]
    for u in units:
        u.start()
    await asyncio.sleep(delay_loop + 1)  # past the warmup spread
    slots = [s for u in units for e in u.entries for s in e.slots]
    fails0 = sum(s.failures_total for s in slots)
    cpu0, t0, runs0, times0 = time.process_time(), time.perf_counter(), flight.runs, os.times()
    await asyncio.sleep(seconds)
    cpu, wall, runs = time.process_time() - cpu0, time.perf_counter() - t0, flight.runs - runs0
    times = os.times()
    user, system = times.user - times0.user, times.system - times0.system
    failures = sum(s.failures_total for s in slots) - fails0
    details = Counter(s.last.detail for s in slots if s.last is not None and not s.last.ok)
    for u in units:
        await u.stop()
    for p in procs:
        p.kill()
        p.wait()
    return {
        "real_servers": reals,
        "delay_loop": delay_loop,
        "window_s": round(wall, 1),
        "probes_per_s": round(runs / wall),
        "events": sent[0],
        "failed_probes": failures,
        "failure_details": dict(details.most_common(3)),
        "cpu_share_of_one_core": round(cpu / wall, 3),
        "user_share": round(user / wall, 3),
        "system_share": round(system / wall, 3),
        "target": 0.30,
    }


async def process_death(deaths: int) -> dict[str, object]:
    import nats

    from shared.events import TrackerResult, decode

    tmp = Path(tempfile.mkdtemp(prefix="bench-checker-"))
    port = free_port()
    server_bin = shutil.which("nats-server") or str(Path(sys.executable).parent / "nats-server")
    argv = [server_bin, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(tmp / "js")]
    nats_proc = subprocess.Popen(argv,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"nats://127.0.0.1:{port}"
    tag = f"bench-daemon-{os.getpid()}"
    daemon_argv = [sys.executable, "-c", "import time; time.sleep(600)", tag]
    conf = tmp / "k.conf"
    conf.write_text(
        'vrrp_track_process d {\n  process ' + " ".join(f'"{a}"' for a in daemon_argv)
        + "\n  full_command\n  weight -10\n}\n"
    )  # fmt: skip
    await asyncio.sleep(0.5)
    checker = subprocess.Popen(
        [sys.executable, "-m", "services.checker", "--config", str(conf), "--node", "bench", "--nats", url,
         "--process-scan", "0.1", "--log-level", "WARNING"],
        cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip
    nc = await nats.connect(url)
    q: asyncio.Queue[tuple[float, TrackerResult]] = asyncio.Queue()

    async def on(msg: object) -> None:
        e = decode(msg.data)  # type: ignore[attr-defined]
        if isinstance(e, TrackerResult) and e.changed:
            await q.put((time.perf_counter(), e))

    await nc.subscribe("lifeline.bench.track.d", cb=on)
    lat: list[float] = []
    try:
        for _ in range(deaths):
            d = subprocess.Popen(daemon_argv)
            while True:
                _, e = await asyncio.wait_for(q.get(), 10)
                if e.ok:
                    break
            await asyncio.sleep(random.uniform(0.05, 0.15))
            t0 = time.perf_counter()
            d.send_signal(signal.SIGKILL)
            while True:
                at, e = await asyncio.wait_for(q.get(), 10)
                if not e.ok:
                    break
            lat.append((at - t0) * 1000)
            d.wait()
    finally:
        await nc.close()
        checker.terminate()
        checker.wait()
        nats_proc.kill()
        nats_proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    lat.sort()
    return {
        "deaths": len(lat),
        "p50_ms": round(statistics.median(lat), 2),
        "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 2),
        "max_ms": round(lat[-1], 2),
        "target_p99_ms": 50,
    }


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--concurrency", type=int, default=256)
    ap.add_argument("--reals", type=int, default=10_000)
    ap.add_argument("--window", type=float, default=24.0)
    ap.add_argument("--deaths", type=int, default=100)
    ap.add_argument("--only", choices=["tcp_rate", "cpu_10k", "process_death"])
    args = ap.parse_args()
    out: dict[str, object] = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": f"{platform.node()} {platform.processor() or platform.machine()} {os.cpu_count()} cpus, "
        f"Linux {platform.release()}, Python {platform.python_version()}",
    }
    if args.only in (None, "tcp_rate"):
        out["tcp_rate"] = await tcp_rate(args.seconds, args.concurrency)
    if args.only in (None, "cpu_10k"):
        out["cpu_10k"] = await cpu_many(args.reals, 6.0, args.window)
    if args.only in (None, "process_death"):
        out["process_death"] = await process_death(args.deaths)
    print(msgspec.json.encode(out).decode())


if __name__ == "__main__":
    asyncio.run(main())
