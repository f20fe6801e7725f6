"""Typed inputs to and actions from the VRRP machine (Ryu-style typed events).

Inputs describe something that happened; actions describe something the IO
shell must do.  Both are frozen msgspec Structs with a ``tag`` so they can be
logged, compared in tests and, if ever needed, encoded as they are.
"""

from __future__ import annotations

import msgspec

from services.vrrp.core.machine_types import GarpBurst, InstanceParams, State
from shared.addresses import IPAddress

# --------------------------------------------------------------------------- inputs


class Start(msgspec.Struct, frozen=True, kw_only=True, tag="start"):
    """The instance is configured and the shell is ready: leave INIT.

    ``hold_until``: ``vrrp_startup_delay``'s end (machine clock).  Until then
    no down timer runs out: each is armed from that time (keepalived 2.2.7's
    ``vrrp_delayed_start_time``), and an address owner starts in BACKUP and
    takes over then, so nothing is advertised before it.
    """

    hold_until: float | None = None
    resume: bool = False
    """Resume as MASTER (``core/resume.py`` decided the dead process's mastership is still ours):
    no VIP removal, no transition; the machine sends an advert at once and says ``Resumed``.
    Ignored (an ordinary start) when the instance must be in FAULT or is a sync-group member.
    """


class Stop(msgspec.Struct, frozen=True, tag="stop"):
    """Shutdown: a master sends priority 0 and drops its VIPs."""


class Tick(msgspec.Struct, frozen=True, tag="tick"):
    """Nothing but the passage of time: fire every deadline due by ``now``."""


class AdvertReceived(msgspec.Struct, frozen=True, kw_only=True, tag="advert"):
    """An advert for our VRID that the codec has already validated.

    ``interval_cs`` is the advertised interval in centiseconds; only v3 uses
    it (a v2 interval mismatch is dropped by the validator, as in keepalived).
    """

    src: IPAddress
    priority: int
    interval_cs: int = 100


class TrackerChanged(msgspec.Struct, frozen=True, kw_only=True, tag="tracker"):
    """A tracker result: ``ok`` for script/process/bfd, ``value`` for track_file."""

    name: str
    ok: bool = True
    value: int | None = None


class LinkChanged(msgspec.Struct, frozen=True, kw_only=True, tag="link"):
    """Carrier of an interface: the instance's own interface or a tracked one."""

    interface: str
    up: bool


class StaticLost(msgspec.Struct, frozen=True, kw_only=True, tag="static_lost"):
    """A static address, route or rule of the instance's ``track_group`` is lost (None: none is).

    keepalived 2.2.7 restores a deleted static item at once; one that cannot
    be (its interface is down or gone, or the kernel refuses it) holds every
    instance of its track group in FAULT until it is back
    (``core/static_tracking.py`` decides, the shell reports).
    """

    item: str | None


class VirtualRouteLost(msgspec.Struct, frozen=True, kw_only=True, tag="virtual_route_lost"):
    """A tracked ``virtual_routes``/``virtual_rules`` entry of a MASTER was deleted by someone else.

    keepalived 2.2.7 then leaves MASTER for BACKUP (priority 0 sent, VIPs,
    routes and rules removed) and competes again; a ``no_track`` entry is never
    reported.
    """

    item: str


class SourceAddress(msgspec.Struct, frozen=True, kw_only=True, tag="source_address"):
    """Whether the instance's interface still has an address of the family to send adverts from.

    The shell reports it from netlink address events; the machine decides whether
    it matters (only when the source is the interface's own address).
    """

    present: bool


class VipRemoved(msgspec.Struct, frozen=True, kw_only=True, tag="vip_removed"):
    """One of the instance's VIPs (or excluded VIPs) was deleted by someone else than the service.

    ``vip`` is the object from ``InstanceParams.vips``; the machine decides
    (a MASTER steps down unless the line said ``no_track``).
    """

    vip: object


