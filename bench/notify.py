"""Notifier benchmark: event published → script started / mail accepted, and sustained events per second.

Everything is real: a private nats-server with JetStream, the notifier service
in-process (its sinks, durable consumers and lease as in production), real
``/bin/sh`` scripts, aiosmtpd as the mail server, and a minimal HTTP server for
the webhook.  Latencies are from the event's ``ts`` (stamped by the publisher
when the producer calls ``publish``) to the moment the script's first command
ran / the SMTP server got the DATA; they include the stream write, the
consumer fetch and, for scripts, fork/exec.  Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session

from services.notifier.consumers import sink_consumers
from services.notifier.service import NotifierOptions, NotifierService
from shared.bus import Publisher, connect
from shared.bus.provision import node_plan, provision
from shared.config.load import load
from shared.events import InstanceState, VrrpState
from shared.lab.nats import NatsServer, free_port
from shared.lab.wait import await_until
from shared.settings import Settings, SinkSettings

DELIVERY = {"ack_wait": 10.0, "initial_delay": 0.05, "max_delay": 0.5}
STEP = 0.005
"""Seconds between two looks at the sinks' output: the end of a run is timed, so look often."""


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def summary(values_ms: list[float]) -> dict[str, float]:
    return {"n": len(values_ms), "p50_ms": pct(values_ms, 0.5), "p99_ms": pct(values_ms, 0.99),
            "mean_ms": round(statistics.fmean(values_ms), 2)}  # fmt: skip


def write_conf(path: Path, instances: int, gd: str = "", notify: str = "") -> Path:
    body = [f"global_defs {{\n  router_id bench\n{gd}}}\n"]
    for n in range(instances):
        body.append(
            f"vrrp_instance VI_{n} {{\n  interface lo\n  virtual_router_id {n % 250 + 1}\n"
            f"  virtual_ipaddress {{\n    10.{n // 250}.{n % 250}.1\n  }}\n"
            + (f'  notify "{notify}"\n' if notify else "")
            + "}\n"
        )
    path.write_text("".join(body))
    return path


def event(n: int, i: int) -> InstanceState:
    state = VrrpState.MASTER if i % 2 == 0 else VrrpState.BACKUP
    return InstanceState(instance=f"VI_{n}", vrid=n % 250 + 1, interface="lo", state=state,
                         base_priority=100, effective_priority=100)  # fmt: skip


async def run_service(
    conf: Path, url: str, settings: Settings | None = None
) -> tuple[NotifierService, Publisher]:
    opts = NotifierOptions(health=False, delivery=dict(DELIVERY))
    config, chosen = load(conf).config, settings or Settings(node="bench")
    svc = NotifierService(config, chosen, node="bench", nats_url=url, options=opts)
    consumers = sink_consumers(config, chosen, "bench", health=opts.health, delivery=opts.delivery)
    admin = await connect(url, "bench-provision")  # as the admin does before the notifier starts
    await provision(admin, node_plan("bench", consumers, lease_ttl=opts.lease_ttl))
    await admin.close()
    await svc.start()
    nc = await connect(url, "bench-pub")
    pub = Publisher("bench")
    await pub.start(nc)
    await pub.ready.wait()
    return svc, pub


async def script_latency(server: NatsServer, work: Path, count: int, gap: float) -> dict[str, Any]:
    out = work / "started"
    script = work / "stamp.sh"
    script.write_text(f'#!/bin/sh\necho "$LIFELINE_SEQ $LIFELINE_TS $(date +%s%N)" >> {out}\n')
    script.chmod(0o755)
    svc, pub = await run_service(write_conf(work / "lat.conf", 4, notify=str(script)), server.url)
    try:
        for i in range(count):
            pub.publish(event(i % 4, i))
            await asyncio.sleep(gap)
        await await_until(f"{count} script runs", lambda: len(lines(out)) >= count, 60, STEP)
    finally:
        await pub.close()
        await svc.stop()
    rows = [line.split() for line in out.read_text().splitlines()]
    return summary([(int(started) - int(ts)) / 1e6 for _seq, ts, started in rows])


