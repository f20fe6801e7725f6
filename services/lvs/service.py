"""The lvs service on the bus: health in, kernel programmed, PoolEvents out, status and reload.

Why the kernel comes first: the table is reconciled from the configuration
before NATS is even reached, so a node that boots with the bus down still
forwards traffic to every real server (all start alive, as in keepalived
without ``alpha``).  The bus only refines membership afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg

from services.lvs.core.sync import sync_plan, wanted
from services.lvs.core.timeouts import TimeoutKeeper
from services.lvs.engine import Engine
from services.lvs.kernel.addresses import AddressWatch
from services.lvs.kernel.ipvs import Ipvs, IpvsError
from shared.bus import connect, register_service
from shared.bus.trust import Refusals, live_event
from shared.config.model import Config
from shared.config.support import Area
from shared.events import (
    PREFIX,
    InstanceState,
    RealServerHealth,
    Service,
    VrrpState,
    decode_for_subject,
    encode_token,
    instance_subject,
)
from shared.runner.run import ReloadRefused, ServiceContext, ServiceSpec, StartFailed

log = logging.getLogger("lifeline.lvs")
VERSION = "0.1.0"


@dataclass
class Options:
    node: str
    keep: bool = False
    """Leave the table in the kernel at stop (keepalived's ``-I``/``--dont-release-ipvs``)."""
    state_file: Path | None = None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--keep",
        action="store_true",
        help="leave virtual and real servers in the kernel at stop (keepalived -I)",
    )
    parser.add_argument(
        "--state-file",
        help="where the services this node created are remembered across restarts "
        "(default /run/lifeline/lvs-NODE.json)",
    )


