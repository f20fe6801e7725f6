"""HTTP on the VIP: a tiny server in each node's namespace, a client asking every 20 ms, and the tally.

Why this shape: what an operator cares about during a migration is requests
that fail, so the lab counts them instead of inferring them from timers.
Each node answers ``GET /`` on every address (the VIP included, whenever it
holds it) with its own role, so a reply also says which node served it.  The
client opens a new TCP connection per request, as a stateless HTTP client
does, so each request independently asks "is the VIP reachable now?".

One thread runs one asyncio loop for everything: it joins the client's
namespace, so the sockets it opens are the client's; the servers' listening
sockets are made beforehand inside each node's namespace (a socket stays in
the namespace it was created in), and accepted connections belong to theirs.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from shared.lab.netns import in_namespace, join_namespace
from shared.lab.segment import Host

PORT = 8080
PERIOD = 0.02
"""Seconds between two requests (each on its own connection)."""
TIMEOUT = 1.0
"""A request that has no answer by then is lost (a lost SYN is only retried after 1 s anyway)."""


@dataclass(frozen=True)
class Request:
    sent: float
    """``time.monotonic()`` when it was issued."""
    served_by: str | None
    """The role of the node that answered; None when it failed or timed out."""


@dataclass(frozen=True)
class Step:
    """What the requests issued during one step of the procedure saw."""

    name: str
    requests: int
    lost: int
    outage: float
    """Seconds from the first to the last lost request of the step (0 when none was lost)."""
    served_by: tuple[str, ...]
    """Who answered, in the order it changed (``("a", "b")``: a, then b)."""


def _listener(host: Host) -> socket.socket:
    def make() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", PORT))
        sock.listen(256)
        sock.setblocking(False)
        return sock

    return in_namespace(host.name, make)


@dataclass
class Traffic:
    """Servers on ``nodes``, a client in ``client`` asking ``vip`` every :data:`PERIOD` s until stopped."""

    nodes: Sequence[Host]
    client: Host
    vip: str
    requests: list[Request] = field(default_factory=list)
    marks: list[tuple[str, float]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _error: BaseException | None = None

    def start(self) -> Traffic:
        listeners = [(node.role, _listener(node)) for node in self.nodes]
        self._thread = threading.Thread(target=self._run, args=(listeners,), name="http-traffic", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(TIMEOUT + 5)
        if self._error is not None:
            raise self._error

    def mark(self, name: str) -> None:
        """A new step starts now: requests from here on count for ``name``."""
        self.marks.append((name, time.monotonic()))

    def answered_since(self, since: float, role: str) -> int:
        """Requests issued after ``since`` that ``role`` answered (a probe for ``wait_until``)."""
        return sum(1 for r in list(self.requests) if r.sent >= since and r.served_by == role)

    def steps(self) -> list[Step]:
        """The tally per step (call after :meth:`stop`, so every request has its verdict)."""
        bounds = [*(t for _, t in self.marks[1:]), float("inf")]
        out = []
        for (name, begin), end in zip(self.marks, bounds, strict=True):
            mine = sorted((r for r in self.requests if begin <= r.sent < end), key=lambda r: r.sent)
            lost = [r.sent for r in mine if r.served_by is None]
            order: list[str] = []
            for r in mine:
                if r.served_by is not None and (not order or order[-1] != r.served_by):
                    order.append(r.served_by)
            outage = lost[-1] - lost[0] + PERIOD if lost else 0.0
            out.append(Step(name, len(mine), len(lost), outage, tuple(order)))
        return out

    # --- the loop (its own thread, in the client's namespace) -------------------------
    def _run(self, listeners: list[tuple[str, socket.socket]]) -> None:
        try:
            join_namespace(self.client.name)
            asyncio.run(self._main(listeners))
        except BaseException as exc:  # handed to the test's thread by stop()
            self._error = exc

    async def _main(self, listeners: list[tuple[str, socket.socket]]) -> None:
        servers = [await asyncio.start_server(_answer(role), sock=sock) for role, sock in listeners]
        pending: set[asyncio.Task[None]] = set()
        next_at = time.monotonic()
        while not self._stop.is_set():
            task = asyncio.create_task(self._one(time.monotonic()))
            pending.add(task)
            task.add_done_callback(pending.discard)
            next_at += PERIOD
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        if pending:
            await asyncio.wait(pending)
        for server in servers:
            server.close()

    async def _one(self, sent: float) -> None:
        served_by: str | None = None
        with contextlib.suppress(OSError, TimeoutError):  # refused, reset, unreachable, or no answer in time
            served_by = await asyncio.wait_for(_get(self.vip), TIMEOUT)
        self.requests.append(Request(sent, served_by))


async def _get(vip: str) -> str:
    reader, writer = await asyncio.open_connection(vip, PORT)
    try:
        writer.write(b"GET / HTTP/1.0\r\nHost: vip\r\n\r\n")
        reply = await reader.read()
    finally:
        writer.close()
    head, _, body = reply.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.0 200"):
        raise OSError(f"unexpected reply {reply!r}")
    return body.decode().strip()


def _answer(role: str) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    """A connection handler that answers every request with ``role``."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + role.encode() + b"\n")
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    return handle