class Mailbox:
    def __init__(self) -> None:
        self.accepted: list[tuple[int, str]] = []

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        now = time.time_ns()
        text = envelope.content.decode() if isinstance(envelope.content, bytes) else str(envelope.content)
        mid = next(line for line in text.splitlines() if line.startswith("Message-ID: "))
        self.accepted.append((now, mid))
        return "250 OK"


async def mail_latency(server: NatsServer, work: Path, count: int, gap: float) -> dict[str, Any]:
    port = free_port()
    box = Mailbox()
    smtp = Controller(box, hostname="127.0.0.1", port=port)
    smtp.start()
    gd = (f"  notification_email {{\n    ops@example.net\n  }}\n  smtp_server 127.0.0.1 {port}\n"
          "  smtp_helo_name bench.example\n  smtp_alert\n")  # fmt: skip
    svc, pub = await run_service(write_conf(work / "mail.conf", 4, gd), server.url)
    sent: dict[str, int] = {}
    try:
        for i in range(count):
            stamped = pub.publish(event(i % 4, i // 4))  # alternate per instance: every one mails
            sent[f"Message-ID: <lifeline.{stamped.boot_id}.{stamped.seq}@bench.example>"] = stamped.ts
            await asyncio.sleep(gap)
        await await_until(f"{count} mails", lambda: len(box.accepted) >= count, 60, STEP)
    finally:
        await pub.close()
        await svc.stop()
        smtp.stop()
    return summary([(at - sent[mid]) / 1e6 for at, mid in box.accepted])


async def script_throughput(server: NatsServer, work: Path, count: int, instances: int) -> dict[str, Any]:
    out = work / "done"
    script = work / "count.sh"
    script.write_text(f'#!/bin/sh\necho "$LIFELINE_SEQ" >> {out}\n')
    script.chmod(0o755)
    svc, pub = await run_service(write_conf(work / "tp.conf", instances, notify=str(script)), server.url)
    try:
        start = time.monotonic()
        for i in range(count):
            pub.publish(event(i % instances, i // instances))
        await await_until(f"{count} script runs", lambda: len(lines(out)) >= count, 120, STEP)
        elapsed = time.monotonic() - start
    finally:
        await pub.close()
        await svc.stop()
    return {"events": count, "instances": instances, "seconds": round(elapsed, 2),
            "events_per_s": round(count / elapsed, 1)}  # fmt: skip


async def webhook_throughput(server: NatsServer, work: Path, count: int, instances: int) -> dict[str, Any]:
    received = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal received
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")
        )
        await reader.readexactly(length)
        received += 1
        writer.write(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    http = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = http.sockets[0].getsockname()[1]
    hook = SinkSettings(name="webhook", kind="webhook", options={"url": f"http://127.0.0.1:{port}/hook"})
    settings = Settings(node="bench", sinks=[hook])
    svc, pub = await run_service(write_conf(work / "wh.conf", instances), server.url, settings)
    try:
        start = time.monotonic()
        for i in range(count):
            pub.publish(event(i % instances, i // instances))
        await await_until(f"{count} webhook calls", lambda: received >= count, 120, STEP)
        elapsed = time.monotonic() - start
    finally:
        await pub.close()
        await svc.stop()
        http.close()
    return {"events": count, "instances": instances, "seconds": round(elapsed, 2),
            "events_per_s": round(count / elapsed, 1)}  # fmt: skip


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="lifeline-bench-notify-") as tmp:
        work = Path(tmp)
        server = NatsServer(work / "nats")
        server.start()
        try:
            results: dict[str, Any] = {
                "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "machine": {
                    "platform": platform.platform(),
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                },
            }
            results["script_started"] = await script_latency(server, work, args.latency_events, args.gap)
            results["mail_accepted"] = await mail_latency(server, work, args.mail_events, args.gap)
            results["script_throughput"] = await script_throughput(server, work, args.burst, args.instances)
            results["webhook_throughput"] = await webhook_throughput(server, work, args.burst, args.instances)
            return results
        finally:
            server.kill()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--latency-events", type=int, default=300)
    p.add_argument("--mail-events", type=int, default=200)
    p.add_argument("--gap", type=float, default=0.01, help="seconds between latency events")
    p.add_argument("--burst", type=int, default=2000)
    p.add_argument("--instances", type=int, default=50)
    print(json.dumps(asyncio.run(main_async(p.parse_args())), indent=2))


if __name__ == "__main__":
    main()
