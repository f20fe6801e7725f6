"""Reloading the notifier against a real nats-server: every event once per sink, whatever the reloads do.

- During a burst of ``InstanceState`` events the configuration flips, several
  times, between two files: the second one swaps the notify script (tag ``A``
  → ``B``: same script file, another argument) and adds ``vrrp_notify_fifo``;
  the first takes both back.  Every event runs exactly one script, in order
  per instance; a script started before a swap began cannot carry the new
  tag, and an event published after a swap returned cannot carry the old
  one.  The FIFO only ever gets events stored while it was configured (its
  consumer is created at the reload and deleted at the removal: a re-added
  FIFO does not replay the time it was away), and, once added for good,
  every later one.
- ``python -m services.notifier`` with SIGHUP: a valid file applies (the
  runner's ``reloaded:`` line, a ``ServiceReload``), a broken one changes
  nothing and is published with its ``file:line`` errors.
- Two replicas: the bus ``reload`` endpoint reaches one of them, and that
  one passes it on, so both reload and the reply says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import select
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest
from nats.aio.msg import Msg

from shared.config.load import load
from shared.events import (
    EVENT_STREAM,
    InstanceState,
    ReloadReply,
    ServiceReload,
    decode,
    reload_subject,
    service_reload_subject,
)
from shared.lab.nats import NatsServer
from shared.lab.wait import await_until
from tests.notifier.test_delivery_support import (
    NotifierProcess,
    flip,
    instance_block,
    provisioned,
    publisher,
    service,
    start,
    transition,
    write_config,
)

pytestmark = pytest.mark.nats

INSTANCES = 4


def tagged_recorder(path: Path, out: Path) -> Path:
    """A notify script appending ``TAG INSTANCE NAME STATE PRIO seq=N attempt=A start=NS`` (one write)."""
    path.write_text(
        "#!/bin/sh\n"
        "start=$(date +%s%N)\n"
        "sleep 0.005\n"
        'printf "%s seq=%s attempt=%s start=%s\\n" "$*" "$LIFELINE_SEQ" "$LIFELINE_ATTEMPT" "$start"'
        f' >> "{out}"\n'
    )
    path.chmod(0o755)
    return path


def write_conf(conf: Path, rec: Path, tag: str, fifo: Path | None = None, vrid0: int = 50) -> Path:
    global_defs = f"  vrrp_notify_fifo {fifo}\n" if fifo is not None else ""
    blocks = [instance_block(f"VI_{n}", vrid0 + n, f"{rec} {tag}") for n in range(INSTANCES)]
    return write_config(conf, global_defs=global_defs, instances=blocks)


@dataclass(frozen=True)
class Run:
    """One line of the recorder's output."""

    tag: str
    instance: str
    seq: int
    start: int


def runs(out: Path) -> list[Run]:
    parsed: list[Run] = []
    for line in out.read_text().splitlines() if out.exists() else []:
        words = line.split()
        fields = dict(w.split("=", 1) for w in words if "=" in w)
        parsed.append(Run(words[0], words[2], int(fields["seq"]), int(fields["start"])))
    return parsed


