"""The sans-IO VRRP state machine (RFC 9568 as keepalived 2.2.7 behaves).

h11-style: the machine owns no socket and no clock.  The shell calls
``handle(now, input)`` with its monotonic time and performs the returned
actions in order, then sleeps until ``next_deadline()`` and calls
``handle(now, Tick())``.  Every ``handle`` first fires the deadlines already
due, so a late shell still sees timers in time order.

The behaviour rules (and where keepalived differs from the RFC) are in
docs/vrrp-machine.md and in docs/keepalived.md (#timers, #state-machine,
#tracking-and-priority).
"""

from __future__ import annotations

from services.vrrp.core.machine_events import (
    Action,
    AddVips,
    AdvertReceived,
    GroupBackup,
    GroupFault,
    GroupGo,
    Input,
    LinkChanged,
    Maintenance,
    PriorityChanged,
    Reconfigure,
    RemoveVips,
    Resumed,
    SendAdvert,
    SendGarp,
    SetPriority,
    SourceAddress,
    Start,
    StateChanged,
    StaticLost,
    Stop,
    Tick,
    TrackerChanged,
    VipRemoved,
    VirtualRouteLost,
    WantMaster,
)
from services.vrrp.core.machine_types import (
    OWNER_PRIORITY,
    GarpBurst,
    InstanceParams,
    Reason,
    State,
)
from services.vrrp.core.priority import Tracking, effective_priority
from services.vrrp.core.timers import (
    CS,
    Deadlines,
    TimerKind,
    extra_if_due,
    master_down_interval,
    skew_priority,
    skew_time,
)
from shared.addresses import IPAddress

TRANSITIONS: frozenset[tuple[State, State]] = frozenset(
    {
        (State.INIT, State.BACKUP),
        (State.INIT, State.MASTER),
        (State.INIT, State.FAULT),
        (State.BACKUP, State.MASTER),
        (State.BACKUP, State.FAULT),
        (State.MASTER, State.BACKUP),
        (State.MASTER, State.FAULT),
        (State.FAULT, State.BACKUP),
        (State.FAULT, State.MASTER),
        (State.BACKUP, State.STOPPED),
        (State.MASTER, State.STOPPED),
        (State.FAULT, State.STOPPED),
    }
)
"""The explicit transition table (h11-style): anything else is a bug in this module."""

_GARP_TIMERS = (TimerKind.GARP_MASTER_DELAYED, TimerKind.GARP_REFRESH, TimerKind.GARP_LOWER_PRIO)


def _address_key(address: IPAddress) -> tuple[int, int]:
    """Order addresses numerically (and never compare IPv4 with IPv6 directly)."""
    return (address.version, int(address))


