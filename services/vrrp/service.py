"""The vrrp service: config → plans → running instances, wired to netlink, signals and the bus.

Why the bus is a side task: the advert path (sockets, timers, VIPs) must work
with NATS stopped (docs/vrrp.md).  So instances start before the bus is
connected; ``connect`` retries forever in its own task; events are queued by
``Publisher.publish`` and flushed in order whenever NATS is there.

Order at start (keepalived's): every configured instance's VIPs are removed
first (a restarted service never leaves a stale VIP), link states and known
tracker results are fed in, then ``Start``.  SIGTERM: ``Stop`` on every
machine (priority 0 from masters, VIPs removed, STOP events), the publisher
gets at most one second to flush.  Reload (SIGHUP or the ``reload``
endpoint, both through the runner, which refuses a file with errors as a
whole): ``apply`` hands the new file to ``reload_plan``, which decides per
instance: untouched, changed in place (state, VIPs and timers kept), or
restarted (identity changes only).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
from collections.abc import Iterable, Mapping

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg
from pyroute2 import AsyncIPRoute

from services.vrrp.control import Control
from services.vrrp.core.machine_events import LinkChanged, SourceAddress, Start, VipRemoved
from services.vrrp.core.params import (
    InstancePlan,
    PlanError,
    build_plan,
    configured_source,
    family_of,
    notify_priority_changes,
)
from services.vrrp.core.reload_plan import Verdict, plan_reload, removed_report, same_virtual_router
from services.vrrp.core.trackers import TrackerBook
from services.vrrp.garp_pacer import GarpPacer
from services.vrrp.group_runner import GroupDriver
from services.vrrp.instance import AdvertSender, InstanceIo, InstanceRunner, cancel_quietly
from services.vrrp.keepalived_compat import KeepalivedCompat
from services.vrrp.kernel.addresses import (
    AddressChange,
    InterfaceInfo,
    LinkState,
    Rtnl,
    Vip,
    address_changes,
    has_vip,
    interface_info,
    link_states,
    source_candidates,
)
from services.vrrp.kernel.announce import Announcer
from services.vrrp.kernel.nft import Firewall
from services.vrrp.kernel.precise_loop import precise_loop
from services.vrrp.kernel.receivers import SocketPool
from services.vrrp.kernel.routes import warn_unprogrammable
from services.vrrp.kernel.static_config import StaticConfig
from services.vrrp.kernel.vip_netlink import VipSocket
from services.vrrp.kernel.vmac import VmacBook
from services.vrrp.kernel.watch import follow
from services.vrrp.lifecycle_scripts import run_shutdown_script, run_startup_script, shutdown_time
from services.vrrp.notify_fallback import NotifyFallback
from services.vrrp.packet.ah_sequence import AhSequence
from services.vrrp.resume_file import ResumeFiles
from services.vrrp.resumer import Resumer
from services.vrrp.route_tracking import RouteTracking
from shared.bus import connect, register_service
from shared.bus.direct_get import last_messages
from shared.bus.trust import Refusals, live_event
from shared.config.model import Config
from shared.config.support import Area
from shared.events import (
    PREFIX,
    STATE_BUCKET,
    Notice,
    TrackerKind,
    TrackerResult,
    TransitionReason,
    decode,
    encode_token,
    kv_key_for_subject,
    tracker_subject,
)
from shared.exit_codes import Exit
from shared.runner.run import STOP_BOUND, ServiceContext, ServiceSpec
from shared.settings import node_state_dir

log = logging.getLogger("lifeline.vrrp")

VERSION = "0.1.0"
HITLESS_SIGNAL = signal.SIGQUIT
"""Exit leaving the VIPs and the resume records, to be restarted (an upgrade); not a keepalived signal."""
FLUSH_ON_EXIT = 1.0
TRACKER_STATE_WAIT = 2.0  # seconds a start waits for the bus's last tracker results
"""Seconds the publisher may spend flushing at exit: never block exit on NATS."""


class VrrpService:
    """Everything one vrrp process runs (one per node)."""

    def __init__(self, ctx: ServiceContext, config: Config) -> None:
        self.ctx = ctx
        self.config = config
        self.config_path = ctx.config_path
        self.node = ctx.node
        self.notify_fallback = NotifyFallback.for_node(ctx.settings, lambda: self.config)  # scripts in 1 s
        self.publisher = ctx.publisher()
        self.publisher.observe = self.notify_fallback.observe
        self.runners: dict[str, InstanceRunner] = {}
        self.groups: dict[str, GroupDriver] = {}
        self._group_members: dict[str, list[str]] = {}
        self.control = Control(self)
        self.pool = SocketPool()
        self.vmacs = VmacBook()
        self.static: StaticConfig | None = None
        """static_ipaddress/routes/rules: set at start, removed at stop (keepalived)."""
        self._announcers: dict[str, Announcer] = {}
        self._pacer = GarpPacer()
        self._links: dict[str, bool] = {}
        self._sources: dict[tuple[str, int], bool] = {}
        """(interface, family) → it has an address to send adverts from (for instances with no source set)."""
        self._trackers_read = asyncio.Event()
        self._tracked: set[tuple[str, str]] = set()
        """(name, kind) of every tracker an instance of the running file follows on the bus."""
        """Names of the trackers the instances follow (their state-bucket keys are read at start)."""
        self.refused = Refusals("vrrp")
        """Messages on the tracker subject that no client published (``shared.bus.trust.live_event``)."""
        self._reload_lock = asyncio.Lock()
        self._netlink_lock = asyncio.Lock()
        self._vips = VipSocket()
        self._tasks: list[asyncio.Task[None]] = []
        self._nc: Client | None = None
        self._ipr: Rtnl = None
        self.tracking: RouteTracking | None = None
        """Static items kept in place, track groups, deleted virtual routes (``route_tracking.py``)."""
        self.firewall = Firewall()
        self.book = TrackerBook(asyncio.get_running_loop().time)
        self._hold_until: float | None = None
        """``vrrp_startup_delay``'s end (loop clock): no instance takes over before it (``Start``)."""
        compat = ctx.settings.keepalived_compat
        self.compat = (
            KeepalivedCompat(compat, self.runners, lambda: self.config, self.book) if compat.enabled else None
        )
        """keepalived's pid files and dump signals, for tools written against keepalived (opt-in)."""
        self.resumer = Resumer(ResumeFiles(node_state_dir(ctx.settings) / "vrrp-resume"), self._remove_stale)
        """Hitless restarts: a MASTER restarted within its window resumes (``resumer.py``)."""
        self.exit_code: int | None = None
        """``Exit.RESTART`` after a hitless exit (SIGQUIT), for the runner; None: the ordinary status."""

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Stale VIPs out, static items in, links read, the bus in a side task, then every instance."""
        loop = asyncio.get_running_loop()
        if self.compat is not None:  # first: a live keepalived's pid file stops us before we touch a VIP
            self.compat.start()
        await run_startup_script(self.config.global_defs)  # keepalived: before anything else starts
        self.notify_fallback.start()
        delay = self.config.global_defs.vrrp_startup_delay
        if delay > 0:
            self._hold_until = loop.time() + delay
            log.info("Delaying startup for %g seconds", delay)
        self._ipr = AsyncIPRoute()
        plans = await self._plans(self.config)
        for plan in plans.values():
            in_group = self._group_of(plan.name, plans) is not None
            if not await self.resumer.keeps_vips(plan, in_group, self._vips_present):
                await self._remove_stale(plan)
        self.resumer.files.prune(set(plans))
        await self.firewall.reset()  # a no_accept table left by a killed run
        self.static = StaticConfig.from_config(self.config)
        await self.static.apply(self._ipr, self._netlink_lock)
        self.tracking = RouteTracking(lambda: self.static, self.runners, self._ipr, self._netlink_lock)
        await self._read_links(plans.values())
        self.tracking.start(self._links)
        self._tasks.append(loop.create_task(self._watch_links(), name="vrrp-links"))
        self._tasks.append(loop.create_task(self._watch_addresses(), name="vrrp-addresses"))
        self._tracked = _followed(plans.values())
        self._tasks.append(loop.create_task(self._bus(), name="vrrp-bus"))
        await self._await_tracker_state(plans.values())
        await self._start_instances(list(plans.values()))
        loop.add_signal_handler(HITLESS_SIGNAL, self._hitless_exit)  # once every instance runs
        gc.freeze()  # start-up objects never die: keep them out of every later collection's scan

    async def _await_tracker_state(self, plans: Iterable[InstancePlan]) -> None:
        """Give the bus a moment to say what unweighted trackers last reported.

        An unweighted tracker with no result means FAULT (keepalived's rule for a
        script that has not run yet), but keepalived knows a tracked process at
        once; without this wait every start would pass through a spurious FAULT
        (and mail it) until the KV answer arrives a few ms later.  Bounded, so
        the service still starts when NATS is away.
        """
        if any(s.kind != "interface" and s.weight == 0 for p in plans for s in p.params.trackers):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._trackers_read.wait(), TRACKER_STATE_WAIT)

    async def stop(self) -> None:
        """Every machine stops (priority 0 from masters, VIPs out, STOP events); the bus flushes briefly."""
        if self.compat is not None:
            self.compat.stop()
        self.resumer.cancel()
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_signal_handler(HITLESS_SIGNAL)
        try:
            await (self._leave_as_is() if self.exit_code == Exit.RESTART else self._shutdown())
        finally:
            self.pool.close()
            self._pacer.close()
            for announcer in self._announcers.values():
                announcer.close()
            if self._ipr is not None:
                self._ipr.close()
            if self.exit_code != Exit.RESTART:  # a hitless exit is no shutdown: the node goes on
                await run_shutdown_script(self.config.global_defs)  # keepalived: once everything else stopped

    def _hitless_exit(self) -> None:
        """SIGQUIT: exit to be restarted without hand-over (an upgrade); the supervisor starts the new one."""
        log.info("Signal %d: exiting for a hitless restart (no hand-over; VIPs kept)", HITLESS_SIGNAL)
        self.exit_code = Exit.RESTART
        self.ctx.request_stop()

    async def _leave_as_is(self) -> None:
        """The hitless exit: the bus flushed, then each MASTER's last advert; nothing withdrawn.

        Adverts go on while the bus flushes, and the last one leaves as late as
        possible, so the next process has its whole resume window.  VIPs,
        virtual routes, static items, VMACs and the ``no_accept`` table stay.
        """
        log.info("Exiting without hand-over")
        if self.publisher.ready.is_set():
            await self.publisher.close(flush_timeout=FLUSH_ON_EXIT)
        for task in self._tasks:
            await cancel_quietly(task)
        if self.tracking is not None:
            await self.tracking.close()
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._nc.close(), 0.5)
        for runner in self.runners.values():
            runner.leave_as_is()
        self._vips.close()
        log.info("Exited for a hitless restart")

    async def _vips_present(self, plan: InstancePlan) -> bool:
        """Every VIP and excluded VIP of ``plan`` is on its interface now."""
        for vip in plan.all_vips:
            if not await self._still_there(vip, vip.dev or plan.params.interface):
                return False
        return True

    @property
    def stop_bound(self) -> float:
        """How long ``stop`` may take (the runner's bound): the hand-over, plus ``shutdown_script``'s time."""
        return STOP_BOUND + shutdown_time(self.config.global_defs)

    async def _shutdown(self) -> None:
        log.info("Stopping")
        for runner in self.runners.values():
            runner.stop()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(r.drain() for r in self.runners.values())), 3.0)
        for runner in self.runners.values():
            runner.close()
        await self.firewall.close()
        if self.tracking is not None:
            await self.tracking.close()
        if self.static is not None:
            await self.static.remove(self._ipr, self._netlink_lock)
        await self.vmacs.close(self._ipr, self._netlink_lock)
        self._vips.close()
        if self.publisher.ready.is_set():
            await self.publisher.close(flush_timeout=FLUSH_ON_EXIT)
        await self.notify_fallback.close(self.notify_fallback.bound + FLUSH_ON_EXIT)  # the STOP scripts
        for task in self._tasks:
            await cancel_quietly(task)
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._nc.close(), 0.5)
        log.info("Stopped")

    # ------------------------------------------------------------------ plans and instances

    async def _interface(self, name: str) -> InterfaceInfo | None:
        try:
            async with self._netlink_lock:
                return await interface_info(self._ipr, name)
        except LookupError:
            return None

    async def _plans(self, config: Config) -> dict[str, InstancePlan]:
        """Resolve every instance; one that cannot run here is logged and left out, not fatal."""
        self._group_members = {g.name: list(g.members) for g in config.vrrp.sync_groups.values()}
        plans: dict[str, InstancePlan] = {}
        for inst in config.vrrp.instances.values():
            warn_unprogrammable([*inst.routes, *inst.rules])
            if not inst.interface:
                log.error("(%s) instances without an interface are not supported yet; skipped", inst.name)
                continue
            own = None
            if configured_source(inst) is None:
                info = await self._interface(inst.interface)
                if info is not None:
                    own = info.ipv6_link_local if family_of(inst) == 6 else info.ipv4
            try:
                plans[inst.name] = build_plan(inst, config.global_defs, config.vrrp, own)
                if plans[inst.name].params.unicast_no_peer:
                    log.warning("(%s) unicast_fault_no_peer and no unicast peers: FAULT", inst.name)
            except PlanError as exc:
                log.error("%s; instance skipped", exc)
        return plans

    async def _remove_stale(self, plan: InstancePlan) -> None:
        removed = self._vips.remove(plan.all_vips, default_dev=plan.params.interface)
        if removed:
            log.info("(%s) removed %d stale VIP(s) left by a previous run", plan.name, len(removed))

    async def _announcer(self, dev: str) -> Announcer | None:
        """The GARP/NA sender of ``dev``, opened once (None if the interface is missing)."""
        if dev in self._announcers:
            return self._announcers[dev]
        info = await self._interface(dev)
        if info is None:
            return None
        self._announcers[dev] = Announcer.open(dev, mac=info.mac, ipv6_src=info.ipv6_link_local)
        return self._announcers[dev]

    def _group_of(self, name: str, names: Iterable[str]) -> str | None:
        """The sync group ``name`` runs in, if at least two of its members run (smaller: ignored)."""
        present = set(names)
        for group, members in self._group_members.items():
            if name in members and sum(m in present for m in members) >= 2:
                return group
        return None

    async def _start_instances(
        self, plans: list[InstancePlan], sequences: Mapping[str, AhSequence] | None = None
    ) -> None:
        """Create every runner first, tie sync groups together, then boot them (so ``Start`` is grouped).

        ``sequences``: AH counters handed over from the instances a reload restarted.
        """
        names = [*self.runners, *(p.name for p in plans)]
        kept = sequences or {}
        created = [
            r
            for plan in plans
            if (r := await self._create_runner(plan, self._group_of(plan.name, names), kept.get(plan.name)))
        ]
        self._link_groups()
        for runner in created:
            self._boot(runner)

    def _link_groups(self) -> None:
        """(Re)build every sync group's driver from the runners now running."""
        groups: dict[str, GroupDriver] = {}
        for group, members in self._group_members.items():
            runners = {
                m: self.runners[m]
                for m in members
                if m in self.runners and self.runners[m].group_name == group
            }
            current = self.groups.get(group)
            if current is not None and current.runners == runners:
                groups[group] = current
            elif len(runners) >= 2:
                groups[group] = GroupDriver(group, runners, self.publisher)
        for name, driver in self.groups.items():
            if groups.get(name) is not driver:
                driver.detach()
        self.groups = groups

    async def _create_runner(
        self, plan: InstancePlan, group: str | None, sequence: AhSequence | None = None
    ) -> InstanceRunner | None:
        """Sockets and the runner (its machine gated when in a sync group; its AH counter if handed over)."""
        if not await self.vmacs.ensure(self._ipr, plan.vmac, self._netlink_lock, source=plan.transport.src):
            return None
        for vmac in plan.address_vmacs:  # per-address use_vmac: an IPv6 one gets its base's link-local
            info = await self._interface(vmac.base) if vmac.family == 6 else None
            source = info.ipv6_link_local if info is not None else None
            if not await self.vmacs.ensure(self._ipr, vmac, self._netlink_lock, source=source):
                return None
        for dev in {v.dev or plan.params.interface for v in plan.all_vips}:
            await self._announcer(dev)
        try:
            sock, ifindex = self.pool.sender(plan.transport)
            runner = InstanceRunner(
                plan,
                InstanceIo(
                    sender=AdvertSender(plan, sock, ifindex, sequence),
                    ipr=self._ipr,
                    netlink_lock=self._netlink_lock,
                    vips=self._vips,
                    publisher=self.publisher,
                    announcer_for=self._announcers.get,
                    pacer=self._pacer,
                    notice=self.notice,
                    firewall=self.firewall,
                ),
                self.book,
                group=group,
            )
            self.pool.attach(runner)
        except OSError as exc:
            log.error(
                "(%s) cannot open sockets on %s: %s; instance skipped", plan.name, plan.params.interface, exc
            )
            return None
        self.runners[plan.name] = runner
        runner.resume_slot = self.resumer.open(plan)
        self._notify_settings(runner, self.config)
        return runner

    def _notify_settings(self, runner: InstanceRunner, config: Config) -> None:
        """What the runner publishes beyond transitions (notify keywords are no plan field: no restart)."""
        inst = config.vrrp.instances.get(runner.name)
        runner.notify_priority_changes = inst is not None and notify_priority_changes(
            inst, config.vrrp, config.global_defs
        )

    def _boot(self, runner: InstanceRunner) -> None:
        """Current link and tracker facts, runtime overrides kept across reloads, then ``Start``."""
        plan = runner.plan
        for ifname in sorted(plan.tracked_interfaces):
            runner.feed(LinkChanged(interface=ifname, up=self._links.get(ifname, False)))
        for spec in plan.params.trackers:
            known = self.book.current(spec.name) if spec.kind != "interface" else None
            if known is not None:
                runner.feed(known)
        self.control.restore(runner)
        if self.tracking is not None:
            self.tracking.boot(runner)
        resume = self.resumer.at_boot(plan)
        runner.resumed_after = self.resumer.resumed.get(plan.name) if resume else None
        runner.feed(Start(hold_until=self._hold_until, resume=resume))

    async def _stop_instance(self, name: str, reason: TransitionReason) -> None:
        runner = self.runners.pop(name)
        if reason is TransitionReason.REMOVED:
            inst = self.config.vrrp.instances.get(name)
            deleted = inst is not None and (inst.notify_deleted_set or inst.notify_deleted is not None)
            runner.stop(reason, report_as=removed_report(runner.machine.state, deleted))
        else:
            runner.stop(reason)
        await runner.drain()
        runner.close()
        self.pool.detach(runner)
        if reason is TransitionReason.REMOVED:
            self.resumer.files.forget(name)

    # ------------------------------------------------------------------ links

    async def _read_links(self, plans: Iterable[InstancePlan]) -> None:
        """Carrier of every interface an instance tracks or a static item is on, before instances start."""
        static = self.tracking.interfaces() if self.tracking is not None else frozenset()
        for ifname in {*static, *(i for plan in plans for i in plan.tracked_interfaces)}:
            info = await self._interface(ifname)
            self._links[ifname] = info is not None and info.up

    async def _watch_links(self) -> None:
        """Every link change → ``LinkChanged`` for the instances that track that interface."""
        await follow(link_states(), self._on_link, "link watcher failed; link changes are no longer seen")

    async def _on_link(self, state: LinkState) -> None:
        tracked = any(state.ifname in r.plan.tracked_interfaces for r in self.runners.values())
        static = self.tracking is not None and state.ifname in self.tracking.interfaces()
        if not (tracked or static) or self._links.get(state.ifname) == state.up:
            return
        self._links[state.ifname] = state.up
        log.info("Netlink reports %s %s", state.ifname, "UP" if state.up else "DOWN")
        for runner in list(self.runners.values()):
            if state.ifname in runner.plan.tracked_interfaces:
                runner.feed(LinkChanged(interface=state.ifname, up=state.up))
        if static and self.tracking is not None:
            await self.tracking.link(state.ifname, state.up)

    # ------------------------------------------------------------------ addresses

    async def _watch_addresses(self) -> None:
        """Address events → ``VipRemoved`` (deleted by others) and ``SourceAddress``; the machines decide."""
        lost = "address watcher failed; deleted VIPs and source addresses are no longer seen"
        await follow(address_changes(), self._on_address, lost)

    async def _on_address(self, change: AddressChange) -> None:
        if not change.added:
            await self._vip_deleted(change)
        await self._check_sources(change)

    async def _vip_deleted(self, change: AddressChange) -> None:
        """One of an instance's VIPs went away, and not by our own hand → ``VipRemoved``.

        Our own IPv4 removals carry the VIP socket's port id; IPv6 ones carry
        none, so a VIP a MASTER holds again by the time the event is read (its
        own removal, then a quick retake) is looked up first and left alone.
        """
        if change.sender and change.sender == self._vips.port_id:
            return
        for runner in list(self.runners.values()):
            for vip in runner.plan.all_vips:
                dev = vip.dev or runner.plan.params.interface
                if (vip.ip, vip.address.network.prefixlen) != (change.address, change.prefixlen):
                    continue
                if _ifindex(dev) != change.index or await self._still_there(vip, dev):
                    continue
                log.info("(%s) Netlink reports VIP %s removed from %s", runner.name, vip.address, dev)
                runner.feed(VipRemoved(vip=vip))

    async def _still_there(self, vip: Vip, dev: str) -> bool:
        try:
            async with self._netlink_lock:
                return await has_vip(self._ipr, vip, default_dev=dev)
        except LookupError:
            return False

    async def _check_sources(self, change: AddressChange) -> None:
        """Does the interface still have an address of the family to send adverts from (no source set)?

        Looked at only when it can change: the source address itself deleted
        (keepalived 2.2.7's trigger; another address left keeps it up), or an
        address added while none was there.  Never for the VIP churn of a takeover.
        """
        sources = {_source_key(r.plan): r.plan.params.address for r in self.runners.values()}
        for key, source in sorted((k, a) for k, a in sources.items() if k is not None):
            ifname, family = key
            lost = not change.added and change.address == source
            if not (lost or (change.added and not self._sources.get(key, True))):
                continue
            if _ifindex(ifname) not in (change.index, None):
                continue
            present = await self._has_source(ifname, family)
            if self._sources.get(key, True) == present:
                continue
            self._sources[key] = present
            word = "an" if present else "no"
            log.info("%s has %s IPv%d address to send adverts from", ifname, word, family)
            for runner in list(self.runners.values()):
                if _source_key(runner.plan) == key:
                    runner.feed(SourceAddress(present=present))

    async def _has_source(self, ifname: str, family: int) -> bool:
        """An address of the family on ``ifname`` that is none of the instances' VIPs."""
        vips = {v.ip for r in self.runners.values() for v in r.plan.all_vips}
        try:
            async with self._netlink_lock:
                found = await source_candidates(self._ipr, ifname, family)
        except LookupError:
            return False
        return bool(found - vips)

    # ------------------------------------------------------------------ trackers

    def on_tracker(self, result: TrackerResult, *, initial: bool = False) -> None:
        """A result from the bus (or the KV at start) → the instances tracking that name."""
        if not _kind_fits(result, self._tracked):
            return
        change = self.book.update(result, initial=initial)
        if change is None:
            return
        for runner in list(self.runners.values()):
            if any(t.name == result.tracker and t.kind != "interface" for t in runner.plan.params.trackers):
                runner.feed(change)

    async def _on_tracker_msg(self, msg: Msg) -> None:
        if not live_event(msg.reply, msg.headers):
            self.refused.refuse(
                msg.subject, "not published by a client (JetStream answered a request aimed here)"
            )
            return
        try:
            result = decode(msg.data, TrackerResult)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.warning("ignoring a bad tracker message on %s: %s", msg.subject, exc)
            return
        if result.node != self.node or msg.subject != tracker_subject(self.node, result.tracker, result.kind):
            self.refused.refuse(msg.subject, f"names tracker {result.tracker!r} of node {result.node!r}")
            return
        self.on_tracker(result)

    async def _read_tracker_kv(self, nc: Client) -> None:
        """Initial tracker values from the state bucket (what the checker last said), one direct get."""
        prefix = f"$KV.{STATE_BUCKET}."
        subjects = [
            prefix + kv_key_for_subject(tracker_subject(self.node, *t)) for t in sorted(self._tracked)
        ]
        try:
            await asyncio.wait_for(self.publisher.ready.wait(), 10.0)
            stored = await last_messages(nc, f"KV_{STATE_BUCKET}", subjects) if subjects else {}
        except Exception as exc:  # no bucket or no entries yet: nothing known, which is fine
            log.debug("no tracker state in KV: %s", exc)
            self._trackers_read.set()
            return
        for message in stored.values():
            if message.deleted:
                continue
            with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError):
                self.on_tracker(decode(message.data, TrackerResult), initial=True)
        self._trackers_read.set()

    # ------------------------------------------------------------------ bus

    async def _bus(self) -> None:
        """Connect (forever), start publishing, listen for trackers, serve status/reload."""
        nc = await connect(self.ctx.nats_url, self.ctx.client_name, settings=self.ctx.settings)
        self._nc = nc
        await self.publisher.start(nc)
        track = f"{PREFIX}.{encode_token(self.node)}.track.>"
        await nc.subscribe(track, cb=self._on_tracker_msg)
        svc = await register_service(
            nc,
            node=self.node,
            service="vrrp",
            version=VERSION,
            status=self.status,
            reload=self.ctx.reload_request,
            publisher=self.publisher,
        )
        await self.control.register(svc)
        await self._read_tracker_kv(nc)

    async def status(self) -> dict[str, object]:
        """The ``status`` endpoint's detail: every instance, every receive socket."""
        return {
            "config": self.config_path,
            "instances": {name: r.status() for name, r in self.runners.items()},
            "sync_groups": {name: g.status() for name, g in self.groups.items()},
            "receivers": [r.status() for r in self.pool.receivers.values()],
            "links": dict(self._links),
            "static": self.static.status() if self.static is not None else None,
            "refused_tracker_messages": self.refused.count,
            "notify_fallback": self.notify_fallback.status(),
        }

    def notice(self, event: Notice) -> None:
        """An operator event (control change, split brain): into the event stream like ``InstanceState``.

        Through the publisher's ordered outbox, so it survives a NATS outage
        and keeps its place among the node's events.
        """
        self.publisher.publish(event)

    # ------------------------------------------------------------------ reload

    async def apply(self, config: Config) -> str:
        """A valid new file (the runner refused any with errors): the difference, per ``reload_plan``."""
        async with self._reload_lock:
            detail = await self._apply(config)
            if self.static is not None:
                fresh = StaticConfig.from_config(config)
                self.static = await self.static.replace(fresh, self._ipr, self._netlink_lock)
                if self.tracking is not None:
                    await self._read_links(())
                    await self.tracking.reloaded(self._links)
            self.config = config
        return detail

    async def _apply(self, config: Config) -> str:
        """Stop removed instances, restart those that must, change the rest in place; returns the summary."""
        plans = await self._plans(config)
        self._tracked = _followed(
            plans.values()
        )  # the new file's trackers from now on (a reload may add one)
        diff = plan_reload(
            {n: r.plan for n, r in self.runners.items()},
            plans,
            old_groups={n: r.group_name for n, r in self.runners.items()},
            new_groups={n: self._group_of(n, plans) for n in plans},
        )
        for name, change in diff.changes.items():
            if change.verdict is not Verdict.UNTOUCHED:
                why = f" (restart: {change.why})" if change.why else ""
                log.info("(%s) %s: %s%s", name, change.verdict.value, ", ".join(change.fields), why)
        for name in diff.removed:
            await self._stop_instance(name, TransitionReason.REMOVED)
        sequences = {
            name: self.runners[name].ah_sequence
            for name in diff.restart
            if same_virtual_router(self.runners[name].plan, plans[name])
        }
        for name in diff.restart:
            await self._stop_instance(name, TransitionReason.RELOAD)
        for name in diff.added:
            await self._remove_stale(plans[name])
        fresh = [plans[n] for n in plans if n in diff.restart or n in diff.added]
        await self._read_links(plans[n] for n in [*diff.reconfigure, *(p.name for p in fresh)])
        for name in diff.reconfigure:
            await self._reconfigure(self.runners[name], plans[name])
        await self._start_instances(fresh, sequences)
        for runner in self.runners.values():
            self._notify_settings(runner, config)
        in_use = [v for r in self.runners.values() for v in (r.plan.vmac, *r.plan.address_vmacs)]
        await self.vmacs.prune(self._ipr, in_use, self._netlink_lock)
        return diff.summary()

    async def _reconfigure(self, runner: InstanceRunner, plan: InstancePlan) -> None:
        """In place: the current facts about the new plan's trackers and links go with the new parameters."""
        for dev in {v.dev or plan.params.interface for v in plan.all_vips}:
            await self._announcer(dev)
        trackers = tuple(
            known
            for spec in plan.params.trackers
            if spec.kind != "interface" and (known := self.book.current(spec.name)) is not None
        )
        links = tuple(
            LinkChanged(interface=i, up=self._links.get(i, False)) for i in sorted(plan.tracked_interfaces)
        )
        runner.reconfigure(plan, trackers, links)
        if runner.resume_slot is not None:
            runner.resume_slot.describe(plan)  # a crash after this reload resumes under the new file
        self.pool.refresh(runner)


