"""Reloading the checker applies a difference: kept checks run on untouched, the rest follows the file.

With a real nats-server.  The in-process test drives ``CheckerService.apply``
under load (TCP and HTTP real servers, scripts, a process tracker) and looks at
the bus, the state bucket and the status; the process tests go through the
runner (SIGHUP, the bus ``reload`` endpoint, two replicas).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import msgspec
import nats
from nats.aio.client import Client
from nats.js.errors import KeyNotFoundError

from services.checker.sharding import owner
from shared.config.load import load_strict
from shared.events import (
    STATE_BUCKET,
    Event,
    RealServerHealth,
    ReloadReply,
    ServiceReload,
    TrackerResult,
    check_subject,
    decode,
    health_subject,
    kv_key_for_subject,
    reload_subject,
    service_reload_subject,
    tracker_subject,
)
from shared.lab.nats import NatsServer, free_port
from tests.checker.servers import HttpServer
from tests.checker.service_support import Recorder, start_service

VS1, VS2 = "127.0.0.1:80/tcp", "127.0.0.1:81/tcp"
ROOT = Path(__file__).resolve().parents[2]


def tcp(port: int, *, delay: float = 0.2, retry: int = 0, extra: str = "") -> str:
    return f"""
  real_server 127.0.0.1 {port} {{
    TCP_CHECK {{
      connect_timeout 0.3
      retry {retry}
      delay_before_retry 0.05
      warmup 0
      delay_loop {delay}
      {extra}
    }}
  }}"""


def http(port: int) -> str:
    return f"""
  real_server 127.0.0.1 {port} {{
    HTTP_GET {{
      url {{
        path /ok
      }}
      connect_timeout 0.5
      retry 0
      warmup 0
      delay_loop 0.2
    }}
  }}"""


def virtual(port: int, *reals: str) -> str:
    head = f"virtual_server 127.0.0.1 {port} {{\n  protocol TCP\n  lb_algo rr\n  lb_kind NAT\n"
    return head + "".join(reals) + "\n}\n"


def script(name: str, command: str, extra: str = "") -> str:
    return f'vrrp_script {name} {{\n  script "{command}"\n  interval 0.1\n  {extra}\n}}\n'


async def accepting() -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def rs(port: int) -> str:
    return f"127.0.0.1:{port}"


def node_name() -> str:
    return f"rl{uuid.uuid4().hex[:8]}"


def changed_since(rec: Recorder, start: int, pred: Callable[[Event], bool]) -> list[Event]:
    return [e for _, e in rec.events[start:] if pred(e) and getattr(e, "changed", False)]


async def kv_entry(nc: Client, subject: str) -> bytes | None:
    """The state-bucket value behind ``subject``; None once it was deleted (a key never written raises)."""
    kv = await nc.jetstream().key_value(STATE_BUCKET)
    try:
        entry = await kv.get(kv_key_for_subject(subject))
    except KeyNotFoundError as exc:
        if exc.op != "DEL":  # a tombstone, not a key that never was
            raise
        return None
    return entry.value


def by_row(status: dict[str, object], key: str, **match: object) -> dict[str, object]:
    rows = status[key]
    assert isinstance(rows, list)
    found = [r for r in rows if all(r.get(k) == v for k, v in match.items())]
    assert len(found) == 1, (match, rows)
    row = found[0]
    assert isinstance(row, dict)
    return row


def counters(row: dict[str, object]) -> dict[str, int]:
    c = row["counters"]
    assert isinstance(c, dict)
    return c


async def test_apply_adds_removes_replaces_and_leaves_the_rest_alone(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    http_server = await HttpServer().start()
    servers = [await accepting() for _ in range(5)]
    keep_a, keep_b, gone, twice, added_port = (port for _, port in servers)
    refused = free_port()  # retried for ever: "up" with a growing count of consecutive failures
    tag = f"lifeline-reload-{uuid.uuid4().hex[:8]}"
    daemon = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", tag])
    init = tmp_path / "added.value"
    common = (
        "global_defs {\n  script_user root\n}\n"
        + script("steady", "/bin/true", "weight 10")
        + script("falling", "/bin/false", "rise 300\n  fall 1")
        + f"vrrp_track_process daemon {{\n  process {sys.executable} -c "
        + f'"import time; time.sleep(120)" {tag}\n  full_command\n  weight -20\n}}\n'
    )
    kept_reals = tcp(keep_a) + http(http_server.port) + tcp(refused, retry=100000)
    old_conf = (
        common
        + script("dropped", "/bin/true")
        + virtual(80, tcp(keep_b), kept_reals, tcp(gone), tcp(twice))
        + virtual(81, tcp(twice))
    )
    new_conf = (
        "# reordered and commented: only what checks do counts\n"
        + virtual(81, tcp(twice))
        + virtual(80, kept_reals, tcp(twice, delay=0.25), tcp(keep_b), tcp(added_port))
        + common
        + script("fresh", "/bin/true")
        + f"track_file added {{\n  file {init}\n  weight 2\n  init_file 7\n}}\n"
    )
    conf = tmp_path / "k.conf"
    conf.write_text(old_conf)
    node = node_name()
    rec = await Recorder().start(nats_server.url, node)
    svc = await start_service(conf, node, nats_server.url)
    nc = await nats.connect(nats_server.url)
    kept_rs = [(VS1, rs(p)) for p in (keep_a, keep_b, http_server.port)] + [(VS2, rs(twice))]
    try:
        for _, real in [*kept_rs, (VS1, rs(gone)), (VS1, rs(twice))]:
            await rec.arrival(lambda e, r=real: isinstance(e, RealServerHealth) and e.real == r and e.up)
        for name in ("steady", "falling", "daemon", "dropped"):
            await rec.arrival(lambda e, n=name: isinstance(e, TrackerResult) and e.tracker == n)
        await asyncio.sleep(1.0)  # steady state: only heartbeats from here on
        assert await kv_entry(nc, check_subject(node, VS1, rs(gone))) is not None
        assert await kv_entry(nc, health_subject(node, VS1, rs(gone))) is not None
        assert await kv_entry(nc, tracker_subject(node, "dropped")) is not None
        before = dict(await svc.status())
        unit_of = {key: unit for key, unit in svc.units.items()}

        start = len(rec.events)
        conf.write_text(new_conf)
        summary = await svc.apply(load_strict(conf))
        t_applied = time.perf_counter()
        applied = dict(await svc.status())  # at once: a restarted check would show its counts back at 0
        assert summary == "3 added, 2 removed, 1 changed, 8 kept"
        assert init.read_text() == "7\n"  # init_file of a track_file the reload added

        # the added ones publish
        await rec.arrival(
            lambda e: isinstance(e, RealServerHealth) and e.real == rs(added_port) and e.up, since=start
        )
        await rec.arrival(
            lambda e: isinstance(e, TrackerResult) and e.tracker == "fresh" and e.ok, since=start
        )
        _, added = await rec.arrival(
            lambda e: isinstance(e, TrackerResult) and e.tracker == "added", since=start
        )
        assert isinstance(added, TrackerResult) and added.value == 7 and added.contribution == 14
        await asyncio.sleep(1.5)
        after = dict(await svc.status())

        # kept: the same units, still publishing, never a transition
        for key in ("track:steady", "track:falling", "track:daemon", f"rs:{rs(keep_a)}", f"rs:{rs(keep_b)}"):
            assert svc.units[key] is unit_of[key]
        for virtual_key, real in kept_rs:
            assert not changed_since(
                rec, start, lambda e, r=real: isinstance(e, RealServerHealth) and e.real == r
            )
            beats = [
                e
                for _, e in rec.events[start:]
                if isinstance(e, RealServerHealth) and e.real == real and e.virtual == virtual_key
            ]
            assert beats and all(e.up for e in beats), real
        for name in ("steady", "falling", "daemon"):
            is_it = lambda e, n=name: isinstance(e, TrackerResult) and e.tracker == n  # noqa: E731
            assert not changed_since(rec, start, is_it), name
            assert any(is_it(e) for _, e in rec.events[start:]), name
        # ...with their state: retry and rise/fall positions and counters carry on from where they were
        for status in (applied, after):
            for real, virtual_key in ((rs(refused), VS1), (rs(twice), VS2), (rs(keep_a), VS1)):
                was = counters(by_row(before, "real_servers", real=real, virtual=virtual_key))
                now = counters(by_row(status, "real_servers", real=real, virtual=virtual_key))
                assert now["probes"] >= was["probes"] > 0, real
                assert now["consecutive_failures"] >= was["consecutive_failures"], real
            for name in ("steady", "falling", "daemon"):
                was = counters(by_row(before, "trackers", tracker=name))
                assert counters(by_row(status, "trackers", tracker=name))["runs"] >= was["runs"] > 0
        retrying = [counters(by_row(s, "real_servers", real=rs(refused))) for s in (before, applied, after)]
        assert 3 <= retrying[0]["consecutive_failures"] < retrying[2]["consecutive_failures"]
        assert all(by_row(s, "real_servers", real=rs(refused))["state"] == "up" for s in (before, after))
        falling = [by_row(s, "trackers", tracker="falling")["detail"] for s in (before, applied, after)]
        counts = [d["counter"] for d in falling]  # type: ignore[index]
        assert 0 < counts[2] < counts[1] <= counts[0], counts  # only ever counting down
        assert counts[0] < 299  # from rise - 1: a restart would start there again, a KV baseline at 0
        # changed: replaced from its last result (still up: no transition), new timing, fresh counters
        assert not changed_since(
            rec, start, lambda e: isinstance(e, RealServerHealth) and e.real == rs(twice)
        )
        replaced = by_row(after, "real_servers", real=rs(twice), virtual=VS1)
        assert replaced["state"] == "up"
        assert counters(by_row(applied, "real_servers", real=rs(twice), virtual=VS1))["probes"] == 0
        assert counters(replaced)["probes"] > 0

        # removed: silent after the reload, and withdrawn from the state bucket
        late = [
            e
            for at, e in rec.events
            if at > t_applied + 0.2
            and (
                (isinstance(e, RealServerHealth) and e.real == rs(gone))
                or (isinstance(e, TrackerResult) and e.tracker == "dropped")
            )
        ]
        assert not late
        assert await kv_entry(nc, check_subject(node, VS1, rs(gone))) is None
        assert await kv_entry(nc, health_subject(node, VS1, rs(gone))) is None
        assert await kv_entry(nc, tracker_subject(node, "dropped")) is None
        assert f"rs:{rs(gone)}" not in svc.units and "track:dropped" not in svc.units
        assert svc.cache.real(VS1, rs(gone)) is None  # every replica's baseline cache forgot it too
        assert await kv_entry(nc, check_subject(node, VS1, rs(keep_a))) is not None
    finally:
        daemon.kill()
        daemon.wait()
        await svc.stop()
        await nc.close()
        await rec.close()
        await http_server.stop()
        for server, _ in servers:
            server.close()


async def test_apply_of_the_same_file_touches_nothing(tmp_path: Path, nats_server: NatsServer) -> None:
    server, port = await accepting()
    conf = tmp_path / "k.conf"
    conf.write_text(script("s", "/bin/true") + virtual(80, tcp(port)))
    node = node_name()
    svc = await start_service(conf, node, nats_server.url)
    try:
        await asyncio.sleep(0.6)
        units = dict(svc.units)
        assert await svc.apply(load_strict(conf)) == "0 added, 0 removed, 0 changed, 2 kept"
        assert svc.units == units and all(u.running for u in svc.units.values())
    finally:
        await svc.stop()
        server.close()


# --------------------------------------------------------------------------- through the runner


class Process:
    """``python -m services.checker`` with its stdout lines collected as they come."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def spawn(cls, conf: Path, node: str, url: str, *extra: str) -> Process:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.checker", "--config", str(conf), "--node", node, "--nats", url,
            *extra, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=ROOT,
        )  # fmt: skip
        return cls(proc)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))

    async def line(self, prefix: str, timeout: float = 10.0, since: int = 0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for text in self.lines[since:]:
                if text.startswith(prefix):
                    return text
            if self.proc.returncode is not None:
                break
            await asyncio.sleep(0.05)
        raise AssertionError(f"no line {prefix!r}; output:\n" + "\n".join(self.lines[-30:]))

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except TimeoutError:
            os.kill(self.proc.pid, signal.SIGKILL)
            await self.proc.wait()
        await self._reader


@asynccontextmanager
async def processes(*procs: Process) -> AsyncIterator[None]:
    try:
        yield
    finally:
        for p in procs:
            await p.stop()


async def reload_events(url: str, node: str) -> tuple[Client, list[ServiceReload]]:
    nc = await nats.connect(url)
    got: list[ServiceReload] = []

    async def on(msg: nats.aio.msg.Msg) -> None:
        event = decode(msg.data)
        if isinstance(event, ServiceReload):
            got.append(event)

    await nc.subscribe(service_reload_subject(node, "checker"), cb=on)
    await nc.flush()
    return nc, got


async def until(what: str, pred: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_sighup_applies_a_valid_file_and_refuses_a_broken_one(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    (a, port_a), (b, port_b) = await accepting(), await accepting()
    conf = tmp_path / "k.conf"
    conf.write_text(virtual(80, tcp(port_a)))
    node = node_name()
    rec = await Recorder().start(nats_server.url, node)
    nc, reloads = await reload_events(nats_server.url, node)
    proc = await Process.spawn(conf, node, nats_server.url)
    async with processes(proc):
        await proc.line("lifeline-checker ready")
        await rec.arrival(lambda e: isinstance(e, RealServerHealth) and e.real == rs(port_a), timeout=10)

        conf.write_text(virtual(80, tcp(port_a), tcp(port_b)))
        proc.proc.send_signal(signal.SIGHUP)
        line = await proc.line("lifeline-checker reloaded:")
        assert line == "lifeline-checker reloaded: 1 added, 0 removed, 0 changed, 1 kept"
        start = len(rec.events)
        await rec.arrival(
            lambda e: isinstance(e, RealServerHealth) and e.real == rs(port_b) and e.up, since=start
        )
        await until("the applied ServiceReload", lambda: len(reloads) == 1)
        assert (
            reloads[0].ok and reloads[0].trigger == "signal" and reloads[0].detail == line.split(": ", 1)[1]
        )

        good = conf.read_text()
        conf.write_text(good + "vrrp_script broken {\n  interval 1\n}\n")
        closing = good.count("\n") + 3  # the block's "}" is where a missing keyword is reported
        proc.proc.send_signal(signal.SIGHUP)
        await proc.line("lifeline-checker reload refused:")
        await until("the refused ServiceReload", lambda: len(reloads) == 2)
        refused = reloads[1]
        assert not refused.ok and refused.config == str(conf)
        assert any(e.startswith(f"{conf}:{closing}: error:") for e in refused.errors), refused.errors
        # the old checks run on: both real servers keep publishing
        start = len(rec.events)
        for port in (port_a, port_b):
            await rec.arrival(
                lambda e, p=port: isinstance(e, RealServerHealth) and e.real == rs(p), since=start
            )
    await nc.close()
    await rec.close()
    a.close()
    b.close()


async def test_a_bus_reload_applies_on_every_replica(tmp_path: Path, nats_server: NatsServer) -> None:
    """One request, answered by one replica (micro queue group), reloads both; each owner applies its part."""
    replicas = ["r1", "r2"]
    servers: list[tuple[asyncio.Server, int]] = []
    by_owner: dict[str, list[int]] = {r: [] for r in replicas}
    while min(len(v) for v in by_owner.values()) < 3:  # each replica: one kept, one removed, one added
        server, port = await accepting()
        servers.append((server, port))
        by_owner[owner(f"rs:{rs(port)}", replicas) or ""].append(port)
    kept = [by_owner[r][0] for r in replicas]
    removed = [by_owner[r][1] for r in replicas]
    added = [by_owner[r][2] for r in replicas]
    conf = tmp_path / "k.conf"
    conf.write_text(virtual(80, *(tcp(p, delay=0.3) for p in kept + removed)))
    node = node_name()
    rec = await Recorder().start(nats_server.url, node)
    nc, reloads = await reload_events(nats_server.url, node)
    procs = {r: await Process.spawn(conf, node, nats_server.url, "--replica-id", r) for r in replicas}
    async with processes(*procs.values()):
        for p in procs.values():
            await p.line("lifeline-checker ready")
        for port in kept + removed:
            await rec.arrival(
                lambda e, q=port: isinstance(e, RealServerHealth) and e.real == rs(q), timeout=10
            )
        await asyncio.sleep(1.0)  # membership settled: each real server is checked by its owner only
        boot_of = {  # who checks each kept server now (the last word, after any start-up shuffle)
            r: [e.boot_id for _, e in rec.events if isinstance(e, RealServerHealth) and e.real == rs(port)][
                -1
            ]
            for r, port in zip(replicas, kept, strict=True)
        }
        assert len(set(boot_of.values())) == 2

        conf.write_text(virtual(80, *(tcp(p, delay=0.3) for p in kept + added)))
        msg = await nc.request(reload_subject(node, "checker"), b"", timeout=15)
        t_reply = time.perf_counter()
        reply = msgspec.json.decode(msg.data, type=ReloadReply)
        summary = "2 added, 2 removed, 0 changed, 2 kept"
        assert reply.ok, reply.errors
        assert reply.detail == f"{summary} (replicas r1, r2)"
        for p in procs.values():  # each replica applied it through its own runner
            assert await p.line("lifeline-checker reloaded:") == f"lifeline-checker reloaded: {summary}"
        await until("a ServiceReload from each replica", lambda: len(reloads) == 2)
        assert {e.boot_id for e in reloads} == set(boot_of.values())
        assert all(e.ok and e.trigger == "request" for e in reloads)

        # each added server is checked by the replica that owns it; the removed ones are silent
        for r, port in zip(replicas, added, strict=True):
            _, first = await rec.arrival(
                lambda e, q=port: isinstance(e, RealServerHealth) and e.real == rs(q) and e.up
            )
            assert first.boot_id == boot_of[r]
        await asyncio.sleep(1.0)
        gone = {rs(p) for p in removed}
        assert not [
            e
            for at, e in rec.events
            if at > t_reply + 0.2 and isinstance(e, RealServerHealth) and e.real in gone
        ]
    await nc.close()
    await rec.close()
    for server, _ in servers:
        server.close()