class VrrpMachine:
    """One VRRP instance: feed it inputs, perform its actions."""

    def __init__(self, params: InstanceParams, *, gated: bool = False) -> None:
        """``gated``: a sync-group member, whose down timer asks (``WantMaster``) instead of taking over."""
        self._p = params
        self._gated = gated
        self._base = params.priority
        self._override: int | None = None
        self._wants_master = False
        self._want_reason = Reason.MASTER_DOWN_TIMER
        self._group_fault: str | None = None
        self._maintenance_until: float | None = None
        self._state = State.INIT
        self._tracking = Tracking(params.trackers)
        self._link_up = True
        self._static_lost: str | None = None
        """A lost static item of the instance's track_group (``StaticLost``): FAULT while set."""
        self._source_present = True
        self._prio = self._computed_priority()
        self._timers = Deadlines()
        self._master_adver_int_cs = params.advert_int_cs
        self._master_address: IPAddress | None = None
        self._preempt_until: float | None = None
        self._down_reason = Reason.MASTER_DOWN_TIMER
        self._hold_until: float | None = None
        """``vrrp_startup_delay``: no down timer may run out before this (``Start``)."""
        self._extra_if_at: float | None = None
        """``garp_extra_if``: the first advert at or after this also announces the extra interfaces."""
        self._repeatable: tuple[AdvertReceived, float] | None = None
        """The advert ``advert_again`` may take, and the down interval it re-arms (see there)."""

    # ------------------------------------------------------------------ public API

    @property
    def params(self) -> InstanceParams:
        """The parameters this machine was built with."""
        return self._p

    @property
    def state(self) -> State:
        """The current state."""
        return self._state

    @property
    def effective_priority(self) -> int:
        """Base priority adjusted by the trackers, clamped to [1, 254] (255 stays 255)."""
        return self._prio

    @property
    def base_priority(self) -> int:
        """The configured priority, or the runtime override (``SetPriority``)."""
        return self._base

    @property
    def wants_master(self) -> bool:
        """A gated member whose down timer fired and which waits for its group."""
        return self._wants_master

    @property
    def maintenance_until(self) -> float | None:
        """When maintenance ends (machine clock), or None when not in maintenance."""
        return self._maintenance_until

    @property
    def group_fault(self) -> str | None:
        """The group member whose FAULT holds this one in FAULT, if any."""
        return self._group_fault

    def own_fault_cause(self) -> str | None:
        """Why this instance itself must be in FAULT (its config, link or trackers), ignoring its group."""
        if self._p.unicast_no_peer:
            return Reason.NO_UNICAST_PEER
        if not self._link_up:
            return Reason.INTERFACE_DOWN
        if self._static_lost is not None:
            return f"{Reason.STATIC_LOST}:{self._static_lost}"
        if self._p.source_from_interface and not self._source_present:
            return Reason.NO_SOURCE_ADDRESS
        name = self._tracking.fault()
        return None if name is None else Reason.tracker_failed(name)

    @property
    def master_address(self) -> IPAddress | None:
        """Who we believe is master: ourselves in MASTER, the last accepted sender in BACKUP."""
        return self._master_address

    @property
    def master_adver_int_cs(self) -> int:
        """Master_Adver_Interval: ours, or the v3 master's while we are BACKUP."""
        return self._master_adver_int_cs

    def next_deadline(self) -> float | None:
        """When the shell must call ``handle(now, Tick())`` next; None when idle."""
        return self._timers.earliest()

    def advert_again(self, now: float, event: AdvertReceived) -> bool:
        """The steady-state shortcut for ``handle(now, event)``; False (nothing done) when it does not apply.

        Why: a backup hears the same advert from its master every interval
        (thousands a second at scale), and all ``handle`` then does is move
        the down timer.  It applies only to the very ``event`` object the
        last ``handle`` call took and accepted in BACKUP (no input of any kind
        since, which could have changed state, priority, parameters or
        timers) and only when no deadline is due, so ``handle`` would fire
        nothing and do exactly this: same acceptance, same master and
        interval, the down timer re-armed a full interval from ``now``.
        tests/unit/vrrp/test_machine_fast_path.py checks the equivalence.
        """
        repeatable = self._repeatable
        if repeatable is None or repeatable[0] is not event:
            return False
        earliest = self._timers.earliest()
        if earliest is None or earliest <= now:
            return False
        self._timers.arm(TimerKind.MASTER_DOWN, now + repeatable[1])
        return True

    def follows(self, src: IPAddress) -> bool:
        """BACKUP, and ``src`` is the master whose adverts it last accepted.

        keepalived 2.2.7's ``skip_check_adv_addr`` waives the VIP-list (and
        unicast TTL range) check for exactly these adverts; a MASTER, and a
        BACKUP hearing anyone else, still checks.
        """
        return self._state is State.BACKUP and self._master_address == src

    def outranks(self, advert: AdvertReceived) -> bool:
        """As MASTER, is this advert from a router below us (lower priority, or same and lower address)?

        Such an advert is answered by asserting mastership; with AH the shell
        also resyncs its sequence counter from it, as keepalived does.  A
        priority-0 goodbye ranks nowhere.
        """
        if self._state is not State.MASTER or advert.priority == 0 or self._ignores_adverts():
            return False
        return self._rank(advert) < self._own_rank()

    def handle(self, now: float, event: Input) -> list[Action]:
        """Process due timers, then ``event``; return the actions to perform, in order."""
        out: list[Action] = []
        self._repeatable = None
        if self._state is State.STOPPED:
            return out
        self._fire_due(now, out)
        if isinstance(event, Start):
            self._on_start(now, event, out)
        elif isinstance(event, Stop):
            self._on_stop(out)
        elif isinstance(event, AdvertReceived):
            self._on_advert(now, event, out)
        elif isinstance(event, TrackerChanged):
            if self._tracking.report(event.name, event.ok, event.value):
                self._reevaluate(now, out, Reason.TRACKER_RECOVERED)
        elif isinstance(event, LinkChanged):
            self._on_link(now, event, out)
        elif isinstance(event, StaticLost | VirtualRouteLost):
            self._on_lost(now, event, out)
        elif isinstance(event, SourceAddress):
            self._on_source(now, event.present, out)
        elif isinstance(event, VipRemoved):
            self._on_vip_removed(now, event.vip, out)
        elif isinstance(event, GroupGo | GroupBackup | GroupFault):
            self._on_group(now, event, out)
        elif isinstance(event, SetPriority):
            self._override = event.priority
            self._base = self._p.priority if event.priority is None else event.priority
            self._reevaluate(now, out, Reason.TRACKER_RECOVERED)
        elif isinstance(event, Reconfigure):
            self._on_reconfigure(now, event, out)
        elif isinstance(event, Maintenance):
            self._on_maintenance(now, event.until, out)
        else:
            assert isinstance(event, Tick)
        return out

    # ------------------------------------------------------------------ derived values

    def _computed_priority(self) -> int:
        return effective_priority(self._base, self._tracking.adjustment())

    def _fault_cause(self) -> str | None:
        """Why the instance must be in FAULT now (its own cause first, then its group's)."""
        own = self.own_fault_cause()
        if own is not None or self._group_fault is None:
            return own
        return Reason.sync_group(self._group_fault)

    def _down_interval(self) -> float:
        p = skew_priority(self._p.priority, self._prio)
        return master_down_interval(self._p.version, p, self._master_adver_int_cs, self._p.down_timer_adverts)

    def _skew(self) -> float:
        p = skew_priority(self._p.priority, self._prio)
        return skew_time(self._p.version, p, self._master_adver_int_cs)

    def _own_interval(self) -> float:
        return self._p.advert_int_cs / CS

    # ------------------------------------------------------------------ transitions

    def _set_state(self, new: State, reason: str, out: list[Action]) -> None:
        """Record the transition (checked against the table) and tell the shell, last."""
        old = self._state
        if (old, new) not in TRANSITIONS:
            raise RuntimeError(f"illegal VRRP transition {old.value} -> {new.value}")
        self._state = new
        master = self._master_address if new in (State.BACKUP, State.MASTER) else None
        prio = self._prio
        out.append(
            StateChanged(old=old, new=new, reason=reason, effective_priority=prio, master_address=master)
        )

    def _arm_down_timer(self, now: float, reason: str, at: float | None = None) -> None:
        """Arm the down timer (default: a full interval); in maintenance it stays off.

        While the start-up delay holds, the wait counts from its end instead of from now.
        """
        self._down_reason = reason
        if self._maintenance_until is not None:
            self._timers.cancel(TimerKind.MASTER_DOWN)
            return
        deadline = now + self._down_interval() if at is None else at
        if self._holding(now):
            assert self._hold_until is not None
            deadline += self._hold_until - now
        self._timers.arm(TimerKind.MASTER_DOWN, deadline)

    def _holding(self, now: float) -> bool:
        """Is ``vrrp_startup_delay`` still running (then forgotten once it is over)?"""
        if self._hold_until is not None and now >= self._hold_until:
            self._hold_until = None
        return self._hold_until is not None

    def _enter_backup(self, now: float, reason: str, out: list[Action]) -> None:
        """BACKUP with a full Master_Down_Interval from now."""
        self._preempt_until = None
        self._arm_down_timer(now, Reason.MASTER_DOWN_TIMER)
        self._set_state(State.BACKUP, reason, out)

    def _become_master(self, now: float, reason: str, out: list[Action]) -> None:
        """keepalived's order: advert first, VIPs, GARP burst, later bursts armed, notify."""
        garp = self._p.garp
        self._timers.cancel(TimerKind.MASTER_DOWN)
        self._wants_master = False
        self._master_adver_int_cs = self._p.advert_int_cs
        self._master_address = self._p.address
        self._preempt_until = None
        self._send_advert(now, self._prio, out)
        out.append(AddVips(self._p.vips))
        if garp.master_repeat > 0:
            out.append(SendGarp(garp.master_repeat, GarpBurst.MASTER))
            if garp.master_delay > 0:
                self._timers.arm(TimerKind.GARP_MASTER_DELAYED, now + garp.master_delay)
        if garp.master_refresh > 0:
            self._timers.arm(TimerKind.GARP_REFRESH, now + garp.master_refresh)
        self._extra_if_at = extra_if_due(now, garp.extra_if, self._p.extra_if_vips)
        self._set_state(State.MASTER, reason, out)

    def _leave_master(self, out: list[Action]) -> None:
        """Stop advertising and announcing, drop the VIPs."""
        self._timers.cancel(TimerKind.ADVERT, *_GARP_TIMERS)
        self._extra_if_at = None
        out.append(RemoveVips(self._p.vips))

    def _enter_fault(self, reason: str, out: list[Action]) -> None:
        """A master says goodbye with priority 0; every timer stops."""
        if self._state is State.MASTER:
            out.append(SendAdvert(0))
            self._leave_master(out)
        self._timers.clear()
        if self._maintenance_until is not None:
            self._timers.arm(TimerKind.MAINTENANCE_END, self._maintenance_until)
        self._wants_master = False
        self._master_adver_int_cs = self._p.advert_int_cs
        self._master_address = None
        self._preempt_until = None
        self._set_state(State.FAULT, reason, out)

    def _leave_fault(self, now: float, reason: str, out: list[Action]) -> None:
        """Back to BACKUP with a full down timer; an owner goes straight to MASTER."""
        if self._p.is_owner and self._maintenance_until is None and not self._gated:
            self._become_master(now, reason, out)
        else:
            self._enter_backup(now, reason, out)

    def _send_advert(self, now: float, priority: int, out: list[Action]) -> None:
        """Send now and restart the Adver_Timer (RFC 9568: reset after every send)."""
        out.append(SendAdvert(priority))
        self._timers.arm(TimerKind.ADVERT, now + self._own_interval())

    # ------------------------------------------------------------------ inputs

    def _on_start(self, now: float, start: Start, out: list[Action]) -> None:
        """Clean leftover VIPs, then BACKUP, FAULT, or MASTER at once for an owner (unless start-up delay).

        A resumed start (``Start.resume``) keeps the VIPs and stays MASTER when
        nothing holds the instance in FAULT and it is not a sync-group member.
        """
        if self._state is not State.INIT:
            return
        self._hold_until = start.hold_until
        self._prio = self._computed_priority()
        if start.resume and not self._gated and self._fault_cause() is None:
            self._resume_master(now, out)
            return
        out.append(RemoveVips(self._p.vips))
        if self._fault_cause() is not None:
            self._enter_fault(Reason.STARTUP, out)
        elif self._p.is_owner and not self._gated and self._holding(now):
            self._arm_down_timer(now, Reason.STARTUP, at=now)  # keepalived: BACKUP, down timer of 1 µs
            self._set_state(State.BACKUP, Reason.STARTUP, out)
        elif self._p.is_owner and not self._gated:
            self._become_master(now, Reason.STARTUP, out)
        else:
            self._enter_backup(now, Reason.STARTUP, out)

    def _resume_master(self, now: float, out: list[Action]) -> None:
        """MASTER without a transition: an advert at once (the backups' down timers restart).

        No VIP change and no GARP burst: the addresses never left and the
        neighbours' caches still point here.  From now on the ordinary rules
        apply (a better master heard makes it yield).
        """
        garp = self._p.garp
        self._state = State.MASTER  # INIT -> MASTER is in the table; no StateChanged on purpose
        self._master_adver_int_cs = self._p.advert_int_cs
        self._master_address = self._p.address
        self._send_advert(now, self._prio, out)
        if garp.master_refresh > 0:
            self._timers.arm(TimerKind.GARP_REFRESH, now + garp.master_refresh)
        self._extra_if_at = extra_if_due(now, garp.extra_if, self._p.extra_if_vips)
        out.append(Resumed(effective_priority=self._prio))

    def _on_stop(self, out: list[Action]) -> None:
        """Shutdown: priority 0 and VIPs removed from a master, then STOPPED."""
        if self._state is State.INIT:
            self._state = State.STOPPED
            return
        if self._state is State.MASTER:
            out.append(SendAdvert(0))
            self._leave_master(out)
        self._timers.clear()
        self._master_address = None
        self._set_state(State.STOPPED, Reason.SHUTDOWN, out)

    def _on_link(self, now: float, event: LinkChanged, out: list[Action]) -> None:
        """The instance interface (unless dont_track_primary) and tracked interfaces."""
        changed = self._tracking.link(event.interface, event.up)
        if event.interface == self._p.interface and not self._p.dont_track_primary:
            changed = changed or self._link_up != event.up
            self._link_up = event.up
        if changed:
            self._reevaluate(now, out, Reason.INTERFACE_UP)

    def _on_lost(self, now: float, event: StaticLost | VirtualRouteLost, out: list[Action]) -> None:
        """A static item of the track group lost or back (FAULT in or out), or a virtual route deleted."""
        if isinstance(event, VirtualRouteLost):
            if self._state is State.MASTER:
                self._step_down(now, f"{Reason.VIRTUAL_ROUTE_DELETED}:{event.item}", out)
        elif event.item != self._static_lost:
            self._static_lost = event.item
            self._reevaluate(now, out, Reason.TRACKER_RECOVERED)

    def _on_source(self, now: float, present: bool, out: list[Action]) -> None:
        """The interface lost (or regained) its last address of the family: FAULT in or out.

        Only an instance sending from the interface's own address cares; a
        configured source deleted at run time changes nothing in keepalived
        2.2.7, with or without ``track_src_ip`` (docs/keepalived.md#addresses-deleted-by-hand).
        """
        changed = present != self._source_present
        self._source_present = present
        if changed and self._p.source_from_interface:
            self._reevaluate(now, out, Reason.SOURCE_ADDRESS_BACK)

    def _on_vip_removed(self, now: float, vip: object, out: list[Action]) -> None:
        """A tracked VIP deleted by hand: a MASTER says goodbye and retakes after the skew time.

        keepalived 2.2.7 goes BACKUP with a priority-0 advert and its VIPs removed,
        as if it had heard a priority 0 itself: with nobody better, it is MASTER
        again (every VIP back) one skew time later.  A ``no_track`` VIP stays
        deleted until the next transition to MASTER.
        """
        if self._state is not State.MASTER or vip not in self._p.vips or vip in self._p.untracked_vips:
            return
        out.append(SendAdvert(0))
        self._leave_master(out)
        self._master_address = None
        self._arm_down_timer(now, Reason.MASTER_DOWN_TIMER, now + self._skew())
        self._set_state(State.BACKUP, Reason.VIP_REMOVED, out)

    def _reevaluate(self, now: float, out: list[Action], recovered: str) -> None:
        """After a tracker or link change: new priority, then FAULT in or out."""
        if self._state is State.INIT:
            self._prio = self._computed_priority()
            return
        self._update_priority(now, out)
        cause = self._fault_cause()
        if cause is not None and self._state in (State.BACKUP, State.MASTER):
            self._enter_fault(cause, out)
        elif cause is None and self._state is State.FAULT:
            self._leave_fault(now, recovered, out)

    def _update_priority(self, now: float, out: list[Action]) -> None:
        """A new effective priority moves a BACKUP's down-timer deadline (from now)."""
        new = self._computed_priority()
        if new == self._prio:
            return
        out.append(PriorityChanged(self._prio, new))
        self._prio = new
        if self._state is State.BACKUP:
            keep = Reason.PREEMPT if self._down_reason == Reason.PREEMPT else Reason.MASTER_DOWN_TIMER
            self._arm_down_timer(now, keep)

    # ------------------------------------------------------------------ timers

    def _fire_due(self, now: float, out: list[Action]) -> None:
        while (kind := self._timers.pop_due(now)) is not None:
            self._on_timer(now, kind, out)

    def _on_timer(self, now: float, kind: TimerKind, out: list[Action]) -> None:
        garp = self._p.garp
        if kind is TimerKind.MASTER_DOWN:
            self._down_timer_fired(now, out)
        elif kind is TimerKind.MAINTENANCE_END:
            self._end_maintenance(now, out)
        elif kind is TimerKind.ADVERT:
            self._send_advert(now, self._prio, out)
            self._extra_if_garp(now, out)
        elif kind is TimerKind.GARP_MASTER_DELAYED:
            out.append(SendGarp(garp.master_repeat, GarpBurst.MASTER_DELAYED))
        elif kind is TimerKind.GARP_REFRESH:
            out.append(SendGarp(garp.master_refresh_repeat, GarpBurst.REFRESH))
            self._timers.arm(TimerKind.GARP_REFRESH, now + garp.master_refresh)
        else:
            out.append(SendGarp(garp.lower_prio_repeat, GarpBurst.LOWER_PRIO_DELAYED))

    def _extra_if_garp(self, now: float, out: list[Action]) -> None:
        """``garp_extra_if``: keepalived looks at it only when a MASTER's advert timer fires.

        So the GARPs ride on the first periodic advert at or after the due
        time (every SECS rounded up to the advert interval), and the next
        period counts from that advert.
        """
        if self._extra_if_at is None or now < self._extra_if_at:
            return
        out.append(SendGarp(1, GarpBurst.EXTRA_IF, vips=self._p.extra_if_vips))
        self._extra_if_at = extra_if_due(now, self._p.garp.extra_if, self._p.extra_if_vips)

    # ------------------------------------------------------------------ adverts

    def _on_advert(self, now: float, advert: AdvertReceived, out: list[Action]) -> None:
        """Only BACKUP and MASTER listen; INIT and FAULT ignore adverts, and so does a strict-mode owner."""
        if self._ignores_adverts():
            return
        if self._state is State.BACKUP:
            self._backup_rx(now, advert)
        elif self._state is State.MASTER:
            self._master_rx(now, advert, out)

    def _ignores_adverts(self) -> bool:
        """Strict mode: an address owner listens to nobody."""
        return self._p.owner_ignores_adverts and self._base == OWNER_PRIORITY

    def _accepts(self, now: float, advert: AdvertReceived) -> bool:
        """keepalived's backup acceptance: nopreempt, >= our priority, or preempt_delay running."""
        if self._p.effective_nopreempt or advert.priority >= self._prio:
            return True
        if self._p.effective_preempt_delay > 0:
            return self._preempt_until is None or self._preempt_until > now
        return False

    def _backup_rx(self, now: float, advert: AdvertReceived) -> None:
        """Reset the down timer on an accepted advert; a lower one is discarded (preempt)."""
        if advert.priority == 0:
            self._arm_down_timer(now, Reason.PRIORITY_ZERO_RECEIVED, now + self._skew())
            return
        if not self._accepts(now, advert):
            self._down_reason = Reason.PREEMPT
            return
        self._wants_master = False
        self._track_preempt_delay(now, advert)
        if self._p.version == 3:
            self._master_adver_int_cs = advert.interval_cs
        self._master_address = advert.src
        self._arm_down_timer(now, Reason.MASTER_DOWN_TIMER)
        if (
            self._maintenance_until is None
            and self._hold_until is None
            and (self._p.effective_nopreempt or advert.priority >= self._prio)
        ):
            self._repeatable = (advert, self._down_interval())  # acceptance not hanging on preempt_delay

    def _track_preempt_delay(self, now: float, advert: AdvertReceived) -> None:
        """Arm preempt_delay on the first lower advert; a >= advert clears it."""
        delay = self._p.effective_preempt_delay
        if delay <= 0:
            return
        if advert.priority >= self._prio:
            self._preempt_until = None
        elif self._preempt_until is None:
            self._preempt_until = now + delay

    def _master_rx(self, now: float, advert: AdvertReceived, out: list[Action]) -> None:
        """Answer priority 0 and lower masters; yield to a higher one."""
        if advert.priority == 0:
            self._send_advert(now, self._prio, out)
            return
        theirs, ours = self._rank(advert), self._own_rank()
        if theirs > ours:
            self._yield_to(now, advert, out)
        elif theirs < ours:
            self._assert_mastership(now, out)

    @staticmethod
    def _rank(advert: AdvertReceived) -> tuple[int, tuple[int, int]]:
        """Who wins an election: priority, then the higher address."""
        return advert.priority, _address_key(advert.src)

    def _own_rank(self) -> tuple[int, tuple[int, int]]:
        return self._prio, _address_key(self._p.address)

    def _yield_to(self, now: float, advert: AdvertReceived, out: list[Action]) -> None:
        """Higher priority (or equal with a higher address): MASTER -> BACKUP."""
        if self._p.higher_prio_send_advert:
            out.append(SendAdvert(self._prio))
        self._leave_master(out)
        if self._p.version == 3:
            self._master_adver_int_cs = advert.interval_cs
        self._master_address = advert.src
        self._preempt_until = None
        self._arm_down_timer(now, Reason.MASTER_DOWN_TIMER)
        self._set_state(State.BACKUP, Reason.HIGHER_PRIORITY_ADVERT, out)

    def _assert_mastership(self, now: float, out: list[Action]) -> None:
        """Lower priority (or equal with a lower address): advert + GARP repeat."""
        garp = self._p.garp
        if not self._p.lower_prio_no_advert:
            self._send_advert(now, self._prio, out)
        if garp.lower_prio_repeat > 0:
            out.append(SendGarp(garp.lower_prio_repeat, GarpBurst.LOWER_PRIO))
            if garp.lower_prio_delay > 0:
                self._timers.arm(TimerKind.GARP_LOWER_PRIO, now + garp.lower_prio_delay)

    # ------------------------------------------------------------------ sync groups and runtime control

    def _down_timer_fired(self, now: float, out: list[Action]) -> None:
        """Take over, or (a sync-group member) say so and wait with a re-armed timer."""
        if not self._gated:
            self._become_master(now, self._down_reason, out)
            return
        self._wants_master = True
        self._want_reason = self._down_reason
        self._arm_down_timer(now, self._down_reason)
        out.append(WantMaster(reason=self._want_reason))

    def _on_group(self, now: float, event: GroupGo | GroupBackup | GroupFault, out: list[Action]) -> None:
        """What the sync group coordinator decided for this member."""
        if isinstance(event, GroupGo):
            if self._state is State.BACKUP and self._wants_master and self._maintenance_until is None:
                self._become_master(now, self._want_reason, out)
        elif isinstance(event, GroupBackup):
            if self._state is State.MASTER:
                self._step_down(now, Reason.sync_group(event.member), out)
        elif event.member != self._group_fault:
            released = self._group_fault
            self._group_fault = event.member
            self._reevaluate(now, out, Reason.sync_group(event.member or released or ""))

    def _step_down(self, now: float, reason: str, out: list[Action]) -> None:
        """MASTER -> BACKUP on our own initiative: priority 0 first, so a backup takes over after skew."""
        out.append(SendAdvert(0))
        self._leave_master(out)
        self._master_address = None
        self._wants_master = False
        self._arm_down_timer(now, Reason.MASTER_DOWN_TIMER)
        self._set_state(State.BACKUP, reason, out)

    def _on_maintenance(self, now: float, until: float | None, out: list[Action]) -> None:
        """Maintenance: hand over (priority 0) if MASTER, then BACKUP without a down timer until ``until``."""
        if until is None:
            if self._maintenance_until is not None:
                self._end_maintenance(now, out)
            return
        self._maintenance_until = until
        self._timers.arm(TimerKind.MAINTENANCE_END, until)
        self._wants_master = False
        if self._state is State.MASTER:
            self._step_down(now, Reason.MAINTENANCE, out)
        else:
            self._timers.cancel(TimerKind.MASTER_DOWN)

    def _end_maintenance(self, now: float, out: list[Action]) -> None:
        """Compete again: a BACKUP gets a full down timer (so it preempts a lower master)."""
        self._maintenance_until = None
        self._timers.cancel(TimerKind.MAINTENANCE_END)
        if self._state is State.BACKUP:
            self._arm_down_timer(now, Reason.MASTER_DOWN_TIMER)

    # ------------------------------------------------------------------ reload in place

    def _on_reconfigure(self, now: float, event: Reconfigure, out: list[Action]) -> None:
        """New parameters, same state and timers: only what the change itself implies becomes an action.

        A MASTER moves just the VIP difference (GARPs for the added ones only)
        and keeps its advert timer, so the cadence goes on and no extra advert
        leaves; a new priority is re-evaluated like a tracker change (a BACKUP
        re-arms its down timer, a MASTER advertises it at its next timer, so
        mastership moves by the protocol only if the election result changed).
        Identity changes are a restart, never this (``reload_plan.py``).
        """
        old, new = self._p, event.params
        if identity(old) != identity(new):
            raise ValueError(
                f"({old.name}) {identity(old)} -> {identity(new)} needs a restart, not Reconfigure"
            )
        self._p = new
        self._base = new.priority if self._override is None else self._override
        self._tracking = self._tracking.carried_to(new.trackers)
        for tracker in event.trackers:
            self._tracking.report(tracker.name, tracker.ok, tracker.value)
        if new.dont_track_primary:
            self._link_up = True
        for link in event.links:
            self._tracking.link(link.interface, link.up)
            if link.interface == new.interface and not new.dont_track_primary:
                self._link_up = link.up
        if new.effective_preempt_delay <= 0:
            self._preempt_until = None
        if self._state is State.MASTER:
            self._move_vips(now, old, new, out)
        if self._state is not State.BACKUP or new.version == 2 or self._master_address is None:
            self._master_adver_int_cs = new.advert_int_cs  # a v3 BACKUP keeps the master's interval
        self._reevaluate(now, out, Reason.RELOAD)

    def _move_vips(self, now: float, old: InstanceParams, new: InstanceParams, out: list[Action]) -> None:
        """A MASTER removes the VIPs the reload dropped, adds (and announces) only the new ones."""
        gone = tuple(v for v in old.vips if v not in new.vips)
        added = tuple(v for v in new.vips if v not in old.vips)
        if gone:
            out.append(RemoveVips(gone))
        if added:
            out.append(AddVips(added))
            if new.garp.master_repeat > 0:
                out.append(SendGarp(new.garp.master_repeat, GarpBurst.MASTER, vips=added))
        if old.garp.master_refresh != new.garp.master_refresh:
            self._timers.cancel(TimerKind.GARP_REFRESH)
            if new.garp.master_refresh > 0:
                self._timers.arm(TimerKind.GARP_REFRESH, now + new.garp.master_refresh)
        if (old.garp.extra_if, old.extra_if_vips) != (new.garp.extra_if, new.extra_if_vips):
            self._extra_if_at = extra_if_due(now, new.garp.extra_if, new.extra_if_vips)


def identity(p: InstanceParams) -> tuple[object, ...]:
    """What a running machine cannot change: who it is on the wire (and whether it owns the address)."""
    return (p.name, p.vrid, p.interface, p.version, p.address, p.is_owner)
