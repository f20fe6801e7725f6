"""The chaos lab: two ``lifeline up`` nodes on one segment, the faults, and the checks every scenario makes.

Two nodes (``a`` priority 150, ``b`` 100, one VRRPv2 instance with PASS auth,
``advert_int 1``) run in network namespaces on one bridge, each a real
``lifeline up``: its own nats-server (JetStream store in ``store``), vrrp,
checker and notifier, each service restarted by the supervisor when it dies.
Each node's instance tracks a file (``vrrp_script``, weight -100), so removing
``a``'s file hands the VIP to ``b`` and putting it back takes it home: a
stream of real transitions the test drives without the bus.  Each node's
``notify`` script appends every call, with its time, to a file.

The witness no fault touches is the observer's advert capture
(:mod:`shared.lab.wire`).  What every scenario asserts (:meth:`ChaosLab.verdict`):

* never two masters on the wire for longer than one advert interval (plus a
  scheduling slack);
* for each node, the stream's ``InstanceState`` events (each ``(boot_id,
  seq)`` once, each boot's chain unbroken) are exactly the calls of its notify
  script, in the same order;
* the node the wire shows as MASTER at the end is MASTER in its stream;
* every service (nats-server, vrrp, checker, notifier) is running at the end.

Timing appears in the printed figures and in generous protocol bounds only.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import psutil  # type: ignore[import-untyped]
from nats.js.api import DeliverPolicy

from services.vrrp.core.timers import master_down_interval
from shared.events import EVENT_STREAM, InstanceState, decode, instance_subject
from shared.lab.capture import AdvertSeen
from shared.lab.daemon import Daemon
from shared.lab.netns import in_namespace
from shared.lab.segment import Host, Segment
from shared.lab.up import NATS_PORT, service_process, start_up
from shared.lab.wait import LabTimeout, wait_until
from shared.lab.wire import NS, Recorder, longest_dual_master, master_runs
from shared.nats_users import ADMIN, password_var
from shared.secret_files import parse_env

INSTANCE = "VI_1"
VRID = 51
ADVERT_INT = 1.0
PASSWORD = "chaos1"
PRIORITY = {"a": 150, "b": 100}
TRACK_WEIGHT = -100
SLACK = 0.25
"""Seconds of scheduling noise allowed on top of an advert interval (a loaded 2-core machine)."""
TAKEOVER_BOUND = 3.0
"""Generous seconds allowed beyond a protocol floor (the tracker's interval, process start-up, load)."""
SERVICES = ("vrrp", "checker", "notifier")
READY = tuple(f"lifeline-{s} ready" for s in SERVICES)


def mdi(priority: int) -> float:
    """Master_Down_Interval of a backup at ``priority`` (the floor of any takeover), as vrrp computes it."""
    return master_down_interval(2, priority, int(ADVERT_INT * 100), 3)


def keepalived_conf(
    node: str, workdir: Path, vip: str, *, priority: int | None = None, extra: str = ""
) -> str:
    """The node's keepalived.conf: one instance, PASS auth, a file tracker, a notify script."""
    prio = PRIORITY[node] if priority is None else priority
    state = "MASTER" if node == "a" else "BACKUP"
    return f"""global_defs {{
    router_id {node}
}}
vrrp_script chk_file {{
    script "/usr/bin/test -f {workdir / "track"}"
    interval 1
    fall 1
    rise 1
    weight {TRACK_WEIGHT}
}}
vrrp_instance {INSTANCE} {{
    state {state}
    interface eth0
    virtual_router_id {VRID}
    priority {prio}
    advert_int {ADVERT_INT:g}
    authentication {{
        auth_type PASS
        auth_pass {PASSWORD}
    }}
    track_script {{
        chk_file
    }}
    notify "{workdir / "notify.sh"}"
{extra}    virtual_ipaddress {{
        {vip}/24
    }}
}}
"""


@dataclass(frozen=True)
class Notified:
    """One call of the notify script: when (wall clock, s) and its arguments."""

    at: float
    args: tuple[str, ...]

    @property
    def state(self) -> str:
        return self.args[2] if len(self.args) > 2 else ""


class ChaosNode:
    """One ``lifeline up`` in a host's namespace: its files, its services, its bus, its faults."""

    def __init__(self, host: Host, vip: str) -> None:
        self.host = host
        self.name = host.role
        self.vip = vip
        self.dir = host.workdir
        self.store = self.dir / "store"
        self.conf = self.dir / "keepalived.conf"
        self.notes = self.dir / "notes"
        self.track = self.dir / "track"
        self.up: Daemon | None = None

    @property
    def ip(self) -> str:
        return str(self.host.ipv4)

    def write_conf(self, text: str | None = None) -> None:
        self.conf.write_text(text or keepalived_conf(self.name, self.dir, self.vip))

    def prepare(self) -> None:
        """The notify script, the tracked file (present: tracker up) and the config."""
        script = self.dir / "notify.sh"
        script.write_text(f'#!/bin/sh\necho "$(date +%s.%N) $*" >> {self.notes}\n')
        script.chmod(0o755)
        self.track.touch()
        self.store.mkdir(mode=0o700, exist_ok=True)
        self.write_conf()

    def start(self) -> None:
        self.up = start_up(self.host, self.conf)

    def log(self) -> str:
        return self.up.output() if self.up is not None else ""

    def ready(self) -> bool:
        text = self.log()
        return all(line in text for line in READY)

    # --- processes -------------------------------------------------------------
    def process(self, service: str) -> psutil.Process | None:
        """The running child of ``lifeline up`` for ``service`` (vrrp, checker, notifier, nats)."""
        return service_process(self.up, service) if self.up is not None else None

    def signal(self, service: str, sig: int) -> int:
        """Send ``sig`` to ``service``'s process (waits for it to exist); its pid."""
        wait_until(f"{self.name}'s {service} running", lambda: self.process(service), 60, 0.1)
        proc = self.process(service)
        assert proc is not None
        proc.send_signal(sig)
        return int(proc.pid)

    def hold_supervisor(self) -> None:
        """SIGSTOP ``lifeline up`` itself: nothing is restarted until :meth:`release_supervisor`."""
        assert self.up is not None
        self.up.send(signal.SIGSTOP)

    def release_supervisor(self) -> None:
        assert self.up is not None
        self.up.send(signal.SIGCONT)

    def running(self) -> dict[str, bool]:
        return {s: self.process(s) is not None for s in ("nats", *SERVICES)}

    # --- the bus -----------------------------------------------------------------
    def admin_password(self) -> str:
        return parse_env((self.store / "users.env").read_text())[password_var(ADMIN)]

    def events(self) -> list[InstanceState]:
        """Every ``InstanceState`` of this node in its stream, in stream order."""
        return in_namespace(self.host.name, lambda: asyncio.run(self._read_stream()), timeout=30)

    async def _read_stream(self) -> list[InstanceState]:
        nc = await nats.connect(
            f"nats://127.0.0.1:{NATS_PORT}",
            user=ADMIN,
            password=self.admin_password(),
            allow_reconnect=False,
            connect_timeout=3,
        )
        out: list[InstanceState] = []
        try:
            js = nc.jetstream(timeout=3)
            info = await js.stream_info(EVENT_STREAM)
            if info.state.messages == 0:
                return out
            sub = await js.subscribe(
                instance_subject(self.name, INSTANCE),
                stream=EVENT_STREAM,
                ordered_consumer=True,
                deliver_policy=DeliverPolicy.ALL,
            )
            while True:
                try:
                    msg = await sub.next_msg(timeout=2)
                except nats.errors.TimeoutError:
                    break
                event = decode(msg.data)
                if isinstance(event, InstanceState):
                    out.append(event)
                if msg.metadata.num_pending == 0:
                    break
        finally:
            await nc.close()
        return out

    def notified(self) -> list[Notified]:
        """Every call of the notify script so far, in the order they were appended."""
        if not self.notes.exists():
            return []
        out = []
        for line in self.notes.read_text().splitlines():
            at, *args = line.split()
            out.append(Notified(float(at), tuple(args)))
        return out

    def cli(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """``lifeline ARGS`` as the node's admin, run in the node's namespace."""
        env = dict(os.environ) | {"LIFELINE_SETTINGS": str(self.store / "admin.toml")}
        argv = ["ip", "netns", "exec", self.host.name, sys.executable, "-m", "shared.cli.main", *args]
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, check=False)

    def set_priority(self, priority: int) -> None:
        """``lifeline instance set-priority`` (needs this node's bus and vrrp): retried until accepted."""

        def accepted() -> bool:
            return self.cli("instance", "set-priority", INSTANCE, str(priority)).returncode == 0

        wait_until(f"{self.name} accepting priority {priority}", accepted, 60, 0.5, explain=self.log)


def states(events: list[InstanceState]) -> list[str]:
    return [str(e.state) for e in events]


@dataclass
class Figures:
    """A scenario's printed report: name → value (seconds rounded to the millisecond)."""

    scenario: str
    values: dict[str, Any] = field(default_factory=dict)

    def __setitem__(self, key: str, value: Any) -> None:
        self.values[key] = round(value, 3) if isinstance(value, float) else value

    def line(self) -> str:
        return f"chaos {self.scenario}: {json.dumps(self.values, sort_keys=True)}"


class ChaosLab:
    """The segment, the two nodes and the advert recorder; :meth:`verdict` is every scenario's ending."""

    def __init__(self, segment: Segment, figures: Figures) -> None:
        self.segment = segment
        self.figures = figures
        self.vip = segment.address(100)
        self.a = ChaosNode(segment.host("a"), self.vip)
        self.b = ChaosNode(segment.host("b"), self.vip)
        self.nodes = (self.a, self.b)
        self.recorder = Recorder(segment.capture())
        self.started_ns = time.time_ns()
        self.mounts: list[Path] = []

    def node(self, src: str) -> ChaosNode:
        return next(n for n in self.nodes if n.ip == src)

    def start(self, *, small_store: str | None = None) -> None:
        """Both nodes up, every service ready, ``a`` MASTER (on the wire and in its stream).

        ``small_store``: a tmpfs of that size (``mount -o size=``) under ``a``'s
        JetStream store, so a test can fill it; unmounted at :meth:`close`.
        """
        for node in self.nodes:
            node.prepare()
        if small_store is not None:
            options = f"size={small_store},mode=0700"
            subprocess.run(["mount", "-t", "tmpfs", "-o", options, "chaos", str(self.a.store)], check=True)
            self.mounts.append(self.a.store)
        self.a.start()
        self.b.start()
        for node in self.nodes:
            wait_until(f"{node.name}'s services ready", node.ready, 120, 0.2, explain=node.log)
        self.wait_master(self.a, 30)
        wait_until("b BACKUP in its stream", lambda: states(self.b.events())[-1:] == ["BACKUP"], 30, 0.3)

    def logs(self) -> str:
        return "\n".join(f"--- {n.name}\n{n.log()[-6000:]}" for n in self.nodes)

    # --- the wire ------------------------------------------------------------------
    def adverts(self) -> list[AdvertSeen]:
        return self.recorder.snapshot()

    def wire_master(self, window: float = ADVERT_INT + SLACK) -> str | None:
        """The node whose claims (and only whose) were on the wire in the last ``window`` seconds."""
        since = time.time_ns() - int(window * NS)
        srcs = {a.src for a in self.adverts() if a.vrid == VRID and a.priority > 0 and a.ts_ns >= since}
        return self.node(srcs.pop()).name if len(srcs) == 1 else None

    def wait_master(self, node: ChaosNode, timeout: float) -> float:
        """Until ``node`` alone claims mastership on the wire; the seconds it took."""
        return wait_until(
            f"{node.name} MASTER on the wire",
            self.wire_master,
            timeout,
            0.05,
            expect=node.name,
            explain=self.logs,
        )

    def flip_tracker(self, up: bool) -> None:
        """``a``'s tracked file present (a wins, 150) or gone (a drops to 50: b takes over)."""
        if up:
            self.a.track.touch()
        else:
            self.a.track.unlink(missing_ok=True)

    # --- the ending ------------------------------------------------------------------
    def expect_stream(self, node: ChaosNode, since_ns: int, want: list[str], timeout: float = 60.0) -> None:
        """``node``'s stream holds exactly ``want`` (states) among its events since ``since_ns``, in
        ``timeout`` seconds: the transitions a scenario made are delivered, whatever it did to the bus."""

        def got() -> list[str]:
            return [str(e.state) for e in node.events() if e.ts >= since_ns]

        try:
            wait_until(
                f"{node.name}'s stream holding {want}", got, timeout, 0.5, expect=want, explain=node.log
            )
        except LabTimeout as exc:
            raise AssertionError(f"{node.name}'s transitions since the fault: {got()}, want {want}") from exc

    def verdict(self, *, delivery_timeout: float = 90.0) -> None:
        """Every scenario's checks (see the module's docstring); records the figures it measured."""
        runs = master_runs(self.adverts(), VRID, max_gap=mdi(PRIORITY["b"]))
        dual = longest_dual_master(runs)
        self.figures["dual_master_s"] = dual
        self.figures["master_runs"] = len(runs)
        for node in self.nodes:
            wait_until(
                f"every service of {node.name} running",
                lambda n=node: all(n.running().values()),  # type: ignore[misc]
                60,
                0.2,
                explain=node.log,
            )
        for node in self.nodes:
            self._deliveries(node, delivery_timeout)
        with contextlib.suppress(LabTimeout):
            wait_until("one MASTER on the wire", self.wire_master, 10, 0.1)
        final = self.wire_master()
        recent = [a for a in self.adverts() if a.ts_ns > time.time_ns() - 3 * NS]
        assert final is not None, f"no single MASTER on the wire at the end: {recent}"
        master = self.a if final == "a" else self.b
        wait_until(
            f"{final} MASTER in its stream", lambda: states(master.events())[-1:] == ["MASTER"], 30, 0.3
        )
        assert dual <= ADVERT_INT + SLACK, f"two masters for {dual:.3f} s (advert interval {ADVERT_INT} s)"

    def _deliveries(self, node: ChaosNode, timeout: float) -> None:
        """The stream and the notify script agree: same transitions, once each, same order."""

        def agreed() -> bool:
            return states(node.events()) == [n.state for n in node.notified()]

        last: list[list[str]] = [[]]

        def settled() -> bool:  # unchanged over two reads a second apart: nothing more in flight
            now = states(node.events())
            same, last[0] = now == last[0], now
            return same

        with contextlib.suppress(LabTimeout):
            wait_until(f"{node.name}'s stream settled", settled, timeout, 1.0)
            wait_until(f"{node.name}'s notify calls matching its stream", agreed, timeout, 0.5)
        events, notes = node.events(), node.notified()
        keys = [(e.boot_id, e.seq) for e in events]
        self.figures[f"{node.name}_stream"] = states(events)
        self.figures[f"{node.name}_boots"] = len({e.boot_id for e in events})
        self.figures[f"{node.name}_notified"] = [n.state for n in notes]
        lags = [n.at - e.ts / NS for e, n in zip(events, notes, strict=False) if e.ts]
        if lags:
            self.figures[f"{node.name}_notify_latency_max_s"] = max(lags)
        assert len(keys) == len(set(keys)), f"{node.name}: an event twice in the stream: {keys}"
        for before, after in itertools.pairwise(events):
            if before.boot_id == after.boot_id:
                assert after.previous == before.state, f"{node.name}: the chain breaks at {after}"
        assert states(events) == [n.state for n in notes], (
            f"{node.name}: stream {states(events)} != notify calls {[n.state for n in notes]}"
        )

    def close(self) -> None:
        self.recorder.close()
        for mount in self.mounts:
            subprocess.run(["umount", "-l", str(mount)], check=False)


class VipWatch:
    """Who holds the VIP, sampled from the kernel by a thread: the longest time nobody did.

    ``ip addr`` can wait for the RTNL lock on a busy machine, so the gap is
    measured between the samples' completion times: never shorter than the
    truth, at worst longer by one sample's delay.
    """

    def __init__(self, segment: Segment, vip: str, step: float = 0.02) -> None:
        self.segment = segment
        self.vip = vip
        self.step = step
        self.samples: list[tuple[float, tuple[str, ...]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="vip-watch", daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            holders = tuple(self.segment.holders(self.vip))
            self.samples.append((time.monotonic(), holders))
            self._stop.wait(self.step)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def longest_gap(self) -> float:
        """The longest time between a sample with a holder and the next one with a holder."""
        held = [t for t, holders in self.samples if holders]
        gaps = [b - a for a, b in itertools.pairwise(held)]
        return max(gaps, default=0.0)

    def both(self) -> int:
        """Samples where two hosts held the VIP at once."""
        return sum(1 for _t, holders in self.samples if len(holders) > 1)


@contextlib.contextmanager
def chaos_lab(figures: Figures, record: Callable[[str, object], None]) -> Iterator[ChaosLab]:
    """A :class:`ChaosLab` (the test calls ``start``); its figures recorded (``record_property``)."""
    with Segment(["a", "b"]) as segment:
        lab = ChaosLab(segment, figures)
        try:
            yield lab
        finally:
            print(figures.line())
            record("chaos", figures.line())
            for node in lab.nodes:
                if node.up is not None:
                    node.up.send(signal.SIGCONT)  # a held supervisor must be able to stop
                    node.up.stop(timeout=10)
            lab.close()