class GroupGo(msgspec.Struct, frozen=True, tag="group_go"):
    """Sync group: every member wants MASTER, so a waiting member may take it now."""


class GroupBackup(msgspec.Struct, frozen=True, kw_only=True, tag="group_backup"):
    """Sync group: ``member`` left MASTER for BACKUP, so a MASTER member follows it."""

    member: str


class GroupFault(msgspec.Struct, frozen=True, kw_only=True, tag="group_fault"):
    """Sync group: ``member`` is in FAULT (None: no member is), which holds this one in FAULT."""

    member: str | None


class SetPriority(msgspec.Struct, frozen=True, kw_only=True, tag="set_priority"):
    """Runtime control: replace the configured base priority (None restores the configured one)."""

    priority: int | None


class Maintenance(msgspec.Struct, frozen=True, kw_only=True, tag="maintenance"):
    """Runtime control: stay BACKUP and do not compete until ``until`` (None ends maintenance now)."""

    until: float | None


class Reconfigure(msgspec.Struct, frozen=True, kw_only=True, tag="reconfigure"):
    """Reload: swap in new parameters keeping state and timers (``reload_plan.py`` said in place).

    ``trackers`` and ``links`` are what the shell knows now about the new
    parameters' trackers and interfaces; they are applied before the machine
    re-evaluates, so a tracker the reload adds never reads as "unknown" for
    an instant (which for an unweighted tracker would be a spurious FAULT).
    """

    params: InstanceParams
    trackers: tuple[TrackerChanged, ...] = ()
    links: tuple[LinkChanged, ...] = ()


Input = (
    Start
    | Stop
    | Tick
    | AdvertReceived
    | TrackerChanged
    | LinkChanged
    | StaticLost
    | VirtualRouteLost
    | SourceAddress
    | VipRemoved
    | GroupGo
    | GroupBackup
    | GroupFault
    | SetPriority
    | Maintenance
    | Reconfigure
)

# --------------------------------------------------------------------------- actions


class SendAdvert(msgspec.Struct, frozen=True, tag="send_advert"):
    """Send one advert with this priority (0 means "I am leaving")."""

    priority: int


class AddVips(msgspec.Struct, frozen=True, tag="add_vips"):
    """Install the virtual addresses (and routes/rules the shell ties to them)."""

    vips: tuple[object, ...]


class RemoveVips(msgspec.Struct, frozen=True, tag="remove_vips"):
    """Remove the virtual addresses; also sent once at start-up to clean leftovers."""

    vips: tuple[object, ...]


class SendGarp(msgspec.Struct, frozen=True, tag="send_garp"):
    """Send ``count`` gratuitous ARPs / unsolicited NAs per VIP (``vips``: only those; None: all)."""

    count: int
    burst: GarpBurst
    vips: tuple[object, ...] | None = None


class PriorityChanged(msgspec.Struct, frozen=True, tag="priority_changed"):
    """The effective priority moved (keepalived logs it and may tell the FIFO)."""

    old: int
    new: int


class StateChanged(msgspec.Struct, frozen=True, kw_only=True, tag="state_changed"):
    """A transition, emitted after the IO actions it implies (notifies run last)."""

    old: State
    new: State
    reason: str
    effective_priority: int
    master_address: IPAddress | None = None


class WantMaster(msgspec.Struct, frozen=True, kw_only=True, tag="want_master"):
    """A sync-group member's down timer fired: it stays BACKUP until its group says ``GroupGo``."""

    reason: str


class Resumed(msgspec.Struct, frozen=True, kw_only=True, tag="resumed"):
    """The machine started as MASTER by resuming a restarted process's mastership: not a transition.

    The VIPs were never removed and the advert already left; the shell
    restores what a MASTER holds outside the addresses (virtual routes,
    ``no_accept`` rules) and reports the fact.
    """

    effective_priority: int


Action = SendAdvert | AddVips | RemoveVips | SendGarp | PriorityChanged | StateChanged | WantMaster | Resumed
