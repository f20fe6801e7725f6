"""Parameters and vocabulary of the sans-IO VRRP machine.

Kept apart from ``machine.py`` so the service (which builds ``InstanceParams``
from keepalived.conf) and the tests can import the data types without the
logic, and so every name the state machine speaks is defined in one place.
Nothing here imports asyncio, socket or nats.
"""

from __future__ import annotations

import enum
from typing import Literal

import msgspec

from shared.addresses import IPAddress

OWNER_PRIORITY = 255
"""The address owner's priority: never changed by trackers, master at once."""


class State(enum.Enum):
    """keepalived's instance states, plus STOPPED after a shutdown."""

    INIT = "INIT"
    BACKUP = "BACKUP"
    MASTER = "MASTER"
    FAULT = "FAULT"
    STOPPED = "STOPPED"


class Reason:
    """Why a ``StateChanged`` happened (``TRACKER_FAILED`` gets ``:NAME`` appended)."""

    STARTUP = "startup"
    MASTER_DOWN_TIMER = "master_down_timer"
    HIGHER_PRIORITY_ADVERT = "higher_priority_advert"
    PRIORITY_ZERO_RECEIVED = "priority_zero_received"
    PREEMPT = "preempt"
    TRACKER_FAILED = "tracker_failed"
    INTERFACE_DOWN = "interface_down"
    INTERFACE_UP = "interface_up"
    TRACKER_RECOVERED = "tracker_recovered"
    SHUTDOWN = "shutdown"
    SYNC_GROUP = "sync_group"
    """A sync group moved this member (``sync_group:MEMBER`` names the member that caused it)."""
    MAINTENANCE = "maintenance"
    """An operator put the instance in maintenance (runtime control)."""
    RELOAD = "reload"
    """A reload changed the instance in place (a tracker or link it now has moved it in or out of FAULT)."""
    NO_UNICAST_PEER = "no_unicast_peer"
    """``unicast_fault_no_peer`` with an empty peer list: FAULT for as long as the configuration says so."""
    NO_SOURCE_ADDRESS = "no_source_address"
    """The interface the adverts take their source from has no address of the family left."""
    SOURCE_ADDRESS_BACK = "source_address_back"
    """An address came back to that interface: out of FAULT."""
    VIP_REMOVED = "vip_removed"
    """A tracked VIP was deleted behind the service's back: a MASTER steps down (keepalived 2.2.7)."""

    STATIC_LOST = "static_lost"
    """A static address/route/rule of the instance's track_group is lost (``static_lost:ITEM``)."""
    VIRTUAL_ROUTE_DELETED = "virtual_route_deleted"
    """A tracked virtual route or rule of a MASTER was deleted (``virtual_route_deleted:ITEM``)."""

    @staticmethod
    def sync_group(member: str) -> str:
        """The reason string naming the group member whose change moved this one."""
        return f"{Reason.SYNC_GROUP}:{member}"

    @staticmethod
    def tracker_failed(name: str) -> str:
        """The reason string naming the tracker that forced FAULT."""
        return f"{Reason.TRACKER_FAILED}:{name}"


class GarpBurst(enum.Enum):
    """Which rule asked for gratuitous ARPs/NAs, so the shell can log and pace them."""

    MASTER = "master"
    MASTER_DELAYED = "master_delayed"
    REFRESH = "refresh"
    LOWER_PRIO = "lower_prio"
    LOWER_PRIO_DELAYED = "lower_prio_delayed"
    EXTRA_IF = "extra_if"
    """``garp_extra_if``: one GARP/NA per extra interface, at the first advert after each period."""


TrackerKind = Literal["script", "process", "file", "interface", "bfd"]


class TrackerSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One tracker as the instance sees it (its own weight/reverse already resolved).

    ``weight`` 0 means "failure puts the instance in FAULT".  ``init_fail``
    (scripts) makes the tracker count as failed until its first result.  For
    ``interface`` trackers ``name`` is the interface name.
    """

    name: str
    kind: TrackerKind = "script"
    weight: int = 0
    reverse: bool = False
    init_fail: bool = False


class GarpParams(msgspec.Struct, frozen=True, kw_only=True):
    """Gratuitous ARP / NA timing, keepalived's ``vrrp_garp_*`` defaults (seconds).

    A delay of 0 disables the second burst; a refresh of 0 disables refresh.
    """

    master_delay: float = 5.0
    master_repeat: int = 5
    master_refresh: float = 0.0
    master_refresh_repeat: int = 1
    lower_prio_delay: float = 5.0
    lower_prio_repeat: int = 5
    extra_if: float = 0.0
    """``garp_extra_if`` period (0: off): see ``InstanceParams.extra_if_vips`` for where."""


class InstanceParams(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the machine needs to know about one ``vrrp_instance``.

    The service resolves keepalived.conf (globals, tracker weights, VIPs) into
    this; the machine never reads configuration itself.  ``advert_int_cs`` is in
    centiseconds (the v3 wire unit; v2 configs are whole seconds x 100).
    ``vips`` are opaque to the machine and handed back in ``AddVips`` /
    ``RemoveVips``.
    """

    name: str
    vrid: int
    address: IPAddress
    interface: str = ""
    version: Literal[2, 3] = 2
    priority: int = 100
    advert_int_cs: int = 100
    initial_state: Literal["MASTER", "BACKUP"] = "BACKUP"
    nopreempt: bool = False
    preempt_delay: float = 0.0
    down_timer_adverts: int = 3
    accept: bool = True
    vips: tuple[object, ...] = ()
    extra_if_vips: tuple[object, ...] = ()
    """``garp_extra_if``: the first VIP of each interface given a periodic GARP/NA (params.py picks them)."""
    trackers: tuple[TrackerSpec, ...] = ()
    dont_track_primary: bool = False
    garp: GarpParams = GarpParams()
    lower_prio_no_advert: bool = False
    higher_prio_send_advert: bool = False
    owner_ignores_adverts: bool = False
    """Strict mode: an address owner (priority 255) drops every advert it receives."""
    unicast_no_peer: bool = False
    """``unicast_fault_no_peer`` and no peers: the instance stays in FAULT (keepalived 2.2.7)."""
    source_from_interface: bool = False
    """No ``unicast_src_ip``/``mcast_src_ip``: the adverts' source is the interface's own address, so
    the interface losing its last address of the family faults the instance (``SourceAddress``).
    A configured source is never tracked at run time, ``track_src_ip`` or not (keepalived 2.2.7)."""
    untracked_vips: tuple[object, ...] = ()
    """The ``vips`` whose line says ``no_track``: deleting one by hand leaves a MASTER alone."""

    @property
    def is_owner(self) -> bool:
        """Priority 255: the address owner, whose priority trackers never touch."""
        return self.priority == OWNER_PRIORITY

    @property
    def effective_nopreempt(self) -> bool:
        """keepalived clears nopreempt with ``state MASTER`` and refuses it for an owner."""
        return self.nopreempt and self.initial_state == "BACKUP" and not self.is_owner

    @property
    def effective_preempt_delay(self) -> float:
        """preempt_delay is ignored with ``state MASTER`` or ``nopreempt``."""
        if self.initial_state == "MASTER" or self.effective_nopreempt:
            return 0.0
        return self.preempt_delay

    @property
    def effective_accept(self) -> bool:
        """Accept mode is forced on for the address owner."""
        return self.accept or self.is_owner
