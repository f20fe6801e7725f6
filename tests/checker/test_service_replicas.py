"""Three checker replicas as real processes: checks shared, ``kill -9`` moves them, restart takes them back.

Owners are predicted with the same rendezvous function the replicas use, and
every event is attributed to its publisher by ``boot_id``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path

from services.checker.sharding import owner
from shared.events import RealServerHealth
from shared.lab.nats import NatsServer
from tests.checker.service_support import Recorder

REPLICAS = ["r1", "r2", "r3"]
N = 12


async def spawn(conf: Path, node: str, url: str, rid: str, log: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.checker", "--config", str(conf), "--node", node, "--nats", url,
        "--replica-id", rid, stdout=log.open("ab"), stderr=asyncio.subprocess.STDOUT,
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip


async def test_three_replicas_share_and_survive_kill_9(tmp_path: Path, nats_server: NatsServer) -> None:
    servers = [await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0) for _ in range(N)]
    ports = [s.sockets[0].getsockname()[1] for s in servers]
    blocks = "".join(
        f"  real_server 127.0.0.1 {p} {{\n    TCP_CHECK {{\n      connect_timeout 0.5\n    }}\n  }}\n"
        for p in ports
    )
    conf = tmp_path / "k.conf"
    conf.write_text(f"virtual_server 127.0.0.1 80 {{\n  delay_loop 0.5\n  protocol TCP\n  lb_algo rr\n"
                    f"  lb_kind NAT\n{blocks}}}\n")  # fmt: skip
    node = f"rep{uuid.uuid4().hex[:6]}"
    rec = await Recorder().start(nats_server.url, node)
    procs = {rid: await spawn(conf, node, nats_server.url, rid, tmp_path / f"{rid}.log") for rid in REPLICAS}
    reals = [f"127.0.0.1:{p}" for p in ports]
    expected = {real: owner(f"rs:{real}", REPLICAS) for real in reals}
    try:
        # steady state: every real server up, published by exactly one replica
        for real in reals:
            await rec.arrival(lambda e, r=real: isinstance(e, RealServerHealth) and e.real == r, timeout=10)
        await asyncio.sleep(1.5)
        window_start = time.perf_counter()
        await asyncio.sleep(1.5)
        publishers: dict[str, set[str]] = defaultdict(set)
        for at, e in rec.events:
            if at >= window_start and isinstance(e, RealServerHealth):
                publishers[e.real].add(e.boot_id)
        assert all(len(publishers[r]) == 1 for r in reals), publishers
        boot_of: dict[str, str] = {}
        for real in reals:
            boot_of.setdefault(expected[real] or "", next(iter(publishers[real])))
        assert len(set(boot_of.values())) == 3  # all three replicas work

        # kill -9 one replica: its checks move within 3 s
        victim = expected[reals[0]] or ""
        dead_boot = boot_of[victim]
        moved = [r for r in reals if expected[r] == victim]
        t_kill = time.perf_counter()
        procs[victim].send_signal(signal.SIGKILL)
        await procs[victim].wait()
        for real in moved:
            at, _ = await rec.arrival(
                lambda e, r=real: isinstance(e, RealServerHealth) and e.real == r and e.boot_id != dead_boot,
                timeout=5,
                since=0,
            )
            assert at - t_kill < 3.0, f"{real} took {at - t_kill:.2f}s to move"

        # restart it: it takes exactly its share back
        n = len(rec.events)
        procs[victim] = await spawn(conf, node, nats_server.url, victim, tmp_path / f"{victim}.2.log")
        new_boot = ""
        for real in moved:
            _, e = await rec.arrival(
                lambda e, r=real: (
                    isinstance(e, RealServerHealth) and e.real == r and e.boot_id not in boot_of.values()
                ),
                timeout=10,
                since=n,
            )
            new_boot = e.boot_id
        await asyncio.sleep(1.5)
        tail_start = time.perf_counter()
        await asyncio.sleep(1.5)
        for at, e in rec.events:
            if at >= tail_start and isinstance(e, RealServerHealth) and e.real in moved:
                assert e.boot_id == new_boot

        # no flapping at any time: every server was up throughout, one "changed" event each at the start
        health = [e for _, e in rec.events if isinstance(e, RealServerHealth)]
        assert all(e.up for e in health)
        for real in reals:
            assert sum(e.changed for e in health if e.real == real) == 1, real
    finally:
        for p in procs.values():
            if p.returncode is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                await asyncio.wait_for(p.wait(), 5)
            except TimeoutError:
                os.kill(p.pid, signal.SIGKILL)
                await p.wait()
        for s in servers:
            s.close()
        await rec.close()
