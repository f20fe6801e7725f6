"""The bfd service: keepalived's ``bfd_instance`` sessions, their state on the bus as tracker results.

Each session is a sans-IO ``BfdSession`` (``core/session.py``) driven by the
event loop's clock: a timer handle per session re-armed at its
``next_deadline()`` after every input, on the precise loop the vrrp service
uses (transmit jitter and detection times are tens of milliseconds).  A
state change is logged and published as a ``TrackerResult`` of kind ``bfd``
on the tracker subject named after the ``bfd_instance``: the path a
``track_bfd`` in vrrp already follows (weight, ``reverse``, weight 0 faults).
Packets that fail the codec, the TTL rule or demultiplexing are counted by
reason and dropped (``status``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
from collections import Counter
from dataclasses import dataclass, field

from nats.aio.client import Client

from services.bfd import sockets
from services.bfd.core.packet import Diag, MalformedPacket, SessionState, decode, encode
from services.bfd.core.params import CONTROL_PORT, Transport, session_params, transport
from services.bfd.core.session import (
    Action,
    AdminDown,
    BfdSession,
    Dropped,
    Input,
    Received,
    Reconfigure,
    Send,
    Start,
    StateChanged,
    Tick,
)
from services.vrrp.kernel.precise_loop import precise_loop
from shared.bus import Publisher, connect, register_service
from shared.config.model import Config
from shared.config.model_vrrp import BfdInstance
from shared.config.support import Area
from shared.events import Service, TrackerKind, TrackerResult
from shared.runner.run import ServiceContext, ServiceSpec, StartFailed
from shared.tracker_weights import contribution, faults

log = logging.getLogger("lifeline.bfd")
VERSION = "0.1.0"


@dataclass
class Peer:
    """One running session and its IO."""

    config: BfdInstance
    session: BfdSession
    route: Transport
    sock: socket.socket
    timer: asyncio.TimerHandle | None = None
    counters: Counter[str] = field(default_factory=Counter)
    last_rx: float | None = None
    """Loop time of the last packet accepted (measurements: peer silent -> Down)."""


class BfdService:
    """Every ``bfd_instance`` of the file as a running session."""

    def __init__(self, ctx: ServiceContext, config: Config) -> None:
        self.ctx = ctx
        self.publisher = Publisher(ctx.node)
        self.peers: dict[str, Peer] = {}
        self.dropped: Counter[str] = Counter()
        self.listeners: list[socket.socket] = []
        self.nc: Client | None = None
        self._rng = random.SystemRandom()
        self._bus_task: asyncio.Task[None] | None = None
        self._config = config

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for version in (4, 6):
            try:
                sock = sockets.listener(version)
            except OSError as exc:
                if version == 4:
                    raise StartFailed(f"UDP {CONTROL_PORT}: {exc}") from None
                log.warning("no IPv6 listener: %s", exc)
                continue
            loop.add_reader(sock.fileno(), self._on_readable, sock)
            self.listeners.append(sock)
        for bfd in self._config.vrrp.bfd_instances.values():
            self._add(bfd)
        self._bus_task = asyncio.create_task(self._bus())

    async def _bus(self) -> None:
        self.nc = await connect(self.ctx.nats_url, self.ctx.client_name, settings=self.ctx.settings)
        await self.publisher.start(self.nc)
        await register_service(
            self.nc,
            node=self.ctx.node,
            service=Service.BFD,
            version=VERSION,
            status=self.status,
            reload=self.ctx.reload_request,
            publisher=self.publisher,
        )
        for peer in self.peers.values():  # the starting Down, as keepalived's track_bfd starts
            self._publish(peer)
        log.info("on the bus as %s", self.ctx.node)

    async def apply(self, config: Config) -> str:
        """Sessions added, removed, or retimed in place (a changed address restarts the session)."""
        wanted = config.vrrp.bfd_instances
        removed = [name for name in self.peers if name not in wanted]
        for name in removed:
            self._remove(name)
        added, retimed = [], []
        for name, bfd in wanted.items():
            peer = self.peers.get(name)
            if peer is not None and transport(bfd) != peer.route:
                self._remove(name)
                peer = None
            if peer is None:
                self._add(bfd)
                self._publish(self.peers[name])
                added.append(name)
            elif bfd != peer.config:
                peer.config = bfd
                params = session_params(bfd, peer.session.params.local_discr)
                self._feed(peer, Reconfigure(params))
                self._publish(peer)  # a new weight or reverse changes what the result says
                retimed.append(name)
        self._config = config
        return f"{len(added)} added, {len(removed)} removed, {len(retimed)} retimed"

    async def stop(self) -> None:
        """Tell each peer AdminDown (6.8.16) so it does not count our exit as a failure, then close."""
        for name in list(self.peers):
            self._feed(self.peers[name], AdminDown())
            self._remove(name)
        loop = asyncio.get_running_loop()
        for sock in self.listeners:
            loop.remove_reader(sock.fileno())
            sock.close()
        if self._bus_task is not None:
            self._bus_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._bus_task
        await self.publisher.close()
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self.nc.close()

    # ------------------------------------------------------------------ sessions

    def _add(self, bfd: BfdInstance) -> None:
        used = {p.session.params.local_discr for p in self.peers.values()}
        discr = self._rng.randrange(1, 2**32)
        while discr in used:
            discr = self._rng.randrange(1, 2**32)
        route = transport(bfd)
        session = BfdSession(session_params(bfd, discr), jitter=self._rng.uniform)
        peer = Peer(bfd, session, route, sockets.sender(route, self._rng))
        self.peers[bfd.name] = peer
        log.info("%s: session to %s, local discriminator %d", bfd.name, route.neighbor, discr)
        self._feed(peer, Start())

    def _remove(self, name: str) -> None:
        peer = self.peers.pop(name)
        if peer.timer is not None:
            peer.timer.cancel()
        peer.sock.close()

    def _feed(self, peer: Peer, event: Input) -> None:
        loop = asyncio.get_running_loop()
        self._perform(peer, peer.session.handle(loop.time(), event))
        if peer.timer is not None:
            peer.timer.cancel()
            peer.timer = None
        deadline = peer.session.next_deadline()
        if deadline is not None and peer.config.name in self.peers:
            peer.timer = loop.call_at(deadline, self._feed, peer, Tick())

    def _perform(self, peer: Peer, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                ok = sockets.send(peer.sock, peer.route.neighbor, encode(action.packet))
                peer.counters["tx" if ok else "tx_errors"] += 1
            elif isinstance(action, StateChanged):
                self._changed(peer, action)
            elif isinstance(action, Dropped):
                peer.counters[f"dropped_{action.reason}"] += 1

    def _changed(self, peer: Peer, change: StateChanged) -> None:
        silent = ""
        if change.diag is Diag.DETECTION_TIME_EXPIRED and peer.last_rx is not None:
            silent = (
                f", {1000 * (asyncio.get_running_loop().time() - peer.last_rx):.1f} ms after the last packet"
            )
        log.info(
            "%s: %s -> %s (diag %s)%s",
            peer.config.name,
            change.old.name,
            change.new.name,
            change.diag.name.lower(),
            silent,
        )
        peer.counters[f"to_{change.new.name.lower()}"] += 1
        self._publish(peer)

    def _publish(self, peer: Peer) -> None:
        bfd, state = peer.config, peer.session.state
        ok = state is SessionState.UP
        self.publisher.publish(
            TrackerResult(
                tracker=bfd.name,
                kind=TrackerKind.BFD,
                ok=ok,
                weight=bfd.weight,
                contribution=contribution(bfd.weight, bfd.weight_reverse, ok),
                faults=faults(bfd.weight, bfd.weight_reverse, ok),
                detail=f"{state.name} diag={peer.session.diag.name.lower()}",
            )
        )

    # ------------------------------------------------------------------ receive

    def _on_readable(self, sock: socket.socket) -> None:
        try:
            data, source, ttl = sockets.receive(sock)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            log.warning("receive: %s", exc)
            return
        try:
            packet = decode(data)
        except MalformedPacket as exc:
            self.dropped[exc.reason] += 1
            log.debug("dropped from %s: %s", source, exc)
            return
        peer = self._demultiplex(packet.your_discr, source)
        if peer is None:
            self.dropped["no_session"] += 1
            return
        if not peer.route.accepts(ttl):
            peer.counters["dropped_ttl"] += 1
            return
        peer.counters["rx"] += 1
        peer.last_rx = asyncio.get_running_loop().time()
        session = peer.session
        before = (session.transmit_interval(), session.detection_time())
        self._feed(peer, Received(packet))
        after = (session.transmit_interval(), session.detection_time())
        if after != before:  # what was negotiated: the operator's (and the interop test's) view
            log.info(
                "%s: transmit every %g ms, detection time %g ms",
                peer.config.name,
                1000 * after[0],
                1000 * after[1],
            )

    def _demultiplex(self, your_discr: int, source: str) -> Peer | None:
        """6.8.6: by Your Discriminator when set, else by the peer's address."""
        for peer in self.peers.values():
            if your_discr:
                if peer.session.params.local_discr == your_discr:
                    return peer
            elif str(peer.route.neighbor) == source:
                return peer
        return None

    # ------------------------------------------------------------------ status

    async def status(self) -> dict[str, object]:
        """Every session's state, timers in force and counters; packets dropped before a session."""
        sessions = {
            name: {
                "neighbor": str(p.route.neighbor),
                "state": p.session.state.name,
                "diag": p.session.diag.name.lower(),
                "local_discr": p.session.params.local_discr,
                "remote_discr": p.session.remote_discr,
                "tx_interval_ms": round(1000 * p.session.transmit_interval(), 3),
                "detection_time_ms": round(1000 * p.session.detection_time(), 3),
                "counters": dict(p.counters),
            }
            for name, p in self.peers.items()
        }
        return {"service": "bfd", "node": self.ctx.node, "sessions": sessions, "dropped": dict(self.dropped)}


SPEC = ServiceSpec(
    name="bfd",
    description="lifeline bfd service: keepalived's bfd_instance sessions (docs/bfd.md)",
    build=BfdService,
    loop_factory=precise_loop,
    areas=frozenset({Area.BFD}),
)
"""What ``python -m services.bfd`` runs (``shared.runner``)."""
