"""``lifeline up`` as the nats-level tests drive it: one node, its log, its children by service."""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import sys
from pathlib import Path

import psutil  # type: ignore[import-untyped]

from shared.lab.nats import free_port

SERVICES = ("vrrp", "checker", "notifier")
"""What ``lifeline up`` starts for a file without LVS or BFD."""


class Up:
    """``lifeline up --config CONF --node NODE`` with its log: every line its services print lands there."""

    def __init__(self, tmp_path: Path, conf: Path, node: str, store: Path | None = None) -> None:
        self.store = store or tmp_path / "store"
        self.log_path = tmp_path / "up.log"
        argv = [sys.executable, "-m", "shared.cli.main", "up", "--config", str(conf), "--node", node]
        argv += ["--nats-port", str(free_port()), "--store-dir", str(self.store)]
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT)
        self.ps = psutil.Process(self.proc.pid)

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def count(self, pattern: str) -> int:
        return len(re.findall(pattern, self.text(), flags=re.M))

    def pids(self) -> dict[str, int]:
        """Each running service's pid by name."""
        return {name: pid for name, pid in self.all_pids().items() if name != "nats-server"}

    def all_pids(self) -> dict[str, int]:
        """The services' pids and ``nats-server``'s (a test that must see the server was not restarted)."""
        found = {}
        for child in self.ps.children():
            with contextlib.suppress(psutil.NoSuchProcess):
                cmd = child.cmdline()
                found.update({s: child.pid for s in SERVICES if f"services.{s}" in cmd})
                if cmd and "nats-server" in cmd[0]:
                    found["nats-server"] = child.pid
        return found

    def close(self) -> None:
        """Stop ``lifeline up`` as an operator would; whatever it leaves (a failed test) is killed."""
        left: list[psutil.Process] = []
        if self.proc.poll() is None:
            left = self.ps.children(recursive=True)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for child in left:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        self._log.close()


def service_pid(up: psutil.Process, module: str) -> int | None:
    """The pid of ``lifeline up``'s child running ``module`` (``services.notifier``), None if none runs."""
    for child in up.children():
        try:
            if module in child.cmdline():
                return child.pid
        except psutil.NoSuchProcess:
            continue
    return None
