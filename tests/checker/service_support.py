"""Helpers for the service tests: an in-process checker, a bus recorder, a full-backlog listener."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable
from pathlib import Path

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg

from services.checker.service import CheckerService, Options
from shared.config.load import load_strict
from shared.events import Event, RealServerHealth, TrackerResult, decode, encode_token
from shared.lab.wait import await_until

STEP = 0.005
"""Seconds between two looks at the recorded events (arrival times are stamped on receipt anyway)."""


async def start_service(conf: Path, node: str, url: str, **kw: object) -> CheckerService:
    opts = Options(node=node, nats_url=url, beat=0.1, ttl=0.3, tracker_heartbeat=0.5, process_scan=0.2)
    for k, v in kw.items():
        setattr(opts, k, v)
    svc = CheckerService(load_strict(conf), opts)
    await svc.start()
    return svc


class Recorder:
    """Every tracker and real-server event of one node, with its arrival time."""

    def __init__(self) -> None:
        self.events: list[tuple[float, Event]] = []
        self.nc: Client | None = None

    async def start(self, url: str, node: str) -> Recorder:
        self.nc = await nats.connect(url)
        tok = encode_token(node)
        for subject in (f"lifeline.{tok}.track.>", f"lifeline.{tok}.check.>"):
            await self.nc.subscribe(subject, cb=self._on)
        await self.nc.flush()
        return self

    async def _on(self, msg: Msg) -> None:
        self.events.append((time.perf_counter(), decode(msg.data)))

    def trackers(self, name: str) -> list[TrackerResult]:
        return [e for _, e in self.events if isinstance(e, TrackerResult) and e.tracker == name]

    def reals(self, real: str) -> list[RealServerHealth]:
        return [e for _, e in self.events if isinstance(e, RealServerHealth) and e.real == real]

    def first(self, pred: Callable[[Event], bool], since: int = 0) -> tuple[float, Event] | None:
        """The first event from number ``since`` on that ``pred`` accepts, with its arrival time."""
        return next(((at, e) for at, e in self.events[since:] if pred(e)), None)

    async def arrival(
        self, pred: Callable[[Event], bool], timeout: float = 5.0, since: int = 0
    ) -> tuple[float, Event]:
        """:meth:`first`, once there is one (``timeout`` at most); the time is its arrival, not our look."""
        await await_until(
            "a matching event",
            lambda: self.first(pred, since),
            timeout,
            STEP,
            explain=lambda: f"last: {[e for _, e in self.events[-5:]]}",
        )
        found = self.first(pred, since)
        assert found is not None  # events are only ever appended
        return found

    async def close(self) -> None:
        if self.nc is not None:
            await self.nc.close()


def hanging_listener() -> tuple[socket.socket, int, list[socket.socket]]:
    """A listener whose accept queue is full, so a new connect never completes (a 'hung' server)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)
    port = srv.getsockname()[1]
    fillers = []
    for _ in range(3):
        c = socket.socket()
        c.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            c.connect(("127.0.0.1", port))
        fillers.append(c)
    time.sleep(0.05)
    return srv, port, fillers
