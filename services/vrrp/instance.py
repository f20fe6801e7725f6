"""One VRRP instance's IO shell: the machine, its timer, its adverts, VIPs, GARPs and events.

Why it is thin: every decision is the sans-IO machine's (``machine.py``); this
class only turns inputs into ``machine.handle(now, input)`` calls and performs
the returned actions, in order:

* ``SendAdvert`` is sent **inline**, at once: adverts are the timing-critical
  path and never wait for netlink, GARP pacing or the bus;
* ``AddVips`` / ``RemoveVips`` / ``SendGarp`` / ``StateChanged`` keep the
  machine's order through a per-instance FIFO: a transition's VIP change
  always completes before the next transition's and the state event is
  published after the addresses really moved (keepalived runs its notifies
  last too).  VIPs and the first GARPs are synchronous and run in the same
  tick when nothing is queued before them (the failover's critical path);
  what must wait (routes, nftables) goes to a worker task;
* publishing is ``Publisher.publish``: synchronous and queued, never waiting
  for NATS.

Time is the event loop's monotonic clock (``loop.time()``), which is also
what ``loop.call_at`` schedules on, so the machine's deadlines are used as
they are.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from ipaddress import IPv4Address, IPv6Address
from typing import Protocol

import msgspec

from services.vrrp.core.machine import VrrpMachine
from services.vrrp.core.machine_events import (
    Action,
    AddVips,
    AdvertReceived,
    Input,
    LinkChanged,
    PriorityChanged,
    Reconfigure,
    RemoveVips,
    Resumed,
    SendAdvert,
    SendGarp,
    StateChanged,
    Stop,
    Tick,
    TrackerChanged,
    VirtualRouteLost,
    WantMaster,
)
from services.vrrp.core.machine_types import Reason, State
from services.vrrp.core.params import InstancePlan
from services.vrrp.core.split_brain import SplitBrainDetector
from services.vrrp.core.trackers import TrackerBook
from services.vrrp.garp_pacer import GarpPacer
from services.vrrp.kernel.addresses import Rtnl, Vip
from services.vrrp.kernel.announce import Announcer, Target, start_burst
from services.vrrp.kernel.nft import Firewall
from services.vrrp.kernel.route_watch import Ident, present, tracked_items
from services.vrrp.kernel.routes import RouteChange, RouteSet
from services.vrrp.kernel.sockets import IpIdCounter, send_advert_v4, send_advert_v6
from services.vrrp.kernel.vip_netlink import VipSocket
from services.vrrp.packet import (
    SKIPPABLE,
    Accepted,
    Advert,
    AuthType,
    Drop,
    DropReason,
    RxConfig,
    new_drop_counters,
)
from services.vrrp.packet.ah_sequence import AhSequence
from services.vrrp.resume_file import Slot, now_ns
from shared.bus import Publisher
from shared.events import (
    Family,
    InstanceEvent,
    InstanceEventKind,
    InstanceState,
    Notice,
    SplitBrain,
    TransitionReason,
    VrrpState,
)

log = logging.getLogger("lifeline.vrrp")

REASONS: dict[str, TransitionReason] = {
    Reason.STARTUP: TransitionReason.STARTUP,
    Reason.MASTER_DOWN_TIMER: TransitionReason.MASTER_DOWN_TIMER,
    Reason.HIGHER_PRIORITY_ADVERT: TransitionReason.HIGHER_PRIORITY_SEEN,
    Reason.PRIORITY_ZERO_RECEIVED: TransitionReason.PRIORITY_ZERO_SEEN,
    Reason.PREEMPT: TransitionReason.PREEMPT,
    Reason.TRACKER_FAILED: TransitionReason.TRACKER_FAILED,
    Reason.INTERFACE_DOWN: TransitionReason.INTERFACE_DOWN,
    Reason.INTERFACE_UP: TransitionReason.INTERFACE_UP,
    Reason.TRACKER_RECOVERED: TransitionReason.TRACKER_RECOVERED,
    Reason.SHUTDOWN: TransitionReason.SHUTDOWN,
    Reason.SYNC_GROUP: TransitionReason.SYNC_GROUP,
    Reason.MAINTENANCE: TransitionReason.ADMIN,
    Reason.RELOAD: TransitionReason.RELOAD,
}

STATES: dict[State, VrrpState] = {
    State.INIT: VrrpState.INIT,
    State.BACKUP: VrrpState.BACKUP,
    State.MASTER: VrrpState.MASTER,
    State.FAULT: VrrpState.FAULT,
    State.STOPPED: VrrpState.STOP,
}


def bus_reason(reason: str) -> tuple[TransitionReason, str]:
    """The machine's reason string → the bus enum and a detail (the tracker's name)."""
    base, _, detail = reason.partition(":")
    return REASONS.get(base, TransitionReason.OTHER), detail


class Counters(msgspec.Struct, kw_only=True):
    """Per-instance counters shown by ``status``."""

    adverts_sent: int = 0
    adverts_received: int = 0
    send_errors: int = 0
    transitions: int = 0
    become_master: int = 0
    release_master: int = 0
    pri_zero_received: int = 0
    pri_zero_sent: int = 0
    last_transition: float = 0.0
    """Wall-clock time of the last state change (keepalived's dumps show it)."""
    garps_sent: int = 0
    vip_errors: int = 0
    drops: dict[str, int] = msgspec.field(
        default_factory=lambda: {str(k): v for k, v in new_drop_counters().items()}
    )


class AdvertSender:
    """Builds and sends this instance's adverts on a shared send socket (own IP ID and AH counters).

    ``sequence``: the instance's AH counter, which its receive path moves
    too (keepalived keeps one; ``packet/ah_sequence.py``); a reload that
    restarts the instance hands the old one over.
    """

    def __init__(
        self, plan: InstancePlan, sock: socket.socket, ifindex: int, sequence: AhSequence | None = None
    ) -> None:
        self._sock = sock
        self._ifindex = ifindex
        self._ids = IpIdCounter()
        self.sequence = sequence if sequence is not None else AhSequence()
        self.retarget(plan)

    def retarget(self, plan: InstancePlan) -> None:
        """A reload changed what adverts say or where they go (same socket; IP ID and AH sequence go on)."""
        self._t = plan.transport
        p = plan.params
        self._template = Advert(
            version=p.version,
            vrid=p.vrid,
            priority=p.priority,
            interval_cs=p.advert_int_cs,
            addresses=plan.advert_addresses,
            auth_type=plan.rx.auth_type if plan.rx.auth_type == AuthType.PASS else AuthType.NONE,
            auth_data=plan.rx.auth_data if plan.rx.auth_type == AuthType.PASS else bytes(8),
        )

    def send(self, priority: int) -> int:
        """Send one copy per destination; returns how many left (transient errors count 0)."""
        advert = msgspec.structs.replace(self._template, priority=priority)
        t = self._t
        if isinstance(t.src, IPv6Address):
            dsts6 = [d for d in t.dsts if isinstance(d, IPv6Address)]
            return send_advert_v6(self._sock, advert, src=t.src, dsts=dsts6, ifindex=self._ifindex)
        ah_seq = self.sequence.next() if t.ah_key is not None else 0
        dsts4 = [d for d in t.dsts if isinstance(d, IPv4Address)]
        return send_advert_v4(
            self._sock,
            advert,
            src=t.src,
            dsts=dsts4,
            ids=self._ids,
            ttl=t.ttl,
            checksum_mode=t.checksum_mode,
            ah_key=t.ah_key,
            ah_seq=ah_seq,
        )


class InstanceIo(msgspec.Struct, kw_only=True):
    """What the service lends an instance: shared sockets, netlink, the bus."""

    sender: AdvertSender
    ipr: Rtnl
    netlink_lock: asyncio.Lock
    vips: VipSocket
    """VIPs in one synchronous netlink round trip (the takeover path; see ``vip_netlink``)."""
    """One request at a time on the shared netlink socket (pyroute2 answers EBUSY otherwise)."""
    publisher: Publisher
    announcer_for: Callable[[str], Announcer | None]
    notice: Callable[[Notice], None] = lambda _notice: None
    """Publish an operator notice (core NATS; the service stamps and sends it)."""
    firewall: Firewall | None = None
    """The nftables table for ``no_accept`` (None: no firewall, e.g. in tests)."""
    pacer: GarpPacer = msgspec.field(default_factory=GarpPacer)
    """The service's GARP/NA pacing (``vrrp_garp_interval``, ``garp_group``), shared by its instances."""


Effect = Action | RouteChange | Callable[[], None] | Callable[[], Awaitable[None]]
"""A queued effect: a machine action, or a callback (plain or async) run after what was queued before."""


class Feeder(Protocol):
    """Where a runner's inputs go when it is a sync-group member (``group_runner.GroupDriver``)."""

    def feed(self, member: str, event: Input) -> None: ...


class InstanceRunner:
    """Drives one ``VrrpMachine`` with real time, sockets, netlink and the bus."""

    def __init__(
        self, plan: InstancePlan, io: InstanceIo, book: TrackerBook, *, group: str | None = None
    ) -> None:
        """``group``: the sync group this instance runs in (its machine is then gated)."""
        self.plan = plan
        self.group_name = group
        self.group: Feeder | None = None
        self.machine = VrrpMachine(plan.params, gated=group is not None)
        self.split_brain = SplitBrainDetector(plan.transport.src)
        self.control: dict[str, object] = {}
        """The runtime override in force (who asked, priority, maintenance end), for status."""
        self.counters = Counters()
        self.routes = RouteSet(plan.routes, plan.rules, owner=plan.name)
        self._routes_in: bool | None = None
        """What the last queued ``RouteChange`` said (None: nothing queued yet)."""
        self._tracked_routes = tracked_items(self.routes.routes, self.routes.rules)
        """The virtual routes and rules whose deletion makes a MASTER step down (not ``no_track``)."""
        self._io = io
        self._book = book
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        self._effects: collections.deque[Effect] = collections.deque()
        self._worker: asyncio.Task[None] | None = None
        self._garps: set[asyncio.Task[int]] = set()
        self._stop_reason: tuple[TransitionReason, str] | None = None
        self._report_as: VrrpState | None = VrrpState.STOP
        self._last_accepted: Accepted | None = None
        self.notify_priority_changes = False
        """Publish each effective priority change (``params.notify_priority_changes``; set by the service)."""
        self._last_advert = AdvertReceived(src=plan.transport.src, priority=0)
        """The machine input made of ``_last_accepted`` (``on_advert`` reuses it for repeats)."""
        self.resume_slot: Slot | None = None
        """The resume record, stamped at every advert (``resume_file.py``; None: records unavailable)."""
        self.resumed_after: float | None = None
        """Resumed at start: seconds since the dead process's last advert (None: an ordinary start)."""

    @property
    def name(self) -> str:
        return self.plan.name

    @property
    def rx(self) -> RxConfig:
        """The receive policy the receiver validates our adverts with."""
        return self.plan.rx

    @property
    def ah_sequence(self) -> AhSequence:
        """The AH anti-replay counter, one per instance for receiving and sending (the sender's)."""
        return self._io.sender.sequence

    def now(self) -> float:
        """The clock the machine's deadlines use (the loop's monotonic time)."""
        return self._loop.time()

    # ------------------------------------------------------------------ inputs

    def feed(self, event: Input) -> None:
        """Hand one input to the machine (through its sync group, if any) and perform what it asks."""
        if self.group is not None:
            self.group.feed(self.name, event)
            return
        actions = self.machine.handle(self._loop.time(), event)
        for action in actions:
            self.perform(action)
        self.arm_timer()

    def route_deleted(self, ident: Ident) -> None:
        """Netlink saw a route or rule deleted: one of our tracked virtual ones, while we hold them?

        Checked again after the effects already queued (our own removal and
        re-install on a quick MASTER-BACKUP-MASTER must not count), and
        against the kernel itself, before the machine hears of it.
        """
        item = self._tracked_routes.get(ident)
        if item is not None and self._routes_in is True:
            self._queue(lambda: self._confirm_lost(ident, item))

    async def _confirm_lost(self, ident: Ident, item: str) -> None:
        if self._routes_in is not True or self.machine.state is not State.MASTER:
            return
        async with self._io.netlink_lock:
            if await present(self._io.ipr, ident):
                return
        log.warning("(%s) virtual %s was deleted", self.name, item)
        self.feed(VirtualRouteLost(item=item))

    def after_effects(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once every effect queued so far is done (group events follow member events)."""
        self._queue(callback)

    def on_advert(self, accepted: Accepted) -> None:
        """A validated advert for our VRID (the receiver already chose us).

        The hot path of a backup (thousands of adverts a second at scale):
        the receiver hands us the same ``Accepted`` object for every repeat of
        its master's advert, so we hand the machine the same
        ``AdvertReceived`` object, which its ``advert_again`` shortcut takes
        (no split-brain check needed: that only applies to a MASTER, and the
        shortcut only to a BACKUP).  Never for AH: every AH advert passed
        its own sequence check (the receiver caches none), and one is never
        the repeat of another.
        """
        if accepted.warnings and self._waived(accepted) is not None:
            return
        self.counters.adverts_received += 1
        if accepted.frame.advert.priority == 0:
            self.counters.pri_zero_received += 1
        ah = accepted.frame.ah
        again = accepted is self._last_accepted and self.group is None and ah is None
        if again and self.machine.advert_again(self._loop.time(), self._last_advert):
            self.arm_timer()
            return
        advert = accepted.advert
        m = self.machine
        event = AdvertReceived(
            src=accepted.frame.src, priority=advert.priority, interval_cs=advert.interval_cs
        )
        if m.outranks(event):
            if ah is not None:
                self.ah_sequence.resync(ah.seq)  # keepalived: a master goes on above a lower router's number
            self._instance_event(
                InstanceEventKind.MASTER_RX_LOWER_PRI, peer=str(event.src), peer_priority=event.priority
            )
        occ = self.split_brain.observe(
            self._loop.time(), m.state, accepted.frame.src, advert.priority, m.effective_priority
        )
        if occ is not None:
            log.warning(
                "(%s) split brain: %s also claims MASTER (priority %d, ours %d), seen %d time(s)",
                self.name,
                occ.peer,
                occ.peer_priority,
                occ.own_priority,
                occ.count,
            )
            p = self.plan.params
            self._io.notice(
                SplitBrain(
                    instance=self.name,
                    vrid=p.vrid,
                    interface=p.interface,
                    peer=str(occ.peer),
                    peer_priority=occ.peer_priority,
                    own_priority=occ.own_priority,
                    count=occ.count,
                    suppressed=occ.suppressed,
                )
            )
        self._last_accepted, self._last_advert = accepted, event
        self.feed(event)

    def _waived(self, accepted: Accepted) -> Drop | None:
        """``skip_check_adv_addr``: 2.2.7 waives a check for the master we follow only; others are dropped."""
        waived = accepted.warnings & SKIPPABLE
        if not waived or self.machine.follows(accepted.frame.src):
            return None
        drop = Drop(DropReason(min(waived).value), f"from {accepted.frame.src}, not the master we follow")
        self.on_drop(drop)
        return drop

    def on_drop(self, drop: Drop) -> None:
        """Count a refused advert; the detail is logged at debug level only (peers can flood)."""
        key = str(drop.reason)
        self.counters.drops[key] = self.counters.drops.get(key, 0) + 1
        if drop.reason is not DropReason.UNKNOWN_VRID:
            log.debug("(%s) advert dropped: %s %s", self.name, drop.reason, drop.detail)

    def reconfigure(
        self, plan: InstancePlan, trackers: tuple[TrackerChanged, ...], links: tuple[LinkChanged, ...]
    ) -> None:
        """Reload in place: new plan, same machine state and timers (only the VIP difference moves)."""
        self.plan = plan
        self._io.sender.retarget(plan)
        self.feed(Reconfigure(params=plan.params, trackers=trackers, links=links))
        if self.machine.state is State.MASTER:
            self._queue(self._refirewall)  # VIPs or accept mode may have changed under a MASTER

    async def _refirewall(self) -> None:
        """no_accept after an in-place reload of a MASTER: the drop set follows its VIPs and mode."""
        fw, p = self._io.firewall, self.plan.params
        if fw is None:
            return
        if p.effective_accept:
            await fw.allow(self.name)
        else:
            await fw.drop(self.name, self.plan.all_vips, p.interface)

    def stop(
        self,
        reason: TransitionReason = TransitionReason.SHUTDOWN,
        detail: str = "",
        *,
        report_as: VrrpState | None = VrrpState.STOP,
    ) -> None:
        """Stop the machine (priority 0 from a master, VIPs removed); ``drain`` waits for it.

        ``report_as``: the state the last event says (a reload removing the
        instance says what keepalived notifies then, ``reload_plan.removed_report``;
        None publishes nothing).
        """
        self._stop_reason = (reason, detail)
        self._report_as = report_as
        self.feed(Stop())
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def drain(self) -> None:
        """Wait until every queued VIP change and event of this instance is done."""
        while self._worker is not None and not self._worker.done():
            await asyncio.shield(self._worker)

    def close(self) -> None:
        """Cancel timers and GARP bursts still pacing (used after drain on shutdown)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in self._garps:
            task.cancel()
        if self.resume_slot is not None:
            self.resume_slot.close()
            self.resume_slot = None

    # ------------------------------------------------------------------ timer

    def arm_timer(self) -> None:
        """Sleep until the machine's next deadline (called after every input).

        A backup moves its down timer on every advert, and replacing the
        asyncio timer each time cost more than the advert itself, while letting
        it fire early costs a wake-up.  So a timer due no later than the
        deadline, but not within the first third of the wait, is kept: it is
        replaced about every third advert and, in steady state, never fires
        (``_tick`` re-arms if it does wake early).
        """
        deadline = self.machine.next_deadline()
        timer = self._timer
        if timer is not None:
            if deadline is not None:
                now = self._loop.time()
                if now + (deadline - now) / 3 <= timer.when() <= deadline:
                    return
            timer.cancel()
            self._timer = None
        if deadline is not None:
            self._timer = self._loop.call_at(deadline, self._tick)

    def _tick(self) -> None:
        timer, self._timer = self._timer, None
        deadline = self.machine.next_deadline()
        if timer is not None and deadline is not None and deadline > timer.when():
            self._timer = self._loop.call_at(deadline, self._tick)  # the deadline moved on meanwhile
            return
        self.feed(Tick())

    def _queue(self, effect: Effect) -> None:
        """In order after what is queued; at once when nothing is and the effect needs no waiting."""
        idle = not self._effects and (self._worker is None or self._worker.done())
        if idle and self._perform_inline(effect):
            return
        self._effects.append(effect)
        if self._worker is None or self._worker.done():
            self._worker = self._loop.create_task(self._run_effects(), name=f"vrrp-{self.name}-effects")

    # ------------------------------------------------------------------ actions

    def perform(self, action: Action) -> None:
        """Adverts inline, logs at once, everything else through the ordered effects queue."""
        if isinstance(action, SendAdvert):
            self._send_advert(action.priority)
        elif isinstance(action, Resumed):
            self._resumed()
        elif isinstance(action, PriorityChanged):
            log.info("(%s) Changing effective priority from %d to %d", self.name, action.old, action.new)
            if self.notify_priority_changes:
                kind = InstanceEventKind.PRIORITY_CHANGED
                self._instance_event(kind, previous=action.old, priority=action.new)
        elif isinstance(action, WantMaster):
            log.info(
                "(%s) wants MASTER (%s); waiting for sync group %s", self.name, action.reason, self.group_name
            )
        else:
            slot = self.resume_slot
            if slot is not None and isinstance(action, StateChanged) and action.new is not State.MASTER:
                slot.clear()  # at once, not queued: a restart from now on must not resume
            change = self._route_change(action)
            if change is not None:
                self._queue(change)
            self._queue(action)

    def _resumed(self) -> None:
        """A resumed MASTER (no transition): what a MASTER holds besides its VIPs, and the fact reported.

        Virtual routes and rules may have survived the dead process (adding
        them again is harmless); the ``no_accept`` table did not (the new
        process reset it).  The bus hears an ``InstanceEvent`` ``resumed``,
        not a state: nothing changed for the notifier's scripts.
        """
        as_master = StateChanged(old=State.INIT, new=State.MASTER, reason="", effective_priority=0)
        change = self._route_change(as_master)
        if change is not None:
            self._queue(change)
        fw, p = self._io.firewall, self.plan.params
        if fw is not None and not p.effective_accept:
            self._queue(lambda: self._firewall(as_master))
        self._instance_event(InstanceEventKind.RESUMED)

    def leave_as_is(self) -> None:
        """A hitless exit: a MASTER sends one last advert (stamped), nothing is withdrawn, timers stop.

        The advert restarts the backups' down timers, so the next process has
        the whole resume window (``core/resume.py``) from this instant.
        """
        if self.machine.state is State.MASTER:
            self._send_advert(self.machine.effective_priority)
        self.close()

    def _instance_event(
        self,
        kind: InstanceEventKind,
        *,
        previous: int | None = None,
        priority: int | None = None,
        peer: str | None = None,
        peer_priority: int | None = None,
    ) -> None:
        """keepalived's event notifies (``InstanceEvent``), queued to keep their place among transitions."""
        p = self.plan.params
        event = InstanceEvent(
            instance=self.name,
            vrid=p.vrid,
            interface=p.interface,
            kind=kind,
            state=STATES[self.machine.state],
            effective_priority=self.machine.effective_priority if priority is None else priority,
            previous_priority=previous,
            peer=peer,
            peer_priority=peer_priority,
            group=self.group_name,
        )
        self._queue(lambda: self._io.notice(event))

    def _route_change(self, action: Action) -> RouteChange | None:
        """Virtual routes and rules follow MASTER, queued just before ``action``.

        In before the MASTER event (so after the VIPs and the first GARPs: the
        VIP path is not slowed); out before the VIPs go (keepalived's order).
        A RemoveVips while still MASTER is a reload moving some VIPs: routes stay.
        """
        if not self.routes:
            return None
        install = isinstance(action, StateChanged) and action.new is State.MASTER
        remove = isinstance(action, RemoveVips) and self.machine.state is not State.MASTER
        if not (install or remove) or self._routes_in is install:
            return None
        self._routes_in = install
        return RouteChange(install=install)

    def _send_advert(self, priority: int) -> None:
        slot = self.resume_slot
        at = now_ns() if slot is not None else 0  # before the send: the record is never later than the wire
        try:
            sent = self._io.sender.send(priority)
        except OSError as exc:
            self.counters.send_errors += 1
            log.warning("(%s) cannot send advert: %s", self.name, exc)
            return
        if slot is not None and sent:
            slot.stamp(at, priority > 0 and self.machine.state is State.MASTER)
        self.counters.adverts_sent += sent
        if priority == 0 and sent:
            self.counters.pri_zero_sent += 1
        self.counters.send_errors += len(self.plan.transport.dsts) - sent

    async def _run_effects(self) -> None:
        """Perform queued non-advert actions one by one, in the machine's order."""
        while self._effects:
            action = self._effects.popleft()
            try:
                await self._effect(action)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # netlink refused something: count, log, go on
                self.counters.vip_errors += 1
                log.error("(%s) %s failed: %s: %s", self.name, type(action).__name__, type(exc).__name__, exc)

    def _perform_inline(self, effect: Effect) -> bool:
        """Perform a synchronous effect here, in the caller's tick; False if it must go to the worker.

        VIPs and the first GARPs are synchronous (one netlink round trip, raw
        frames), so a new master's takeover completes in the tick its timer
        fired in, as keepalived's does; the rest waits for the worker.
        """
        try:
            return self._sync_effect(effect)
        except Exception as exc:  # netlink refused something: count, log, go on
            self.counters.vip_errors += 1
            log.error("(%s) %s failed: %s: %s", self.name, type(effect).__name__, type(exc).__name__, exc)
            return True

    def _sync_effect(self, action: Effect) -> bool:
        """Perform ``action`` if it needs no waiting; False (nothing done) otherwise."""
        dev = self.plan.params.interface
        if isinstance(action, AddVips):
            self._io.vips.add(self._vips(action.vips), default_dev=dev)
        elif isinstance(action, RemoveVips):
            self._io.pacer.forget(self.name, {v.ip for v in self._vips(action.vips)})
            self._io.vips.remove(self._vips(action.vips), default_dev=dev)
        elif isinstance(action, SendGarp):
            self._start_garps(action.count, action.vips)
        else:
            return False
        return True

    async def _effect(self, action: Effect) -> None:
        if self._sync_effect(action):
            return
        if callable(action):
            result = action()
            if inspect.isawaitable(result):
                await result
        elif isinstance(action, RouteChange):
            io = self._io
            await (self.routes.install if action.install else self.routes.remove)(io.ipr, io.netlink_lock)
        elif isinstance(action, StateChanged):
            await self._firewall(action)
            self._state_changed(action)

    @staticmethod
    def _vips(vips: tuple[object, ...]) -> list[Vip]:
        return [v for v in vips if isinstance(v, Vip)]

    async def _firewall(self, change: StateChanged) -> None:
        """no_accept: drop VIP traffic while MASTER (queued after the VIPs and GARPs: adverts never wait)."""
        fw, p = self._io.firewall, self.plan.params
        if fw is None or p.effective_accept:
            return
        if change.new is State.MASTER:
            await fw.drop(self.name, self.plan.all_vips, p.interface)
        elif change.old is State.MASTER:
            await fw.allow(self.name)

    def _start_garps(self, count: int, only: tuple[object, ...] | None = None) -> None:
        """``count`` rounds of one GARP/NA per VIP (``only``: just these; None: every VIP).

        Unpaced interfaces get the burst as a task of its own (the first
        round leaves at once: pacing never delays adverts or events); paced
        ones go through the service's pacer, which keeps keepalived's pauses
        per interface or ``garp_group`` and lets a VIP wait only once.
        """
        unpaced: list[Target] = []
        vips = self.plan.all_vips if only is None else self._vips(only)
        for order, vip in enumerate(vips):
            dev = vip.dev or self.plan.params.interface
            announcer = self._io.announcer_for(dev)
            if announcer is None:
                continue
            pacing, line = self.plan.pacing_of(dev)
            interval = pacing.garp if vip.ip.version == 4 else pacing.gna
            if interval <= 0:
                unpaced.append((announcer, vip.ip))
                continue
            for _ in range(count):
                self._io.pacer.announce(
                    (line, vip.ip.version),
                    interval,
                    owner=self.name,
                    dev=dev,
                    announcer=announcer,
                    ip=vip.ip,
                    order=order,
                    on_sent=self._garps_sent,
                )
        sent, rest = start_burst(unpaced, count, 0.0)
        self.counters.garps_sent += sent
        if rest is not None:
            task = self._loop.create_task(rest)
            self._garps.add(task)
            task.add_done_callback(self._garp_done)

    def _garps_sent(self, frames: int) -> None:
        self.counters.garps_sent += frames

    def _garp_done(self, task: asyncio.Task[int]) -> None:
        self._garps.discard(task)
        if not task.cancelled() and task.exception() is None:
            self.counters.garps_sent += task.result()

    def _state_changed(self, change: StateChanged) -> None:
        """keepalived's log line, then the InstanceState event (queued; never waits for NATS)."""
        c = self.counters
        c.transitions += 1
        c.become_master += int(change.new is State.MASTER)
        c.release_master += int(change.old is State.MASTER and change.new is not State.MASTER)
        c.last_transition = time.time()
        reason, detail = bus_reason(change.reason)
        state, why = STATES[change.new], change.reason
        if change.new is State.STOPPED and self._stop_reason is not None:
            reason, detail = self._stop_reason
            if self._report_as is None:
                log.info("(%s) removed by reload (no notification: it was in FAULT)", self.name)
                return
            state, why = self._report_as, reason.value
        log.info("(%s) Entering %s STATE (%s)", self.name, state.value, why)
        p = self.plan.params
        event = InstanceState(
            instance=self.name,
            vrid=p.vrid,
            interface=p.interface,
            family=Family.INET6 if self.plan.transport.family == 6 else Family.INET,
            version=p.version,
            state=state,
            previous=STATES[change.old],
            base_priority=self.machine.base_priority,
            effective_priority=change.effective_priority,
            reason=reason,
            detail=detail,
            master_address=str(change.master_address) if change.master_address is not None else None,
            vips=tuple(str(v.address) for v in self.plan.all_vips),
            group=self.group_name,
        )
        self._io.publisher.publish(event)

    # ------------------------------------------------------------------ status

    @property
    def master_priority(self) -> int:
        """The priority in the last advert of the master this BACKUP follows (0: none known)."""
        m, last = self.machine, self._last_advert
        following = m.state is State.BACKUP and m.master_address is not None and last.src == m.master_address
        return last.priority if following else 0

    def status(self) -> dict[str, object]:
        """This instance for the ``status`` endpoint (JSON-ready values only)."""
        m, p = self.machine, self.plan.params
        trackers = [
            msgspec.to_builtins(self._book.view(t.name, t.kind, self.plan.stale_after.get(t.name)))
            for t in p.trackers
            if t.kind != "interface"
        ]
        return {
            "state": STATES[m.state].value,
            "vrid": p.vrid,
            "interface": p.interface,
            "version": p.version,
            "base_priority": m.base_priority,
            "configured_priority": p.priority,
            "effective_priority": m.effective_priority,
            "sync_group": self.group_name,
            "resumed_after": self.resumed_after,
            "control": dict(self.control),
            "split_brain": {
                "count": self.split_brain.count,
                "last_peer": str(self.split_brain.last_peer) if self.split_brain.last_peer else None,
                "seconds_ago": (
                    round(self._loop.time() - self.split_brain.last_at, 3)
                    if self.split_brain.last_at is not None
                    else None
                ),
            },
            "master_address": str(m.master_address) if m.master_address is not None else None,
            "advert_int": p.advert_int_cs / 100,
            "garp_delay": p.garp.master_delay,
            "master_adver_int": m.master_adver_int_cs / 100,
            "source": str(self.plan.transport.src),
            "destinations": [str(d) for d in self.plan.transport.dsts],
            "vips": [str(v.address) for v in self.plan.vips],
            "excluded_vips": [str(v.address) for v in self.plan.excluded_vips],
            "routes": self.routes.status(),
            "trackers": trackers,
            "tracked_interfaces": [t.name for t in p.trackers if t.kind == "interface"],
            "counters": msgspec.to_builtins(self.counters),
        }


async def cancel_quietly(task: asyncio.Task[object] | None) -> None:
    """Cancel a helper task and wait for it, swallowing its cancellation."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
