"""The http process: the node's state over HTTP for load balancers, Prometheus and people.

Endpoints (docs/operations.md, "HTTP status, health and live page"):
``/status`` (the ``lifeline status --json`` model, built by the same code,
``shared.cli.status.build_view``, plus the last transitions), ``/health/<instance>``
and ``/health/<instance>/backup`` (200/503, ``core.verdict``), ``/metrics``
(the ``lifeline metrics`` exposition, ``shared.cli.metrics_collect.build``),
``/events`` (server-sent events) and the live page ``/`` (``static/``).

Why a service of its own: load balancers probe every few seconds and a page
holds an event stream open; neither belongs in the vrrp service, which is on
the advert path.  It listens before the bus is reached (a health check then
gets 503, not a refused connection) and on 127.0.0.1 unless told otherwise
(``http_listen``/``http_port`` in lifeline.toml, ``--listen``/``--port``):
there is no authentication and the page shows the node's whole state.
Its NATS user reads and never writes (``shared.nats_users``).  A reload
(SIGHUP, the bus endpoint) takes the new keepalived.conf's instance names, the
ones ``/health`` answers 503 rather than 404 for before their first state.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import time
import uuid
from importlib import resources
from typing import Any, Final

import msgspec
import nats.errors
from nats.aio.client import Client

from services.http.core.model import Model, transition_json
from services.http.core.routes import ASSETS, Kind, Route
from services.http.core.sse import frame
from services.http.core.verdict import verdict
from services.http.feed import Feed
from services.http.server import HttpServer, Hub, Response, greeting_frames
from shared.bus import Publisher, connect, register_service
from shared.bus.direct_get import DirectGetError
from shared.cli.fleet import StateEntry
from shared.cli.metrics import CONTENT_TYPE as METRICS_TYPE
from shared.cli.metrics_cache import ScrapeCache
from shared.cli.metrics_collect import build as build_metrics
from shared.cli.status import DEFAULT_STALE_AFTER, Replica, build_view
from shared.config.model import Config
from shared.events import Service, ServiceStatus, VrrpState, status_subject
from shared.redact import REDACTOR
from shared.runner.run import ServiceContext, ServiceSpec, StartFailed

log = logging.getLogger("lifeline.http")

VERSION: Final = "0.1.0"
DISCOVER_EVERY: Final = 1.0
"""Seconds between discovery rounds: how soon a dead vrrp service turns its MASTER into 503."""
JSON: Final = "application/json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--listen", help="address to listen on (default: http_listen, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default: http_port, 9651)")


class HttpService:
    """Serves the model ``feed`` keeps; the bus part runs in a task and comes back after outages."""

    def __init__(self, ctx: ServiceContext, config: Config) -> None:
        self.ctx = ctx
        self.node = ctx.node
        self.listen: str = getattr(ctx.args, "listen", None) or ctx.settings.http_listen
        port = getattr(ctx.args, "port", None)
        self.port: int = port if port is not None else ctx.settings.http_port
        self.instances = _instances(config)
        self.publisher = Publisher(ctx.node)
        self.model = Model()
        self.hub = Hub()
        self.feed = Feed(self.model, self._on_entry)
        self.own = Replica(
            node=self.node, service=Service.HTTP.value, id=ctx.replica or uuid.uuid4().hex, version=VERSION
        )
        self.http = HttpServer(self._respond, self._greeting, self.hub)
        self.metrics = ScrapeCache(self._scrape)
        self.nc: Client | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._synced = False
        """The bucket was read since the last (re)connection: until then it is read again every second."""
        self._assets = {
            name: resources.files("services.http").joinpath("static", name).read_bytes()
            for name, _ in ASSETS.values()
        }

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        try:
            await self.http.start(self.listen, self.port)
        except OSError as exc:
            raise StartFailed(f"cannot listen on {self.listen}:{self.port}: {exc.strerror or exc}") from None
        log.info("http: node %s on http://%s:%d/", self.node, _url_host(self.listen), self.http.port)
        self._tasks.append(asyncio.create_task(self._bus()))

    async def _bus(self) -> None:
        nc = self.nc = await connect(
            self.ctx.nats_url, self.ctx.client_name, settings=self.ctx.settings, on_reconnected=self._resync
        )
        await self.publisher.start(nc)
        await self.feed.follow(nc)
        await self._resync()
        await register_service(
            nc,
            node=self.node,
            service=Service.HTTP,
            version=VERSION,
            status=self.status,
            reload=self.ctx.reload_request,
            publisher=self.publisher,
        )
        self._tasks.append(asyncio.create_task(self._discovery(nc)))

    async def _resync(self) -> None:
        """Read the whole bucket again (after a reconnect: what was missed) and tell every page."""
        self._synced = False
        if self.nc is None:
            return
        try:
            await self.feed.snapshot(self.nc)
        except (DirectGetError, nats.errors.Error, TimeoutError) as exc:
            log.warning("http: reading the state bucket: %s (again in %g s)", exc, DISCOVER_EVERY)
            return
        self._synced = True
        self.hub.publish(self._greeting())

    async def _discovery(self, nc: Client) -> None:
        while True:
            if nc.is_connected and not self._synced:
                await self._resync()
            if nc.is_connected:
                with contextlib.suppress(nats.errors.Error, TimeoutError):
                    if await self.feed.discover(nc, self.own):
                        replicas = [msgspec.to_builtins(r) for r in self.feed.replicas]
                        self.hub.publish(frame(_dumps(replicas), event="replicas"))
            await asyncio.sleep(DISCOVER_EVERY)

    async def apply(self, config: Config) -> str:
        self.instances = _instances(config)
        return f"{len(self.instances)} instance(s) known to /health"

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.http.close()
        with contextlib.suppress(Exception):
            await self.publisher.close()
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self.nc.close()

    async def status(self) -> dict[str, Any]:
        return {
            "listen": f"{self.listen}:{self.http.port if self.http.server else self.port}",
            "event_stream_clients": len(self.hub.subscribers),
            "entries": len(self.model.entries),
            "dropped_messages": self.feed.dropped,
        }

    # ------------------------------------------------------------------ what is served

    @property
    def bus_up(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    def view(self) -> dict[str, Any]:
        """``lifeline status --json``'s document, plus this node, the bus and the last transitions."""
        view = build_view(self.model.sorted_entries(), self.feed.replicas, time.time(), DEFAULT_STALE_AFTER)
        view |= {"node": self.node, "bus_up": self.bus_up, "transitions": transition_json(self.model)}
        tree: dict[str, Any] = REDACTOR.tree(view)
        return tree

    def _greeting(self) -> bytes:
        return greeting_frames(_dumps(self.view()))

    def _on_entry(self, entry: StateEntry) -> None:
        if not self.hub.subscribers:
            return
        rows = build_view([entry], self.feed.replicas, time.time(), DEFAULT_STALE_AFTER)["entries"]
        for row in rows:
            self.hub.publish(frame(_dumps(REDACTOR.tree(row)), event="entry"))
        if entry.kind in ("vrrp.state", "vrrp.group") and self.model.transitions:
            self.hub.publish(frame(_dumps(REDACTOR.tree(self.model.transitions[0])), event="transition"))

    async def _respond(self, where: Route) -> Response:
        match where.kind:
            case Kind.ASSET:
                return Response(200, where.content_type, self._assets[where.asset])
            case Kind.STATUS:
                return Response(200, JSON, _dumps(self.view()).encode())
            case Kind.HEALTH:
                return self._health(where.instance, where.backup)
            case Kind.METRICS:
                return Response(200, METRICS_TYPE, (await self.metrics()).encode())
            case Kind.NOT_ALLOWED:
                return Response(405, "text/plain; charset=utf-8", b"only GET and HEAD\n")
        return Response(
            404, "text/plain; charset=utf-8", b"not found: see / for the page, /status, /health/<instance>\n"
        )

    def _health(self, instance: str, backup: bool) -> Response:
        event = self.model.instance(self.node, instance)
        v = verdict(
            event,
            configured=instance in self.instances,
            backup=backup,
            bus_up=self.bus_up,
            vrrp_live=self.feed.live(self.node, Service.VRRP.value),
        )
        want = VrrpState.BACKUP if backup else VrrpState.MASTER
        body = REDACTOR.tree(v.body(self.node, instance, want, event))
        return Response(v.status, JSON, (_dumps(body) + "\n").encode())

    async def _scrape(self) -> str:
        """``lifeline metrics`` for this node, from the model and the other services' status replies."""
        now = time.time()
        if self.nc is None or not self.nc.is_connected:
            return build_metrics([], {}, now, bus_up=False)
        services = [s.value for s in Service if s != Service.HTTP]
        statuses = await asyncio.gather(*(self._service_status(s) for s in services))
        return build_metrics(self.model.of_node(self.node), dict(zip(services, statuses, strict=True)), now)

    async def _service_status(self, service: str) -> ServiceStatus | None:
        assert self.nc is not None
        try:
            msg = await self.nc.request(status_subject(self.node, service), b"", timeout=1.0)
            return msgspec.json.decode(msg.data, type=ServiceStatus)
        except (nats.errors.Error, TimeoutError, msgspec.DecodeError):
            return None


def _instances(config: Config) -> frozenset[str]:
    return frozenset(config.vrrp.instances)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


SPEC = ServiceSpec(
    name="http",
    description="lifeline http service: status, health checks, metrics, live page (docs/operations.md)",
    build=HttpService,
    add_arguments=add_arguments,
)
"""What ``python -m services.http`` runs (``shared.runner``)."""
