"""The durable outbox's cost: ``Publisher.publish`` with and without the file, and one fsync per event.

What the VRRP loop pays per durable event is ``publish`` (stamp, redact,
encode, one ``write`` to the outbox file); the ``fsync`` runs in a worker
thread, coalesced, and is measured here on its own as what a synchronous
fsync per event would cost.  keepalived has no counterpart: it keeps no
events (its notify scripts run at once or never).  Runs where ``--dir``
points (default: a temp dir under /var/tmp, i.e. the disk); prints one JSON
report.

    .venv/bin/python -m bench.outbox [--events 5000] [--dir DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from shared.bus import Publisher
from shared.bus.outbox_file import OutboxFile
from shared.events import Family, InstanceState, TransitionReason, VrrpState
from shared.lab.report import loadavg, quantile, write_report


def transition(n: int) -> InstanceState:
    return InstanceState(
        instance=f"VI_{n % 50}",
        vrid=51,
        interface="eth0",
        family=Family.INET,
        version=3,
        state=VrrpState.MASTER if n % 2 else VrrpState.BACKUP,
        previous=VrrpState.BACKUP if n % 2 else VrrpState.MASTER,
        base_priority=100,
        effective_priority=100,
        reason=TransitionReason.MASTER_DOWN_TIMER,
        detail=f"bench {n}",
        vips=("10.0.0.100/24",),
    )


def summary_us(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_us": round(quantile(values, 0.5) * 1e6, 1),
        "p99_us": round(quantile(values, 0.99) * 1e6, 1),
        "max_us": round(max(values) * 1e6, 1),
    }


async def publish_times(events: int, outbox: Path | None) -> list[float]:
    """Seconds per ``publish`` call (no NATS: every event stays queued, as during an outage)."""
    publisher = Publisher("bench", max_queued=events + 1, outbox_path=outbox)
    times = []
    for n in range(events):
        t0 = time.perf_counter()
        publisher.publish(transition(n))
        times.append(time.perf_counter() - t0)
    await publisher.close()
    return times


def fsync_times(events: int, path: Path) -> list[float]:
    """Seconds per append + fsync of one event record (what a synchronous policy would cost)."""
    file = OutboxFile(path)
    body = transition(0).detail.encode() * 20
    times = []
    for n in range(events):
        t0 = time.perf_counter()
        file.event(f"b:{n}", body)
        file.sync_now()
        times.append(time.perf_counter() - t0)
    file.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--dir", default="/var/tmp")
    parser.add_argument("--out")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="lifeline-bench-outbox-") as tmp:
        load = loadavg()
        memory = asyncio.run(publish_times(args.events, None))
        durable = asyncio.run(publish_times(args.events, Path(tmp) / "pub" / "vrrp.log"))
        synced = fsync_times(min(args.events, 1000), Path(tmp) / "sync" / "vrrp.log")
        fs = os.statvfs(tmp)
    results: dict[str, object] = {
        "publish_in_memory": summary_us(memory),
        "publish_durable_write": summary_us(durable),
        "append_and_fsync": summary_us(synced),
    }
    write_report("outbox", results, args.out, directory=args.dir, block_size=fs.f_bsize, loadavg=load)


if __name__ == "__main__":
    main()
