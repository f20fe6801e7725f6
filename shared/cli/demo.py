"""``lifeline demo``: two VRRP nodes in network namespaces, a failover and a preempt, in about 15 s.

Why a demo in the product: a newcomer's first question is "does it fail
over, and how fast?".  This answers it on their own machine with the seed's
first example (keepalived's ArchWiki pair: host A master, host B backup,
VIP 172.16.0.100), using exactly what production runs: one nats-server and
one vrrp service per node, real adverts on a real bridge, the kernel's own
address table as the judge, and the ``InstanceState`` events as any NATS
client would see them.

The failover time is measured where the protocol measures it: from A's last
advert seen on B's wire to B's transition to MASTER.  Nobody can beat
Master_Down_Interval (3 x advert_int + skew), so that floor is printed beside
the measured time.  The lab (namespaces, processes, temp files) is removed on
every exit path: success, error, Ctrl-C, SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import nats
from nats.aio.msg import Msg

from services.vrrp.core.timers import CS, master_down_interval
from shared import events
from shared.cli.commands import help_of
from shared.config.host import NoHost
from shared.config.load import load
from shared.lab.capture import ETH_P_IP, Capture, adverts
from shared.lab.errors import LabError
from shared.lab.netns import DEMO_PREFIX, IFNAME, join_namespace, remove_stale
from shared.lab.segment import Host, Segment
from shared.lab.wait import LabTimeout, wait_until

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
CONFIG_A = EXAMPLES / "archwiki-1-host-a.conf"
CONFIG_B = EXAMPLES / "archwiki-1-host-b.conf"
SUBNET = IPv4Network("172.16.0.0/24")
STATE_SUBJECTS = "lifeline.*.vrrp.state.>"
POLL = 0.02
SETTLE = 1.0
STOP_GRACE = 2.0
"""Seconds the services get at the end to say goodbye (priority 0, VIPs dropped) before SIGKILL."""


class DemoError(RuntimeError):
    """A step did not happen in time; the message says which, the logs say why."""


# --------------------------------------------------------------------------- the example configs


@dataclass(frozen=True)
class Instance:
    """What the demo needs from a config: the first vrrp_instance's name, timers and VIP."""

    name: str
    state: str
    priority: int
    advert_int: float
    version: int
    vip: str

    @property
    def master_down_interval(self) -> float:
        """3 x advert_int + skew: how long a backup must hear nothing before it takes over.

        The vrrp service's own formula (docs/keepalived.md#timers), so the floor
        the demo prints is the one the backup really waits.
        """
        return master_down_interval(self.version, self.priority, round(self.advert_int * CS), 3)


def read_instance(path: Path) -> Instance:
    """Parse ``path`` without host checks (its ``eth0`` exists in the lab, not necessarily here)."""
    config = load(path, host=NoHost()).config
    instances = list(config.vrrp.instances.values())
    if not instances or not instances[0].vips:
        raise DemoError(f"{path}: needs a vrrp_instance with a virtual_ipaddress")
    inst = instances[0]
    version = inst.version or config.global_defs.vrrp_version
    vip = str(inst.vips[0].address).split("/", 1)[0]
    return Instance(inst.name, inst.state, inst.priority, inst.advert_int, version, vip)


# --------------------------------------------------------------------------- output


class Clock:
    """Timestamps relative to the demo's start, for our own steps and for events' ``ts``."""

    def __init__(self) -> None:
        self.start_ns = time.time_ns()

    def now(self) -> float:
        return (time.time_ns() - self.start_ns) / 1e9

    def of(self, wall_ns: int) -> float:
        return (wall_ns - self.start_ns) / 1e9

    def say(self, text: str, at: float | None = None) -> None:
        """One line, ``[ 4.2s] text``, flushed at once (the demo is watched live)."""
        print(f"[{self.now() if at is None else at:4.1f}s] {text}", flush=True)


def describe(event: events.InstanceState) -> str:
    """``a: VI_1 BACKUP -> MASTER (master_down_timer) prio 20``."""
    previous = event.previous or "-"
    return (
        f"{event.node}: {event.instance} {previous} -> {event.state} ({event.reason}) "
        f"prio {event.effective_priority}"
    )


# --------------------------------------------------------------------------- the bus, from inside each node