class FifoReader(threading.Thread):
    """Holds the FIFO open read-write (no EOF when the sink goes away) and keeps every byte."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        os.mkfifo(path, 0o644)
        self.fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
        self.data = bytearray()
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            ready, _, _ = select.select([self.fd], [], [], 0.05)
            if ready:
                with contextlib.suppress(BlockingIOError):
                    self.data += os.read(self.fd, 65536)

    def stop(self) -> None:
        self.done.set()
        self.join(5)
        os.close(self.fd)

    def priorities(self) -> list[int]:
        """``INSTANCE "VI_1" MASTER 17`` → 17 (the test's event number)."""
        return [int(line.split()[-1]) for line in bytes(self.data).decode().splitlines()]


@dataclass(frozen=True)
class Boundary:
    """One reload: when it began and returned, the stream's last sequence then, what it wanted."""

    t0: int
    t1: int
    last_before: int
    last_after: int
    tag: str
    fifo: bool
    summary: str


async def test_reloads_during_a_burst_deliver_every_event_once_per_sink(
    tmp_path: Path, server: NatsServer, nc: Any
) -> None:
    out, fifo = tmp_path / "out", tmp_path / "v.fifo"
    rec = tagged_recorder(tmp_path / "rec.sh", out)
    reader = FifoReader(fifo)
    reader.start()
    conf = write_conf(tmp_path / "k.conf", rec, "A")
    svc = service(conf, "n1", server.url)
    await start(svc)
    js = nc.jetstream()
    pub = await publisher(nc, "n1")
    published: dict[int, InstanceState] = {}  # by priority = the test's event number

    reloaded = asyncio.Event()

    async def burst() -> None:
        """Every 5 ms, until 100 events after the last reload (at least 500 in all)."""
        i, after = 0, 0
        while after < 100 or i < 500:
            i += 1
            published[i] = pub.publish(transition(f"VI_{i % INSTANCES}", flip(i // INSTANCES), priority=i))
            after += reloaded.is_set()
            await asyncio.sleep(0.005)

    async def last_seq() -> int:
        return int((await js.stream_info(EVENT_STREAM)).state.last_seq)

    try:
        publishing = asyncio.create_task(burst())
        boundaries: list[Boundary] = []
        for tag, with_fifo in [("B", True), ("A", False), ("B", True), ("A", False), ("B", True)]:
            await asyncio.sleep(0.3)
            write_conf(conf, rec, tag, fifo if with_fifo else None)
            config = load(conf).config
            before, t0 = await last_seq(), time.time_ns()
            await provisioned(svc, config)  # as lifeline up does before passing the reload on: a new
            summary = await svc.apply(config)  # sink's consumer starts from here
            t1, after = time.time_ns(), await last_seq()
            boundaries.append(Boundary(t0, t1, before, after, tag, with_fifo, summary))
        reloaded.set()
        await publishing
        events = len(published)
        assert boundaries[0].last_before > 0, "the burst had not begun at the first reload"
        assert [b.summary for b in boundaries[:2]] == [
            "sinks: 1 added, 1 changed, 0 removed, 0 kept",
            "sinks: 0 added, 1 changed, 1 removed, 0 kept",
        ]
        await await_until("every event's script", lambda: len(runs(out)) >= events, 90)
        final = boundaries[-1].last_after
        total = await last_seq()
        await await_until(
            "the FIFO to see the last event",
            lambda: len(reader.priorities()) >= 1 and max(reader.priorities()) >= events,
            30,
        )
        await asyncio.sleep(0.5)  # anything extra (a repeat) would show up now
    finally:
        await svc.stop()
        await pub.close()
        reader.stop()

    # The script sink: each event once, in order per instance, with the definition in force.
    lines = runs(out)
    seq_of = {i: e.seq for i, e in published.items()}
    assert sorted(r.seq for r in lines) == sorted(seq_of.values())
    for name in (f"VI_{n}" for n in range(INSTANCES)):
        order = [r.seq for r in lines if r.instance == name]
        assert order == sorted(order), f"{name} out of order"
    ts_of = {e.seq: e.ts for e in published.values()}
    tags = ["A", *(b.tag for b in boundaries)]
    for r in lines:
        lowest = max((k + 1 for k, b in enumerate(boundaries) if b.t1 < ts_of[r.seq]), default=0)
        highest = max((k + 1 for k, b in enumerate(boundaries) if b.t0 < r.start), default=0)
        assert r.tag in tags[lowest : highest + 1], f"{r} ran with the wrong definition"
    assert {r.tag for r in lines} == {"A", "B"}

    # The FIFO: only while configured, each event once, in stream order; all of them once it stays.
    stream_seq: dict[int, int] = {}
    for seq in range(1, total + 1):
        event = decode((await js.get_msg(EVENT_STREAM, seq)).data)
        assert isinstance(event, InstanceState)
        stream_seq[event.effective_priority] = seq
    got = [stream_seq[p] for p in reader.priorities()]
    assert got == sorted(set(got)), "a FIFO line repeated or out of order"
    windows = []
    for k, b in enumerate(boundaries):
        if b.fifo:
            end = boundaries[k + 1].last_after if k + 1 < len(boundaries) else total
            windows.append((b.last_before, end))
    for s in got:
        assert any(lo < s <= hi for lo, hi in windows), f"stream seq {s} reached a FIFO not configured then"
    assert set(range(final + 1, total + 1)) <= set(got)
    assert len(windows) == 3 and any(lo < s <= hi for s in got for lo, hi in windows[:2])


# --------------------------------------------------------------------------- real processes


class Notifier(NotifierProcess):
    """``python -m services.notifier`` whose stdout lines after ``ready`` are kept, to be sent SIGHUP."""

    def __init__(self, conf: Path, node: str, url: str, log: Path, replica: str | None = None) -> None:
        super().__init__(conf, node, url, log)
        if replica is not None:
            self.args += ["--replica-id", replica]
        self.stdout: queue.Queue[str] = queue.Queue()

    async def start(self, timeout: float = 20.0) -> None:
        await super().start(timeout)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.stdout.put(raw.decode().rstrip("\n"))

    async def line(self, timeout: float = 20.0) -> str:
        return await asyncio.to_thread(self.stdout.get, True, timeout)

    def hup(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)


class Reloads:
    """Every ``ServiceReload`` of the node's notifiers, as published."""

    def __init__(self) -> None:
        self.seen: list[ServiceReload] = []

    async def on(self, msg: Msg) -> None:
        self.seen.append(decode(msg.data, ServiceReload))


async def publish_batch(pub: Any, first: int, count: int) -> None:
    for i in range(first, first + count):
        pub.publish(transition(f"VI_{i % INSTANCES}", flip(i), priority=i))
    assert await pub.flush(10)


async def test_sighup_applies_a_valid_file_and_refuses_a_broken_one(
    tmp_path: Path, server: NatsServer, nc: Any
) -> None:
    out = tmp_path / "out"
    rec = tagged_recorder(tmp_path / "rec.sh", out)
    conf = write_conf(tmp_path / "k.conf", rec, "A")
    reloads = Reloads()
    await nc.subscribe(service_reload_subject("n1", "notifier"), cb=reloads.on)
    proc = Notifier(conf, "n1", server.url, tmp_path / "notifier.log")
    await proc.start()
    try:
        pub = await publisher(nc, "n1")
        await publish_batch(pub, 1, 10)
        await await_until("10 runs with A", lambda: len(runs(out)) == 10, 20)

        write_conf(conf, rec, "B")
        proc.hup()
        assert await proc.line() == "lifeline-notifier reloaded: sinks: 0 added, 1 changed, 0 removed, 0 kept"
        await await_until("the ServiceReload", lambda: len(reloads.seen) == 1, 10)
        assert reloads.seen[0].ok and reloads.seen[0].detail.startswith("sinks: 0 added, 1 changed")
        await publish_batch(pub, 11, 10)
        await await_until("10 runs with B", lambda: len(runs(out)) == 20, 20)

        write_conf(conf, rec, "C", vrid0=300)  # VI_0's virtual_router_id 300: the file has errors
        broken = next(n for n, text in enumerate(conf.read_text().splitlines(), 1) if "300" in text)
        proc.hup()
        assert (await proc.line()).startswith("lifeline-notifier reload refused: ")
        await await_until("the refused ServiceReload", lambda: len(reloads.seen) == 2, 10)
        refused = reloads.seen[1]
        assert not refused.ok and any(e.startswith(f"{conf}:{broken}: error") for e in refused.errors)
        await publish_batch(pub, 21, 10)
        await await_until("10 more runs", lambda: len(runs(out)) == 30, 20)
        await asyncio.sleep(0.3)
        await pub.close()
    finally:
        proc.terminate()
    lines = runs(out)
    assert [r.tag for r in lines].count("A") == 10 and [r.tag for r in lines[10:]] == ["B"] * 20
    assert sorted(r.seq for r in lines) == list(range(1, 31))


def knows(proc: Notifier) -> str:
    """What a replica has logged so far (its membership lines among them)."""
    return proc.log.read_text() if proc.log.exists() else ""


async def test_a_bus_reload_reaches_every_replica(tmp_path: Path, server: NatsServer, nc: Any) -> None:
    out = tmp_path / "out"
    rec = tagged_recorder(tmp_path / "rec.sh", out)
    conf = write_conf(tmp_path / "k.conf", rec, "A")
    reloads = Reloads()
    await nc.subscribe(service_reload_subject("n1", "notifier"), cb=reloads.on)
    first = Notifier(conf, "n1", server.url, tmp_path / "r1.log", replica="r1")
    second = Notifier(conf, "n1", server.url, tmp_path / "r2.log", replica="r2")
    await first.start()
    await second.start()
    try:
        pub = await publisher(nc, "n1")
        await publish_batch(pub, 1, 20)
        await await_until("20 runs with A", lambda: len(runs(out)) == 20, 20)
        # the replica that takes the request asks the replicas it knows of: both must know each other first
        both = "notifier replicas on n1: r1, r2"
        await await_until(
            "r1 and r2 to see each other", lambda: all(both in knows(p) for p in (first, second)), 20
        )

        write_conf(conf, rec, "B")
        msg = await nc.request(reload_subject("n1", "notifier"), b"", timeout=20)
        reply = msgspec.json.decode(msg.data, type=ReloadReply)
        assert reply.ok, reply.errors
        assert reply.detail == "sinks: 0 added, 1 changed, 0 removed, 0 kept (replicas r1, r2)"
        for proc in (first, second):
            assert (
                await proc.line()
                == "lifeline-notifier reloaded: sinks: 0 added, 1 changed, 0 removed, 0 kept"
            )
        await await_until("a ServiceReload from each replica", lambda: len(reloads.seen) == 2, 10)
        assert len({r.boot_id for r in reloads.seen}) == 2 and all(r.ok for r in reloads.seen)

        await publish_batch(pub, 21, 20)
        await await_until("20 runs with B", lambda: len(runs(out)) == 40, 20)
        first.terminate()  # if it led, the second takes over: with B too
        await publish_batch(pub, 41, 20)
        await await_until("20 runs by the second replica", lambda: len(runs(out)) == 60, 30)
        await asyncio.sleep(0.3)
        await pub.close()
    finally:
        first.terminate()
        second.terminate()
    lines = runs(out)
    assert [r.tag for r in lines] == ["A"] * 20 + ["B"] * 40
    assert sorted(r.seq for r in lines) == list(range(1, 61))
