"""The in-VM lab: a director (the VM's root namespace), backends and a client in namespaces.

Layout::

    client ns "kcl" 172.16.0.2 ── eth0 (root, 172.16.0.1 + VIPs .100 .101 .102 .110 .111)
    root (IPVS director, ip_forward) ── bridge "brrs" 172.16.1.1/24
        ├─ ns "krs20" 172.16.1.20  busybox httpd answering "rs20"   (… .21 .22 .23: archwiki example)
        ├─ ns "krs24" 172.16.1.24  httpd + busybox nc echo on 9000  (… .25 .26 .30 sorry: scenario)

The root-side client link is called ``eth0`` because the seed example names
``interface eth0``, and the checker refuses a configuration whose interface
does not exist.  Backends route back through the director, as NAT requires.
Backends are busybox (milliseconds to start), not Python (seconds under TCG).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
CLIENT = "kcl"
BACKENDS = (20, 21, 22, 23, 24, 25, 26, 30)
_libc = ctypes.CDLL(None, use_errno=True)


def sh(*cmd: str, check: bool = True) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {proc.stderr.strip()}")
    return proc.stdout


def in_netns(name: str, fn: Callable[[], T]) -> T:
    """Run ``fn`` in a thread that joined namespace ``name`` (sockets it creates stay there)."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns")
            finally:
                os.close(fd)
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def client_socket() -> socket.socket:
    """A TCP socket living in the client namespace (connect it from any thread)."""
    return in_netns(CLIENT, lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))


def http_get(vip: str, port: int = 80, timeout: float = 3.0) -> str:
    """Body of ``GET /`` through the virtual server: the name of the backend that answered."""
    with client_socket() as s:
        s.settimeout(timeout)
        s.connect((vip, port))
        s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    return data.split(b"\r\n\r\n", 1)[-1].decode().strip()


class Lab:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.httpd: dict[int, subprocess.Popen[bytes]] = {}
        self.echo: subprocess.Popen[bytes] | None = None

    def up(self) -> None:
        sh("modprobe", "ip_vs")
        sh("sysctl", "-qw", "net.ipv4.ip_forward=1")
        sh("ip", "link", "set", "lo", "up")
        sh("ip", "link", "add", "brrs", "type", "bridge")
        sh("ip", "addr", "add", "172.16.1.1/24", "dev", "brrs")
        sh("ip", "link", "set", "brrs", "up")
        for n in BACKENDS:
            self._backend(n)
        sh("ip", "netns", "add", CLIENT)
        sh("ip", "link", "add", "eth0", "type", "veth", "peer", "name", "cl0", "netns", CLIENT)
        sh("ip", "addr", "add", "172.16.0.1/24", "dev", "eth0")
        for vip in ("172.16.0.100", "172.16.0.101", "172.16.0.102", "172.16.0.110", "172.16.0.111"):
            sh("ip", "addr", "add", f"{vip}/32", "dev", "eth0")
        sh("ip", "link", "set", "eth0", "up")
        nsx = ("ip", "netns", "exec", CLIENT)
        sh(*nsx, "ip", "link", "set", "lo", "up")
        sh(*nsx, "ip", "addr", "add", "172.16.0.2/24", "dev", "cl0")
        sh(*nsx, "ip", "link", "set", "cl0", "up")
        sh(*nsx, "ip", "route", "add", "default", "via", "172.16.0.1")
        self.echo = subprocess.Popen(
            ["ip", "netns", "exec", "krs24", "busybox", "nc", "-ll", "-p", "9000", "-e", "/bin/cat"]
        )
        hosts = self.workdir / "hosts"
        hosts.write_text("127.0.0.1 localhost\n127.0.0.1 mail.example.net\n")

    def _backend(self, n: int) -> None:
        ns, veth = f"krs{n}", f"vrs{n}"
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        sh("ip", "link", "set", veth, "master", "brrs", "up")
        nsx = ("ip", "netns", "exec", ns)
        sh(*nsx, "ip", "link", "set", "lo", "up")
        sh(*nsx, "ip", "addr", "add", f"172.16.1.{n}/24", "dev", "eth0")
        sh(*nsx, "ip", "link", "set", "eth0", "up")
        sh(*nsx, "ip", "route", "add", "default", "via", "172.16.1.1")
        www = self.workdir / "www" / str(n)
        www.mkdir(parents=True, exist_ok=True)
        (www / "index.html").write_text(f"rs{n}\n")
        self.start_httpd(n)

    def start_httpd(self, n: int) -> None:
        www = self.workdir / "www" / str(n)
        self.httpd[n] = subprocess.Popen(
            ["ip", "netns", "exec", f"krs{n}", "busybox", "httpd", "-f", "-p", "80", "-h", str(www)]
        )

    def stop_httpd(self, n: int) -> None:
        proc = self.httpd.pop(n)
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def down(self) -> None:
        for proc in [*self.httpd.values(), self.echo]:
            if proc is not None:
                with contextlib.suppress(OSError):
                    proc.kill()


class Daemon:
    """A Python service started once; its output goes to a log we poll for readiness lines."""

    def __init__(self, name: str, argv: list[str], workdir: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.log = workdir / f"{name}.log"
        self.proc = subprocess.Popen(
            argv,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )

    def wait_for(self, text: str, timeout: float = 120.0, after: int = 0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output()[after:]:
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited {self.proc.returncode}:\n{self.output()[-3000:]}")
            time.sleep(0.2)
        raise TimeoutError(f"{self.name}: no {text!r} after {timeout}s:\n{self.output()[-3000:]}")

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def send(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll until true; returns the seconds it took (so tests can report latencies)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.05)
    raise TimeoutError(f"{what}: not true after {timeout}s")