class BusWatcher:
    """Subscribes to the state subjects on one node's nats-server, from a thread inside that node.

    Why a thread per node: each nats-server listens on its own namespace's
    127.0.0.1, which the root namespace cannot reach.  A thread that joined
    the namespace creates its sockets there (reconnects included), while the
    rest of the demo stays in the root namespace.
    """

    def __init__(self, ns: str, url: str, sink: queue.Queue[events.InstanceState]) -> None:
        self.ns = ns
        self.url = url
        self.sink = sink
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name=f"bus-{ns}", daemon=True)

    def start(self, timeout: float = 5.0) -> None:
        self._thread.start()
        if not self.ready.wait(timeout) or self.error is not None:
            raise DemoError(f"could not subscribe on {self.ns}'s nats-server: {self.error}")

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(3)

    def _main(self) -> None:
        try:
            join_namespace(self.ns)
            asyncio.run(self._watch())
        except BaseException as exc:  # reported by start() or ignored at teardown
            self.error = exc
            self.ready.set()

    async def _watch(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        nc = await nats.connect(
            self.url,
            connect_timeout=2,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.2,
            error_cb=_quiet,  # a node's server going away at teardown is expected, not news
        )
        await nc.subscribe(STATE_SUBJECTS, cb=self._on_message)
        await nc.flush()
        self.ready.set()
        await self._stop.wait()
        with contextlib.suppress(Exception):
            await nc.close()

    async def _on_message(self, msg: Msg) -> None:
        event = events.decode_for_subject(msg.subject, msg.data)
        if isinstance(event, events.InstanceState):
            self.sink.put(event)


async def _quiet(_exc: Exception) -> None:
    """nats-py's default error callback logs a traceback per reconnect attempt."""


# --------------------------------------------------------------------------- the demo


@dataclass
class Node:
    """A lab host with its role in the demo: its config and instance."""

    name: str
    host: Host
    config: Path
    instance: Instance


class Demo:
    """The script: start both nodes, wait for A, cut A, time B's takeover, restore A, see it preempt."""

    def __init__(self, segment: Segment, clock: Clock, config_a: Path, config_b: Path) -> None:
        self.clock = clock
        self.nodes = [
            Node("a", segment.host("a"), config_a, read_instance(config_a)),
            Node("b", segment.host("b"), config_b, read_instance(config_b)),
        ]
        self.a, self.b = self.nodes
        self.vip = self.a.instance.vip
        self.events: queue.Queue[events.InstanceState] = queue.Queue()
        self.watchers: list[BusWatcher] = []
        self.seen: set[tuple[str, int]] = set()  # (boot_id, seq)
        self.masters: dict[str, int] = {}  # node -> ts of its latest MASTER event
        self.states: dict[str, str] = {}  # node -> latest state

    # ---- steps
    def start(self) -> None:
        """nats-servers first, then a subscriber on each, then the vrrp services: a, and b once a is up.

        Both configs wait Master_Down_Interval before claiming mastership (a's
        is 3.92 s, b's 3.94 s): started in the same instant, b could win the
        race by a process start-up and be preempted a moment later.  Starting
        b when a's first event arrives (about 0.4 s) makes the story the
        config tells: a is elected.
        """
        servers = [node.host.ensure_nats() for node in self.nodes]
        for node, server in zip(self.nodes, servers, strict=True):
            watcher = BusWatcher(node.host.name, server.url, self.events)
            watcher.start()
            self.watchers.append(watcher)
        self.clock.say("nats-server up on each node; watching lifeline.*.vrrp.state.> on both")
        inst = self.a.instance
        self.clock.say(
            f"starting vrrp on a, then b: a is {inst.state} priority {inst.priority}, yet it first "
            f"listens Master_Down_Interval ({inst.master_down_interval:.2f} s) for a better master"
        )
        self.a.host.start("lifeline", self.a.config)
        self.wait(lambda: "a" in self.states, 10, "a's vrrp service did not start")
        self.b.host.start("lifeline", self.b.config)

    def elect(self) -> None:
        """Until a holds the VIP: even ``state MASTER`` waits for a better master first (RFC 9568)."""
        self.settle_on(self.a, timeout=self.a.instance.master_down_interval + 5)

    def failover(self) -> tuple[float, float]:
        """Cut A; return (seconds from A's last advert to B's MASTER event, seconds from the cut)."""
        with Capture(self.b.host.name, IFNAME, ETH_P_IP) as watch:  # b's view of a's adverts
            self.clock.say(f"a advertises every {self.a.instance.advert_int:g} s; b listens")
            time.sleep(SETTLE)
            self.masters.pop("b", None)
            cut_ns = time.time_ns()
            self.a.host.cut()
            self.clock.say("cutting a's cable (its switch port goes down)")
            self.settle_on(self.b, timeout=self.b.instance.master_down_interval + 5)
            heard = [x.ts_ns for x in adverts(watch.drain()) if x.src == str(self.a.host.ipv4)]
            last_ns = heard[-1] if heard else cut_ns
        master_ns = self.masters["b"]
        return (master_ns - last_ns) / 1e9, (master_ns - cut_ns) / 1e9

    def preempt(self) -> float:
        """Restore A; return seconds from the restore to A's MASTER event."""
        self.masters.pop("a", None)
        restore_ns = time.time_ns()
        self.a.host.restore()
        self.clock.say(
            "restoring a's cable; a ignores b's lower-priority adverts and preempts when its own "
            "Master_Down_Interval runs out"
        )
        self.settle_on(self.a, timeout=self.a.instance.master_down_interval + 5)
        return (self.masters["a"] - restore_ns) / 1e9

    # ---- helpers
    def log_tail(self, node: Node, lines: int = 15) -> str:
        daemon = node.host.daemon
        return daemon.tail(lines) if daemon is not None else ""

    def pump(self) -> None:
        """Print every event that arrived (once each: a re-sent event has the same boot_id:seq)."""
        while True:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return
            key = (event.boot_id, event.seq)
            if key in self.seen:
                continue
            self.seen.add(key)
            self.states[event.node] = event.state
            if event.state == events.VrrpState.MASTER:
                self.masters[event.node] = event.ts
            self.clock.say(describe(event), at=self.clock.of(event.ts))

    def holders(self) -> list[str]:
        return [n.name for n in self.nodes if n.host.holds(self.vip)]

    def settle_on(self, node: Node, timeout: float) -> None:
        """Until the kernel shows the VIP on ``node`` alone and its MASTER event arrived."""
        self.wait(
            lambda: self.holders() == [node.name] and node.name in self.masters,
            timeout,
            f"{node.name} did not become the only holder of {self.vip}",
        )
        self.clock.say(f"kernel: {self.vip} is on {node.name}'s eth0 (ip -n {node.host.name} addr)")

    def wait(self, predicate: Callable[[], bool], timeout: float, failure: str) -> None:
        """Until ``predicate``, printing events as they arrive; ``failure`` and both logs if not in time."""

        def probe() -> bool:
            self.pump()
            return predicate()

        try:
            wait_until(failure, probe, timeout, POLL)
        except LabTimeout:
            logs = "\n".join(f"--- {n.name} vrrp log\n{self.log_tail(n)}" for n in self.nodes)
            raise DemoError(f"{failure} within {timeout:.1f} s\n{logs}") from None

    def close(self) -> None:
        for watcher in self.watchers:
            watcher.stop()


def summary(clock: Clock, a: Instance, b: Instance, failover: tuple[float, float], preempt: float) -> None:
    """The numbers a newcomer came for, each beside the protocol floor it should be read against."""
    measured, since_cut = failover
    print("summary:")
    print(f"  failover  b MASTER {measured:.3f} s after a's last advert ({since_cut:.2f} s after the cut)")
    print(
        f"            floor: b's Master_Down_Interval = 3 x {b.advert_int:g} s + (256-{b.priority})/256 s "
        f"= {b.master_down_interval:.3f} s; overhead {1000 * (measured - b.master_down_interval):+.0f} ms"
    )
    print(f"  preempt   a MASTER {preempt:.3f} s after its cable came back")
    print(
        f"            floor: a's Master_Down_Interval = 3 x {a.advert_int:g} s + (256-{a.priority})/256 s "
        f"= {a.master_down_interval:.3f} s; overhead {1000 * (preempt - a.master_down_interval):+.0f} ms"
    )
    print(f"  total     {clock.now():.1f} s; lab removed (namespaces, processes, temp files)")


@contextlib.contextmanager
def interrupts_as_keyboard() -> Iterator[None]:
    """SIGTERM and SIGHUP behave like Ctrl-C, so the lab's cleanup runs on them too."""

    def handler(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_demo(config_a: Path, config_b: Path) -> int:
    clock = Clock()
    stale = remove_stale(DEMO_PREFIX)
    if stale:
        clock.say(f"removed {len(stale)} namespaces left by a crashed demo")
    segment = Segment(["a", "b"], prefix=DEMO_PREFIX, subnet=SUBNET, observer=False, grace=STOP_GRACE)
    with segment:
        demo = Demo(segment, clock, config_a, config_b)
        try:
            a, b = demo.a, demo.b
            clock.say(
                f"lab: namespaces {segment.lab.prefix}-{segment.lab.tag}-{{sw,a,b}}; "
                f"a {a.host.ipv4} and b {b.host.ipv4}, each on eth0, on one bridge"
            )
            clock.say(
                f"configs: a {a.config.name} ({a.instance.state} prio {a.instance.priority}), "
                f"b {b.config.name} ({b.instance.state} prio {b.instance.priority}), VIP {demo.vip}"
            )
            demo.start()
            demo.elect()
            failover = demo.failover()
            time.sleep(SETTLE)
            preempt = demo.preempt()
            demo.pump()
        finally:
            demo.close()
    summary(clock, a.instance, b.instance, failover, preempt)
    return 0


def run(args: argparse.Namespace) -> int:
    """``lifeline demo``: root only; every failure is one readable message and exit 1."""
    if os.geteuid() != 0:
        print("lifeline demo: run as root (network namespaces, raw sockets)", file=sys.stderr)
        return 1
    try:
        with interrupts_as_keyboard():
            return run_demo(Path(args.config_a), Path(args.config_b))
    except (DemoError, LabError) as exc:
        print(f"lifeline demo: {exc}", file=sys.stderr)
        return 1


def register(commands: Any) -> None:
    """Add ``demo`` to the ``lifeline`` command's subparsers."""
    parser = commands.add_parser("demo", help=help_of("demo"))
    parser.add_argument("--config-a", default=str(CONFIG_A), help="host A's keepalived.conf (the master)")
    parser.add_argument("--config-b", default=str(CONFIG_B), help="host B's keepalived.conf (the backup)")
    parser.set_defaults(run=run)
