"""The checker service in a network namespace, checking real servers across a real link.

Topology (``pair``): host ``a`` runs ``python -m services.checker`` (a real
process, started with ``ip netns exec``); host ``b`` holds the real servers.
Both have an ``eth0`` on one bridge, so every probe leaves ``a`` through its
``eth0`` (``bind_if eth0``, ``bindto <a>``: the servers record the peer address
to prove it) and crosses the bridge.  The servers run in this test's event
loop on sockets created inside ``b`` (``pyroute2.netns.create_socket``): a
socket belongs to the namespace it was made in, so nothing else needs to move.

Every check kind goes DOWN and comes back UP, and each transition is asserted
on the bus as a ``RealServerHealth`` (``changed``) on ``lifeline.<node>.check.>``,
decoded with ``shared.events.decode``.  Trackers run in ``a`` too: the process
tracker cannot rely on the kernel's process connector there (it only answers in
the initial network namespace), so pidfd + scan must carry it.

The last test runs the seed's second example (``archwiki-2-monitor-host-{a,b}``,
``vrrp_track_process`` on ``sshd``): vrrp and checker on both nodes, a fake
``sshd`` per node, each node in its own PID namespace so each checker sees its
own ``sshd`` as on two real machines; killing the master's ``sshd`` moves the VIP.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import psutil  # type: ignore[import-untyped]
import pytest
from aiosmtpd.smtp import SMTP
from pyroute2 import netns as pr_netns

from shared.events import Event, RealServerHealth, TrackerResult
from shared.lab.capture import Capture
from shared.lab.nats import NatsProxy, NatsServer
from shared.lab.segment import Host
from shared.lab.wait import await_until
from tests.checker.servers import DnsResponder, UdpEcho, self_signed
from tests.checker.service_support import Recorder

pytestmark = [pytest.mark.root, pytest.mark.timeout(120)]

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "docs" / "examples"
ETH_P_IP = 0x0800
IPPROTO_AH = 51
BODY = b"lifeline lab page\n"
DIGEST = hashlib.md5(BODY, usedforsecurity=False).hexdigest()


# --------------------------------------------------------------------------- processes


class ServiceProc:
    """``python -m services.<name> ...`` inside a namespace (optionally its own PID namespace)."""

    def __init__(
        self,
        ns: str,
        module: str,
        args: list[str],
        log_path: Path,
        *,
        own_pid_ns: bool = False,
        before: str = "",
    ) -> None:
        self.log_path = log_path
        argv = [sys.executable, "-m", module, *args]
        if own_pid_ns:  # PID 1 of a new PID namespace is a shell that starts ``before``, then execs us
            argv = ["sh", "-c", f'{before} exec "$@"', "sh", *argv]
            argv = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", *argv]
        with log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", ns, *argv], cwd=REPO, stdout=log, stderr=subprocess.STDOUT
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class Bench:
    """Per-test processes and relays, stopped at the end; logs printed on failure."""

    def __init__(self, workdir: Path, server: NatsServer) -> None:
        self.workdir = workdir
        self.server = server
        self.procs: list[ServiceProc] = []
        self.proxies: dict[str, NatsProxy] = {}
        self.tag = f"c{uuid.uuid4().hex[:8]}"

    def url(self, ns: str) -> str:
        if ns not in self.proxies:
            self.proxies[ns] = NatsProxy(ns, self.server.port)
        return str(self.proxies[ns].url)

    def checker(
        self, host: Host, node: str, conf: str, *, own_pid_ns: bool = False, before: str = ""
    ) -> ServiceProc:
        path = self.workdir / f"{node}-checker.conf"
        path.write_text(conf)
        args = ["--config", str(path), "--node", node, "--nats", self.url(host.name)]
        args += ["--tracker-heartbeat", "0.5", "--process-scan", "0.2"]
        return self._start(host, "services.checker", args, f"{node}-checker", own=own_pid_ns, before=before)

    def vrrp(self, host: Host, node: str, conf: str) -> ServiceProc:
        path = self.workdir / f"{node}-vrrp.conf"
        path.write_text(conf)
        args = ["--config", str(path), "--node", node, "--nats", self.url(host.name)]
        return self._start(host, "services.vrrp", args, f"{node}-vrrp", own=False, before="")

    def _start(
        self, host: Host, module: str, args: list[str], name: str, *, own: bool, before: str
    ) -> ServiceProc:
        log_path = self.workdir / f"{name}.log"
        proc = ServiceProc(host.name, module, args, log_path, own_pid_ns=own, before=before)
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.procs:
            proc.stop()
        for proxy in self.proxies.values():
            proxy.close()

    def logs(self) -> str:
        return "\n".join(f"--- {p.log_path.name}\n{p.log()}" for p in self.procs)


@pytest.fixture
def bench(tmp_path: Path, nats_server: NatsServer) -> Iterator[Bench]:
    b = Bench(tmp_path, nats_server)
    try:
        yield b
    finally:
        b.close()
        print(b.logs())  # pytest shows captured output only for a failed test


@pytest.fixture
async def recorder(bench: Bench) -> AsyncIterator[Recorder]:
    rec = await Recorder().start(bench.server.url, bench.tag)
    yield rec
    await rec.close()


# --------------------------------------------------------------------------- servers inside b


def ns_socket(host: Host, kind: socket.SocketKind, port: int = 0, backlog: int = 64) -> socket.socket:
    """A socket created in ``host``'s namespace, bound to its address (and listening, for TCP)."""
    sock: socket.socket = pr_netns.create_socket(host.name, socket.AF_INET, kind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((str(host.ipv4), port))
    if kind == socket.SOCK_STREAM:
        sock.listen(backlog)
    sock.setblocking(False)
    return sock


class Web:
    """A one-page HTTP/1.0 server whose status and body the test changes; remembers its peers."""

    def __init__(self) -> None:
        self.status = 200
        self.body = BODY
        self.peers: list[str] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            self.peers.append(writer.get_extra_info("peername")[0])
            head = f"HTTP/1.0 {self.status} X\r\nContent-Length: {len(self.body)}\r\n\r\n"
            writer.write(head.encode() + self.body)
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()


class Helo:
    """aiosmtpd handler: answers HELO, remembers who asked."""

    def __init__(self) -> None:
        self.helo: list[str] = []

    async def handle_HELO(self, server: SMTP, session: object, envelope: object, hostname: str) -> str:
        self.helo.append(hostname)
        return f"250 {server.hostname}"


class Stream:
    """A TCP server on a fixed port of ``b`` that can be stopped (refused), restarted or made to hang."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.port = 0
        self.server: asyncio.Server | None = None
        self.hung: list[socket.socket] = []

    async def serve(self, start: Callable[[socket.socket], Awaitable[asyncio.Server]]) -> Stream:
        sock = ns_socket(self.host, socket.SOCK_STREAM, self.port)
        self.port = sock.getsockname()[1]
        self.server = await start(sock)
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None
        for s in self.hung:
            s.close()
        self.hung = []

    def hang(self) -> Stream:
        """A listener whose accept queue is full: a SYN is never answered, a connect times out."""
        srv = ns_socket(self.host, socket.SOCK_STREAM, self.port, backlog=0)
        self.port = srv.getsockname()[1]
        self.hung = [srv]
        for _ in range(3):
            c: socket.socket = pr_netns.create_socket(self.host.name, socket.AF_INET, socket.SOCK_STREAM)
            c.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                c.connect((str(self.host.ipv4), self.port))
            self.hung.append(c)
        time.sleep(0.05)
        return self


class Datagram:
    """A UDP server on a fixed port of ``b``; stopping it makes the kernel answer port-unreachable."""

    def __init__(self, host: Host, factory: Callable[[], asyncio.DatagramProtocol]) -> None:
        self.host = host
        self.factory = factory
        self.port = 0
        self.transport: asyncio.BaseTransport | None = None

    async def start(self) -> Datagram:
        sock = ns_socket(self.host, socket.SOCK_DGRAM, self.port)
        self.port = sock.getsockname()[1]
        self.transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(self.factory, sock=sock)
        return self

    def stop(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None


def accept_and_close(sock: socket.socket) -> Awaitable[asyncio.Server]:
    async def on(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.close()

    return asyncio.start_server(on, sock=sock)


# --------------------------------------------------------------------------- config and bus helpers


def common(a: Host) -> str:
    return f"""connect_timeout 1
      retry 0
      delay_loop 0.3
      warmup 0
      bindto {a.ipv4}
      bind_if eth0"""


def real(addr: object, port: int, check: str, *lines: str) -> str:
    """A real_server block with one checker whose keywords are ``lines``."""
    body = "\n      ".join(lines)
    return f"""
  real_server {addr} {port} {{
    {check} {{
      {body}
    }}
  }}"""


def is_rs(real_: str, up: bool) -> Callable[[Event], bool]:
    return lambda e: isinstance(e, RealServerHealth) and e.real == real_ and e.up is up and e.changed


def is_tr(name: str, ok: bool) -> Callable[[Event], bool]:
    return lambda e: isinstance(e, TrackerResult) and e.tracker == name and e.ok is ok and e.changed


async def transition(
    rec: Recorder, pred: Callable[[Event], bool], action: Callable[[], object], timeout: float = 10.0
) -> Event:
    """Do ``action`` (sync or async) and return the first matching event published after it."""
    since = len(rec.events)
    result = action()
    if asyncio.iscoroutine(result):
        await result
    _, event = await rec.arrival(pred, timeout=timeout, since=since)
    return event


# --------------------------------------------------------------------------- network checks


async def test_network_checks_go_down_and_up_across_the_link(
    pair: list[Host], bench: Bench, recorder: Recorder, tmp_path: Path
) -> None:
    a, b = pair
    tls = self_signed(tmp_path)
    if tls is None:
        pytest.skip("no openssl CLI")
    loop = asyncio.get_running_loop()
    web, secure, helo = Web(), Web(), Helo()
    tcp_ok = await Stream(b).serve(accept_and_close)
    tcp_refused = Stream(b)
    placeholder = ns_socket(b, socket.SOCK_STREAM)  # a free port, then nobody listens on it
    tcp_refused.port = placeholder.getsockname()[1]
    placeholder.close()
    tcp_hung = Stream(b).hang()
    http = await Stream(b).serve(lambda s: asyncio.start_server(web.handle, sock=s))
    https = await Stream(b).serve(lambda s: asyncio.start_server(secure.handle, sock=s, ssl=tls))
    smtp = await Stream(b).serve(lambda s: loop.create_server(lambda: SMTP(helo, hostname="mx.lab"), sock=s))
    dns = await Datagram(b, lambda: DnsResponder("answer")).start()
    udp = await Datagram(b, UdpEcho).start()
    ping_ip = b.ipv4 + 100
    b.ip("addr", "add", f"{ping_ip}/24", "dev", "eth0")

    c = common(a)
    url = f"url {{\n        path /health\n        digest {DIGEST}\n        status_code 200\n      }}"
    conf = f"""
global_defs {{
  script_user root
}}
virtual_server {b.ipv4} 80 {{
  protocol TCP
  lb_algo rr
  lb_kind NAT
{real(b.ipv4, tcp_ok.port, "TCP_CHECK", c)}
{real(b.ipv4, tcp_refused.port, "TCP_CHECK", c)}
{real(b.ipv4, tcp_hung.port, "TCP_CHECK", c)}
{real(b.ipv4, http.port, "HTTP_GET", c, url)}
{real(b.ipv4, https.port, "SSL_GET", c, url)}
{real(b.ipv4, smtp.port, "SMTP_CHECK", c, "helo_name lb.lab")}
{real(ping_ip, 1, "PING_CHECK", c)}
}}
virtual_server {b.ipv4} 53 {{
  protocol UDP
  lb_algo rr
  lb_kind NAT
{real(b.ipv4, dns.port, "DNS_CHECK", c, "type A", "name www.example.org")}
{real(b.ipv4, udp.port, "UDP_CHECK", c, "payload 6c 69 66 65", "require_reply")}
}}
"""
    bench.checker(a, bench.tag, conf)
    rs = {
        name: f"{addr}:{port}"
        for name, addr, port in [
            ("tcp_ok", b.ipv4, tcp_ok.port),
            ("tcp_refused", b.ipv4, tcp_refused.port),
            ("tcp_hung", b.ipv4, tcp_hung.port),
            ("http", b.ipv4, http.port),
            ("https", b.ipv4, https.port),
            ("smtp", b.ipv4, smtp.port),
            ("ping", ping_ip, 1),
            ("dns", b.ipv4, dns.port),
            ("udp", b.ipv4, udp.port),
        ]
    }
    try:
        # first real results: up where a server answers, down (never a default "up") elsewhere
        for name in ("tcp_ok", "http", "https", "smtp", "ping", "dns", "udp"):
            await recorder.arrival(is_rs(rs[name], True), timeout=15)
        _, refused = await recorder.arrival(is_rs(rs["tcp_refused"], False))
        _, hung = await recorder.arrival(is_rs(rs["tcp_hung"], False))
        assert isinstance(refused, RealServerHealth) and "ECONNREFUSED" in refused.detail
        assert isinstance(hung, RealServerHealth) and hung.detail == "timeout"
        assert not any(e.up for e in recorder.reals(rs["tcp_refused"]) + recorder.reals(rs["tcp_hung"]))
        # the probes crossed the link from a's address (bindto) and out of its eth0 (bind_if)
        assert web.peers and set(web.peers) == {str(a.ipv4)}
        assert secure.peers and set(secure.peers) == {str(a.ipv4)}
        assert helo.helo and set(helo.helo) == {"lb.lab"}

        # TCP: refused -> accepting; hung -> accepting -> hung again; accepting -> stopped
        await transition(
            recorder, is_rs(rs["tcp_refused"], True), lambda: tcp_refused.serve(accept_and_close)
        )
        await transition(recorder, is_rs(rs["tcp_hung"], True), lambda: _unhang(tcp_hung))
        ev = await transition(recorder, is_rs(rs["tcp_hung"], False), lambda: _rehang(tcp_hung))
        assert isinstance(ev, RealServerHealth) and ev.detail == "timeout"
        await transition(recorder, is_rs(rs["tcp_ok"], False), tcp_ok.stop)
        await transition(recorder, is_rs(rs["tcp_ok"], True), lambda: tcp_ok.serve(accept_and_close))

        # HTTP and HTTPS: wrong status code, wrong digest, server gone; each comes back
        await http_down_and_up(
            recorder, rs["http"], web, http, lambda s: asyncio.start_server(web.handle, sock=s)
        )
        await http_down_and_up(
            recorder,
            rs["https"],
            secure,
            https,
            lambda s: asyncio.start_server(secure.handle, sock=s, ssl=tls),
        )

        # SMTP: server gone, then back
        await transition(recorder, is_rs(rs["smtp"], False), smtp.stop)
        await transition(
            recorder,
            is_rs(rs["smtp"], True),
            lambda: smtp.serve(lambda s: loop.create_server(lambda: SMTP(helo, hostname="mx.lab"), sock=s)),
        )

        # DNS and UDP: responder gone (port unreachable / no answer), then back
        for name, dgram in (("dns", dns), ("udp", udp)):
            await transition(recorder, is_rs(rs[name], False), dgram.stop)
            await transition(recorder, is_rs(rs[name], True), dgram.start)

        # ICMP: the address disappears from b, then the link goes down; each time it comes back
        await transition(
            recorder, is_rs(rs["ping"], False), lambda: b.ip("addr", "del", f"{ping_ip}/24", "dev", "eth0")
        )
        await transition(
            recorder, is_rs(rs["ping"], True), lambda: b.ip("addr", "add", f"{ping_ip}/24", "dev", "eth0")
        )
        await transition(recorder, is_rs(rs["ping"], False), lambda: b.ip("link", "set", "eth0", "down"))
        await transition(recorder, is_rs(rs["ping"], True), lambda: _link_up(b, str(ping_ip)))
    finally:
        for st in (tcp_ok, tcp_refused, tcp_hung, http, https, smtp):
            await st.stop()
        dns.stop()
        udp.stop()


async def http_down_and_up(
    rec: Recorder,
    key: str,
    web: Web,
    stream: Stream,
    make: Callable[[socket.socket], Awaitable[asyncio.Server]],
) -> None:
    """HTTP_GET / SSL_GET: down on a wrong status, on a wrong digest and when stopped; up after each."""

    def status(code: int) -> Callable[[], None]:
        return lambda: setattr(web, "status", code)

    def body(data: bytes) -> Callable[[], None]:
        return lambda: setattr(web, "body", data)

    ev = await transition(rec, is_rs(key, False), status(503))
    assert isinstance(ev, RealServerHealth) and "503" in ev.detail, ev
    await transition(rec, is_rs(key, True), status(200))
    ev = await transition(rec, is_rs(key, False), body(b"defaced\n"))
    assert isinstance(ev, RealServerHealth) and "digest" in ev.detail.lower(), ev
    await transition(rec, is_rs(key, True), body(BODY))
    await transition(rec, is_rs(key, False), stream.stop)
    await transition(rec, is_rs(key, True), lambda: stream.serve(make))


async def _unhang(stream: Stream) -> None:
    await stream.stop()
    await stream.serve(accept_and_close)


async def _rehang(stream: Stream) -> None:
    await stream.stop()
    stream.hang()


def _link_up(host: Host, extra: str) -> None:
    host.ip("link", "set", "eth0", "up")
    host.ip("addr", "replace", f"{extra}/24", "dev", "eth0")  # kept over a down/up, but be sure


# --------------------------------------------------------------------------- scripts and files


async def test_misc_and_file_checks_go_down_and_up(
    pair: list[Host], bench: Bench, recorder: Recorder, tmp_path: Path
) -> None:
    a, b = pair
    flag, value = tmp_path / "misc.state", tmp_path / "file.value"
    flag.write_text("ok\n")
    value.write_text("0\n")
    script = tmp_path / "misc.sh"
    script.write_text(f'#!/bin/sh\nst=$(cat {flag})\n[ "$st" = hang ] && exec sleep 30\n[ "$st" = ok ]\n')
    script.chmod(0o755)
    conf = f"""
global_defs {{
  script_user root
}}
track_file lab_value {{
  file {value}
}}
virtual_server {b.ipv4} 80 {{
  protocol TCP
  lb_algo rr
  lb_kind NAT
  delay_loop 0.3
  retry 0
  warmup 0
{real(b.ipv4, 8080, "MISC_CHECK", f'misc_path "{script}"', "misc_timeout 1")}
{real(b.ipv4, 8081, "FILE_CHECK", "track_file lab_value", "weight 0")}
}}
"""
    bench.checker(a, bench.tag, conf)
    misc, file_ = f"{b.ipv4}:8080", f"{b.ipv4}:8081"
    await recorder.arrival(is_rs(misc, True), timeout=15)
    await recorder.arrival(is_rs(file_, True), timeout=15)

    ev = await transition(recorder, is_rs(misc, False), lambda: flag.write_text("fail\n"))
    assert isinstance(ev, RealServerHealth) and ev.checker.value == "MISC_CHECK"
    await transition(recorder, is_rs(misc, True), lambda: flag.write_text("ok\n"))
    ev = await transition(recorder, is_rs(misc, False), lambda: flag.write_text("hang\n"))
    assert isinstance(ev, RealServerHealth) and "tim" in ev.detail.lower(), ev
    await transition(recorder, is_rs(misc, True), lambda: flag.write_text("ok\n"))

    ev = await transition(recorder, is_rs(file_, False), lambda: value.write_text("7\n"))
    assert isinstance(ev, RealServerHealth) and ev.checker.value == "FILE_CHECK"
    await transition(recorder, is_rs(file_, True), lambda: value.write_text("0\n"))


# --------------------------------------------------------------------------- trackers in a namespace


def fake_daemon(tmp: Path, name: str) -> Path:
    """A copy of ``sleep`` named ``name``: its comm (what ``process NAME`` matches) is ``name``."""
    path = tmp / name
    shutil.copy2(shutil.which("sleep") or "/bin/sleep", path)
    return path


async def test_trackers_inside_a_namespace(
    pair: list[Host], bench: Bench, recorder: Recorder, tmp_path: Path
) -> None:
    a, _ = pair
    daemon_name = f"lld{uuid.uuid4().hex[:8]}"  # comm is at most 15 characters
    daemon = fake_daemon(tmp_path, daemon_name)
    flag = tmp_path / "script.state"
    flag.write_text("ok\n")
    script = tmp_path / "chk.sh"
    script.write_text(f'#!/bin/sh\nst=$(cat {flag})\n[ "$st" = hang ] && exec sleep 30\n[ "$st" = ok ]\n')
    script.chmod(0o755)
    conf = f"""
global_defs {{
  script_user root
}}
vrrp_script chk {{
  script "{script}"
  interval 0.3
  timeout 1
  weight 10
}}
vrrp_track_process daemon {{
  process {daemon_name}
  weight -20
  delay 0.5
}}
"""

    def start_daemon() -> subprocess.Popen[bytes]:
        """``ip netns exec`` execs the daemon: its pid is ``Popen.pid``."""
        return subprocess.Popen(["ip", "netns", "exec", a.name, str(daemon), "600"])

    proc = start_daemon()
    try:
        bench.checker(a, bench.tag, conf)
        await recorder.arrival(is_tr("chk", True), timeout=15)
        await recorder.arrival(is_tr("daemon", True), timeout=15)

        # the daemon dies inside the namespace: seen (pidfd) although no process connector answers
        t0 = time.monotonic()
        ev = await transition(recorder, is_tr("daemon", False), lambda: os.kill(proc.pid, signal.SIGKILL))
        took = time.monotonic() - t0
        print(f"\nprocess death in a netns -> TrackerResult: {took * 1000:.0f} ms")
        assert took < 2.0  # generous: pidfd wake-up is milliseconds
        assert isinstance(ev, TrackerResult) and ev.contribution == -20
        proc.wait(5)
        since = len(recorder.events)
        proc = start_daemon()  # found by the scan (every 0.2 s here), reported after the delay
        await recorder.arrival(is_tr("daemon", True), since=since, timeout=10)

        # vrrp_script: fail (exit 1), back, hang (timeout counts as failure), back
        ev = await transition(recorder, is_tr("chk", False), lambda: flag.write_text("fail\n"))
        assert isinstance(ev, TrackerResult) and ev.exit_code == 1 and ev.contribution == 0
        await transition(recorder, is_tr("chk", True), lambda: flag.write_text("ok\n"))
        ev = await transition(recorder, is_tr("chk", False), lambda: flag.write_text("hang\n"))
        assert isinstance(ev, TrackerResult) and "timed out" in ev.detail, ev
        await transition(recorder, is_tr("chk", True), lambda: flag.write_text("ok\n"))
    finally:
        proc.kill()
        proc.wait(5)


# --------------------------------------------------------------------------- the seed's second example


def has_vip(host: Host, vip: str) -> bool:
    return host.holds(vip)


def pids_of(exe: Path) -> list[int]:
    out = []
    for p in psutil.process_iter(["exe", "status"]):
        if p.info["exe"] == str(exe) and p.info["status"] != psutil.STATUS_ZOMBIE:
            out.append(p.pid)
    return out


async def test_archwiki_example_2_sshd_death_moves_mastership(
    pair: list[Host], bench: Bench, tmp_path: Path
) -> None:
    """archwiki-2-monitor-host-{a,b}.conf (AH, nopreempt, track_process sshd), smtp_server aside.

    Each node runs vrrp + checker; each checker has its own PID namespace with its
    own fake ``sshd`` (a copy of ``sleep`` named ``sshd``: comm ``sshd``), as two
    machines would.  Host a (priority 20) becomes master first; killing a's
    ``sshd`` fails ``track_sshd`` (no weight: the instance goes FAULT, after
    ``delay 1``) and the VIP moves to b; a's ``sshd`` back, a does not take it back
    (``nopreempt``).  Mail is not sent: no notifier runs.
    """
    vip = "172.16.0.100"
    confs = {}
    for h in ("a", "b"):
        text = (EXAMPLES / f"archwiki-2-monitor-host-{h}.conf").read_text()
        # the loader refuses an smtp_server that does not resolve (no DNS in the lab): point
        # it at nothing instead; no notifier runs, so no mail is attempted either way
        assert "smtp_server mail.example.net" in text
        confs[h] = text.replace("smtp_server mail.example.net", "smtp_server 127.0.0.1")
    assert "auth_type AH" in confs["a"] and "process sshd" in confs["a"]
    a, b = pair
    rec = await Recorder().start(bench.server.url, f"{bench.tag}-a")
    sshd: dict[str, Path] = {}
    try:
        for host, h in ((a, "a"), (b, "b")):
            (tmp_path / h).mkdir()
            sshd[h] = fake_daemon(tmp_path / h, "sshd")
            node = f"{bench.tag}-{h}"
            bench.checker(host, node, confs[h], own_pid_ns=True, before=f"{sshd[h]} 600 &")
            bench.vrrp(host, node, confs[h])
            if h == "a":  # deterministic roles: a alone first (nopreempt: first master stays)
                await rec.arrival(is_tr("track_sshd", True), timeout=15)
                took = await await_until("a to hold the VIP", lambda: has_vip(a, vip), 15)
                print(f"\na master after {took:.1f} s")
        await asyncio.sleep(3.0)  # b is up and BACKUP; adverts with AH flow from a
        assert has_vip(a, vip) and not has_vip(b, vip)
        with Capture(b.name, "eth0", ETH_P_IP) as cap:  # the adverts really are AH (proto 51)
            ah = cap.frames(1, 3.0, lambda f: len(f) > 23 and f[23] == IPPROTO_AH)
        assert ah, "no AH-authenticated VRRP advert from a"
        assert len(pids_of(sshd["a"])) == 1 and len(pids_of(sshd["b"])) == 1

        t0 = time.monotonic()
        os.kill(pids_of(sshd["a"])[0], signal.SIGKILL)
        _, ev = await rec.arrival(is_tr("track_sshd", False), timeout=5)
        assert isinstance(ev, TrackerResult) and ev.faults
        moved = await await_until("b to take the VIP", lambda: has_vip(b, vip) and not has_vip(a, vip), 10)
        print(f"sshd killed on a -> VIP on b after {time.monotonic() - t0:.2f} s ({moved:.2f} s wait)")
        await asyncio.sleep(2.0)  # and it stays there
        assert has_vip(b, vip) and not has_vip(a, vip)

        # sshd back on a: track_sshd recovers, a leaves FAULT for BACKUP and, nopreempt, stays
        # there although its priority (20) is higher than b's (15)
        since = len(rec.events)
        checker_a = next(p for p in bench.procs if p.log_path.name == f"{bench.tag}-a-checker.log")
        inner = psutil.Process(checker_a.proc.pid).children()[0].pid  # PID 1 of a's PID namespace
        subprocess.Popen(["nsenter", "-t", str(inner), "-p", "-m", "--", str(sshd["a"]), "600"])
        await rec.arrival(is_tr("track_sshd", True), since=since, timeout=10)
        await asyncio.sleep(4.0)  # more than a Master_Down_Interval of a at priority 20
        assert has_vip(b, vip) and not has_vip(a, vip)
    finally:
        await rec.close()


# --------------------------------------------------------------------------- keepalived's tracker in a netns

TRACKED = """
global_defs {{
  router_id {router}
}}
vrrp_track_process trk {{
  process {name}
  delay 1
}}
vrrp_instance VI_1 {{
  state BACKUP
  interface eth0
  virtual_router_id {vrid}
  priority 100
  advert_int 1
  virtual_ipaddress {{
    {vip}
  }}
  track_process {{
    trk
  }}
}}
"""


@pytest.mark.interop
@pytest.mark.skipif(shutil.which("keepalived") is None, reason="keepalived is not installed")
async def test_track_process_in_a_netns_keepalived_faults_ours_does_not(
    pair: list[Host], bench: Bench, tmp_path: Path
) -> None:
    """The same ``vrrp_track_process`` on a running process, each in its own network namespace.

    keepalived 2.2.7 (host a) relies on the kernel's process connector, which refuses it outside
    the initial network namespace, so it enters FAULT although the process runs.  Ours (host b:
    vrrp + checker) tracks by pidfd + scan: the tracker is OK and the instance becomes MASTER.
    """
    a, b = pair
    name = f"lld{uuid.uuid4().hex[:8]}"
    daemon = fake_daemon(tmp_path, name)
    proc = subprocess.Popen([str(daemon), "600"])
    conf = tmp_path / "keepalived.conf"
    conf.write_text(TRACKED.format(router="ka", name=name, vrid=61, vip="192.0.2.61"))
    log_path = tmp_path / "keepalived.log"
    argv = ["keepalived", "-n", "-l", "-D", "-f", str(conf)]
    argv += ["-p", str(tmp_path / "k.pid"), "-r", str(tmp_path / "v.pid"), "-c", str(tmp_path / "c.pid")]
    with log_path.open("ab") as log:
        ka = subprocess.Popen(["ip", "netns", "exec", a.name, *argv], stdout=log, stderr=subprocess.STDOUT)
    node = f"{bench.tag}-b"
    rec = await Recorder().start(bench.server.url, node)
    try:
        ours = TRACKED.format(router="ours", name=name, vrid=62, vip="192.0.2.62")
        bench.checker(b, node, ours)
        bench.vrrp(b, node, ours)
        _, ev = await rec.arrival(is_tr("trk", True), timeout=15)
        assert isinstance(ev, TrackerResult) and "1 process" in ev.detail
        await await_until("ours to become MASTER", lambda: has_vip(b, "192.0.2.62"), 10)
        await await_until(
            "keepalived to give up on the process connector",
            lambda: "quorum not achieved" in log_path.read_text(errors="replace"),
            10,
        )
        text = log_path.read_text(errors="replace")
        print(
            "\nkeepalived:",
            *[ln for ln in text.splitlines() if "process event" in ln or "FAULT" in ln],
            sep="\n",
        )
        assert "process event listen" in text  # the connector refuses (errno 111) in a netns
        assert "entering FAULT state" in text
        assert not has_vip(a, "192.0.2.61") and proc.poll() is None  # its process is running all along
    finally:
        await rec.close()
        ka.send_signal(signal.SIGTERM)
        try:
            ka.wait(5)
        except subprocess.TimeoutExpired:
            ka.kill()
            ka.wait(5)
        proc.kill()
        proc.wait(5)