def _ifindex(ifname: str) -> int | None:
    """The interface's index now (None: it is gone); a syscall, cheap next to a netlink dump."""
    try:
        return socket.if_nametoindex(ifname)
    except OSError:
        return None


def _source_key(plan: InstancePlan) -> tuple[str, int] | None:
    """(interface, family) when the adverts' source is the interface's own address, else None."""
    if not plan.params.source_from_interface:
        return None
    return plan.params.interface, plan.params.address.version


SPEC = ServiceSpec(
    name="vrrp",
    description="lifeline VRRP service: elections, VIPs, GARP/NA (docs/vrrp.md)",
    build=VrrpService,
    loop_factory=precise_loop,
    areas=frozenset({Area.VRRP, Area.NODE}),
)
"""What ``python -m services.vrrp`` runs (``shared.runner``)."""


def _followed(plans: Iterable[InstancePlan]) -> set[tuple[str, str]]:
    """(name, kind) of the trackers these plans follow on the bus (links are the kernel's, not the bus's)."""
    return {(t.name, t.kind) for p in plans for t in p.params.trackers if t.kind != "interface"}


def _kind_fits(result: TrackerResult, tracked: set[tuple[str, str]]) -> bool:
    """A BFD session's state feeds ``track_bfd`` only, and another tracker's never a ``track_bfd``.

    Why: a ``vrrp_script`` and a ``bfd_instance`` are different things even
    with one name; each service may publish its own kind only (the subjects
    say which), and this keeps one from standing in for the other.
    """
    bfd = result.kind == TrackerKind.BFD
    return any(name == result.tracker and (kind == "bfd") == bfd for name, kind in tracked)
