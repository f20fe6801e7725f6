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
import os
import signal
import socket
import subprocess
from pathlib import Path

from shared.lab.netns import in_namespace

CLIENT = "kcl"
BACKENDS = (20, 21, 22, 23, 24, 25, 26, 30)
STEP = 0.05
"""Seconds between two looks at the kernel's table (``shared.lab.wait.wait_until``)."""
LOG_STEP = 0.2
"""Seconds between two looks at a daemon's log: each look reads the file, and emulation is slow."""


def sh(*cmd: str, check: bool = True) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {proc.stderr.strip()}")
    return proc.stdout


def client_socket() -> socket.socket:
    """A TCP socket living in the client namespace (connect it from any thread)."""
    return in_namespace(CLIENT, lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))


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
    """A Python service started once; its output goes to a log we poll for readiness lines.

    Not :class:`shared.lab.daemon.Daemon`: under emulation a service takes
    tens of seconds to start and to stop, so these start when constructed (the
    session starts them all at once) and get a minute to stop.
    """

    def __init__(self, name: str, argv: list[str], workdir: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.log = workdir / f"{name}.log"
        self.proc = subprocess.Popen(
            argv,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )

    def logged(self, text: str, after: int = 0) -> bool:
        """Has it written ``text`` (past the first ``after`` characters)?  Raises once it has exited."""
        if text in self.output()[after:]:
            return True
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited {self.proc.returncode}:\n{self.tail()}")
        return False

    def tail(self) -> str:
        return self.output()[-3000:]

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