class LvsService:
    """The IPVS table of one node, following the checker's health and (for sync daemons) vrrp's state."""

    def __init__(self, ctx: ServiceContext, config: Config) -> None:
        self.ctx = ctx
        state = getattr(ctx.args, "state_file", None) or f"/run/lifeline/lvs-{ctx.node}.json"
        self.options = Options(
            node=ctx.node, keep=bool(getattr(ctx.args, "keep", False)), state_file=Path(state)
        )
        self.netns_ipvs = config.global_defs.net_namespace_ipvs
        try:
            self.ipvs = Ipvs(netns=self.netns_ipvs)
        except OSError as exc:  # IpvsError, or a net_namespace_ipvs that cannot be joined
            raise StartFailed(f"IPVS: {exc}") from None
        self.globals = config.global_defs
        self.timeouts = TimeoutKeeper()
        self.engine = Engine(self.ipvs, config.lvs, self.options.state_file)
        self.sync = sync_plan(config)
        self.vrrp_state: VrrpState | None = None
        self.refused = Refusals("lvs")
        """Health or state messages no client published (``shared.bus.trust.live_event``): never applied."""
        self.publisher = ctx.publisher()
        self.nc: Client | None = None
        self._bus_task: asyncio.Task[None] | None = None
        self._watch: AddressWatch | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        self._apply_timeouts()
        if self.globals.lvs_flush:  # keepalived flushes at start only, never at a reload
            log.info("lvs_flush: flushed the IPVS table (%d services)", self.ipvs.flush())
        report = self.engine.reconcile("start")
        log.info("kernel ready: %d operations", report.ops)
        self._apply_sync()
        await self._ensure_address_watch()
        for pool in self.engine.pools.values():
            for event in pool.startup_events():
                self.publisher.publish(event)
        self._bus_task = asyncio.create_task(self._bus())

    async def _bus(self) -> None:
        self.nc = await connect(self.ctx.nats_url, self.ctx.client_name, settings=self.ctx.settings)
        await self.nc.subscribe(f"{PREFIX}.{encode_token(self.options.node)}.check.>", cb=self._on_health)
        if self.sync is not None and self.sync.instance:
            await self.nc.subscribe(instance_subject(self.options.node, self.sync.instance), cb=self._on_vrrp)
        await self.publisher.start(self.nc)
        await register_service(
            self.nc,
            node=self.options.node,
            service=Service.LVS,
            version=VERSION,
            status=self.status,
            reload=self.ctx.reload_request,
            publisher=self.publisher,
        )
        log.info("on the bus as %s", self.options.node)

    async def _ensure_address_watch(self) -> None:
        """Start watching local addresses once some virtual server has ``ha_suspend`` with an address.

        The snapshot is taken before the bus is joined, so a backup node's
        suspended virtual servers ignore health from the first message on.
        If netlink fails, nothing is suspended (logged): better to follow
        health than to freeze a pool on a guess.
        """
        for name in self.engine.suspension.unsuspendable:
            log.warning("%s: ha_suspend needs a virtual server address; ignored for fwmark", name)
        if self._watch is not None or not self.engine.suspension.watch:
            return
        watch: AddressWatch | None = None
        try:
            watch = AddressWatch()
            snapshot = await watch.snapshot()
        except Exception as exc:
            log.error("ha_suspend: cannot read local addresses (%s); health is never ignored", exc)
            if watch is not None:
                watch.close()
            return
        self.engine.addresses(snapshot)
        self._watch = watch
        self._watch_task = asyncio.create_task(self._follow_addresses(watch))

    async def _follow_addresses(self, watch: AddressWatch) -> None:
        """Apply every address change to the suspension state (the VIP comes and goes with VRRP)."""
        try:
            async for event in watch.events():
                async with self._lock:
                    self.engine.address(event.index, event.address, event.present)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("ha_suspend: address watch failed (%s); suspension frozen as it is", exc)

    async def _on_health(self, msg: Msg) -> None:
        if not live_event(msg.reply, msg.headers):
            self.refused.refuse(
                msg.subject, "not published by a client (JetStream answered a request aimed here)"
            )
            return
        try:
            event = decode_for_subject(msg.subject, msg.data)
        except (msgspec.ValidationError, msgspec.DecodeError, ValueError) as exc:
            log.warning("ignoring %s: %s", msg.subject, exc)
            return
        if not isinstance(event, RealServerHealth):
            return
        async with self._lock:
            events = self.engine.health(
                event.virtual,
                event.real,
                event.up,
                checker=str(event.checker),
                weight=event.weight,
                ts_ns=event.ts,
            )
        for pool_event in events:
            log.info("%s %s %s", pool_event.virtual, pool_event.kind, pool_event.real or "")
            self.publisher.publish(pool_event)

    async def _on_vrrp(self, msg: Msg) -> None:
        """The instance ``lvs_sync_daemon`` names changed state: master or backup sync daemon."""
        if not live_event(msg.reply, msg.headers):
            self.refused.refuse(
                msg.subject, "not published by a client (JetStream answered a request aimed here)"
            )
            return
        try:
            event = decode_for_subject(msg.subject, msg.data)
        except (msgspec.ValidationError, msgspec.DecodeError, ValueError) as exc:
            log.warning("ignoring %s: %s", msg.subject, exc)
            return
        if isinstance(event, InstanceState) and event.state != self.vrrp_state:
            self.vrrp_state = event.state
            async with self._lock:
                self._apply_sync()

    def _apply_timeouts(self) -> None:
        """``lvs_timeouts``: set, or the kernel's own values back once a reload removed the keyword."""
        try:
            send = self.timeouts.on_config(self.globals.lvs_timeouts, self.ipvs.timeouts)
            if send is not None:
                self.ipvs.set_timeouts(send)
                log.info("IPVS timeouts: %s", send)
        except IpvsError as exc:
            log.error("lvs_timeouts: %s", exc)  # keepalived logs "Failed to set ipvs timeouts" and goes on

    def _apply_sync(self) -> None:
        if self.sync is None:
            return
        try:
            changed = self.ipvs.set_daemons(wanted(self.sync, self.vrrp_state))
        except IpvsError as exc:
            log.error("lvs_sync_daemon: %s", exc)
            return
        if changed:
            log.info("sync daemon follows %s %s", self.sync.instance, self.vrrp_state or "(no state yet)")

    async def status(self) -> dict[str, object]:
        async with self._lock:
            detail = self.engine.status()
            if self.sync is not None:
                detail["sync_daemons"] = [d.__dict__ for d in self.ipvs.daemons()]
            detail["refused_messages"] = self.refused.count
            return detail

    async def apply(self, config: Config) -> str:
        """A valid new file (the runner refused any with errors): only the difference reaches the kernel."""
        if config.global_defs.net_namespace_ipvs != self.netns_ipvs:
            raise ReloadRefused(["net_namespace_ipvs cannot change at a reload: restart the lvs service"])
        async with self._lock:
            try:
                report = self.engine.reload(config.lvs)
            except IpvsError as exc:
                raise ReloadRefused([f"IPVS: {exc}"]) from None
            self.globals = config.global_defs
            self._apply_timeouts()
            self.sync = sync_plan(config)
            self._apply_sync()
        await self._ensure_address_watch()
        return f"{report.ops} operations {report.kinds}"

    async def stop(self) -> None:
        """Remove what we created (unless ``--keep``), announce it for ``omega``, then leave the bus.

        Like keepalived with ``-I``, ``--keep`` removes nothing and therefore
        announces nothing: the real servers stay in service.
        """
        for task in (self._bus_task, self._watch_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._watch is not None:
            self._watch.close()
        if self.options.keep:
            log.info("leaving the IPVS table in place (--keep)")
        else:
            await self._release()
        self._restore_timeouts()
        with contextlib.suppress(Exception):
            await self.publisher.close()
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self.nc.close()
        self.ipvs.close()

    def _restore_timeouts(self) -> None:
        """keepalived puts the kernel's timeouts back at every stop, ``-I`` or not."""
        original = self.timeouts.on_stop()
        if original is not None:
            with contextlib.suppress(IpvsError):
                self.ipvs.set_timeouts(original)
                log.info("IPVS timeouts back to %s", original)

    async def _release(self) -> None:
        async with self._lock:
            try:
                release = self.engine.release(self.globals.lvs_flush_on_stop)
            except IpvsError as exc:
                log.error("IPVS at stop: %s", exc)
                return
        log.info("stop: %d IPVS services removed", release.ops)
        if self.sync is not None:
            with contextlib.suppress(IpvsError):
                self.ipvs.set_daemons(set())
        for event in release.events:
            log.info("omega: %s %s %s", event.virtual, event.kind, event.real or "")
            self.publisher.publish(event)


SPEC = ServiceSpec(
    name="lvs",
    description="lifeline lvs service: the kernel IPVS table (docs/lvs.md)",
    build=LvsService,
    add_arguments=add_arguments,
    areas=frozenset({Area.LVS}),
)
"""What ``python -m services.lvs`` runs (``shared.runner``)."""
