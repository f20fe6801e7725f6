"""Everything the vrrp service (and the checker's trackers) read, with keepalived's defaults.

Values that keepalived takes from ``global_defs`` when an instance does not say
otherwise (``garp_*``, ``version``, ``strict_mode``, ``smtp_alert``...) are
stored as ``None`` here: "inherits global_defs".  The service resolves them
against ``Config.global_defs`` so a reload that changes a global changes every
instance that did not override it.

Each configured object keeps an ``origin`` (file and line) so later checks and
the services can point at the line that defined it.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated

import msgspec

from shared.addresses import IPAddress
from shared.config.script import Script
from shared.redact import SECRET

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class Origin(msgspec.Struct, frozen=True):
    """Where something was configured: a ``Where`` for diagnostics raised after parsing."""

    file: str = ""
    line: int = 0


# --------------------------------------------------------------------------- addresses, routes, rules


class VirtualAddress(msgspec.Struct, kw_only=True):
    """One ``virtual_ipaddress`` / ``virtual_ipaddress_excluded`` / ``static_ipaddress`` line."""

    address: IPInterface
    broadcast: str | None = None  # an address, or '+'/'-' (set/clear host bits)
    dev: str | None = None  # None: the instance's interface (or default_interface for static)
    scope: str | None = None
    label: str | None = None
    peer: IPAddress | None = None
    home: bool = False
    nodad: bool = False
    mngtmpaddr: bool = False
    noprefixroute: bool = False
    autojoin: bool = False
    no_track: bool = False
    preferred_lft: int | None = None  # None: kernel default (0 for IPv6 /128 VIPs); -1: forever
    use_vmac: bool = False  # its own VMAC (services/vrrp/kernel/vmac.py address_vmacs)
    track_group: str | None = None  # static_ipaddress only
    origin: Origin = Origin()


class Nexthop(msgspec.Struct, kw_only=True):
    via: IPAddress | None = None
    dev: str | None = None
    weight: int | None = None
    onlink: bool = False
    realms: str | None = None


class Route(msgspec.Struct, kw_only=True):
    """One ``virtual_routes`` / ``static_routes`` line in ``ip route add`` syntax."""

    destination: IPNetwork
    type: str = "unicast"
    source: IPAddress | None = None  # "src": preferred source address
    from_prefix: IPNetwork | None = None  # "from": source prefix (IPv6)
    via: IPAddress | None = None
    dev: str | None = None
    onlink: bool = False
    table: int | None = None  # None: main
    scope: str | None = None
    protocol: str | None = None
    metric: int | None = None
    tos: int | None = None
    realms: str | None = None
    pref: str | None = None  # IPv6 router preference
    metrics: dict[str, str] = msgspec.field(default_factory=dict)  # mtu, advmss, rtt... as written
    locked: list[str] = msgspec.field(default_factory=list)  # metrics given with "lock"
    features: list[str] = msgspec.field(default_factory=list)
    nexthops: list[Nexthop] = msgspec.field(default_factory=list)
    append: bool = False
    no_track: bool = False
    track_group: str | None = None  # static_routes only
    origin: Origin = Origin()


class Rule(msgspec.Struct, kw_only=True):
    """One ``virtual_rules`` / ``static_rules`` line in ``ip rule add`` syntax."""

    family: int = 4
    invert: bool = False
    from_prefix: IPNetwork | None = None
    to_prefix: IPNetwork | None = None
    action: str = "table"  # table, goto, nop, blackhole, prohibit, unreachable, l3mdev
    table: int | None = None
    goto: int | None = None
    preference: int | None = None  # None in the file: keepalived assigns one (and warns)
    tos: int | None = None
    fwmark: int | None = None
    fwmask: int | None = None
    realms: str | None = None
    iif: str | None = None
    oif: str | None = None
    uidrange: tuple[int, int] | None = None
    sport: tuple[int, int] | None = None
    dport: tuple[int, int] | None = None
    ipproto: int | None = None
    protocol: int | None = None
    suppress_prefixlength: int | None = None
    suppress_ifgroup: int | None = None
    tunnel_id: int | None = None
    no_track: bool = False
    track_group: str | None = None  # static_rules only
    origin: Origin = Origin()


# --------------------------------------------------------------------------- trackers


class TrackRef(msgspec.Struct, kw_only=True):
    """A ``track_script`` / ``track_process`` / ``track_file`` / ``track_bfd`` line.

    ``weight`` None means "the tracker's own weight"; ``reverse`` None likewise.
    """

    name: str
    weight: int | None = None
    reverse: bool | None = None
    origin: Origin = Origin()


class TrackedInterface(msgspec.Struct, kw_only=True):
    name: str
    weight: int = 0  # 0: a down interface means FAULT
    reverse: bool = False
    origin: Origin = Origin()


class VrrpScript(msgspec.Struct, kw_only=True):
    """``vrrp_script NAME``: run periodically by the checker, result consumed by vrrp."""

    name: str
    script: Script | None = None
    interval: float = 1.0
    timeout: float | None = None  # None: same as interval
    weight: int = 0
    weight_reverse: bool = False
    rise: int = 1
    fall: int = 1
    user: str | None = None  # None: global script_user
    group: str | None = None
    init_fail: bool = False
    user_invalid: bool = False  # 'user' named nobody on this host: keepalived drops the script
    origin: Origin = Origin()


class TrackProcess(msgspec.Struct, kw_only=True):
    """``vrrp_track_process NAME``: process presence via the proc connector."""

    name: str
    process: list[str] = msgspec.field(default_factory=list)
    param_match: str | None = None  # None: exact when parameters given; "initial" | "partial"
    weight: int = 0
    weight_reverse: bool = False
    quorum: int = 1
    quorum_max: int | None = None  # None: unlimited
    fork_delay: float = 0.0
    terminate_delay: float = 0.0
    full_command: bool = False
    origin: Origin = Origin()


class TrackFile(msgspec.Struct, kw_only=True):
    """``track_file NAME`` (``vrrp_track_file`` is the deprecated spelling)."""

    name: str
    file: str | None = None
    weight: int = 1
    weight_reverse: bool = False
    init_file: bool = False
    init_value: int = 0
    init_overwrite: bool = False
    origin: Origin = Origin()


class BfdInstance(msgspec.Struct, kw_only=True):
    """``bfd_instance NAME``: parsed here so vrrp can reference it from ``track_bfd``."""

    name: str
    neighbor_ip: IPAddress | None = None
    source_ip: IPAddress | None = None
    min_rx: float = 10.0  # ms
    min_tx: float = 10.0  # ms
    idle_tx: float = 1000.0  # ms
    multiplier: int = 5
    passive: bool = False
    ttl: int | None = None  # None: 255
    hoplimit: int | None = None  # None: 64
    max_hops: int = 0
    weight: int = 0
    weight_reverse: bool = False
    vrrp: bool = False
    checker: bool = False
    origin: Origin = Origin()


# --------------------------------------------------------------------------- instances and groups


class Authentication(msgspec.Struct, kw_only=True):
    type: str | None = None  # "PASS" | "AH"
    password: Annotated[bytes, SECRET] = b""  # at most 8 bytes, as on the wire (zero padding by the codec)


class UnicastPeer(msgspec.Struct, kw_only=True):
    address: IPAddress
    min_ttl: int | None = None
    max_ttl: int | None = None
    origin: Origin = Origin()


class VrrpInstance(msgspec.Struct, kw_only=True):
    """``vrrp_instance NAME`` after keepalived's completion rules (see ``parse_vrrp.finish``)."""

    name: str
    origin: Origin = Origin()
    # core
    state: str = "BACKUP"  # initial state wanted: MASTER | BACKUP
    interface: str | None = None
    vrid: int | None = None
    priority: int = 100  # 255 when state MASTER without priority
    advert_int: float = 1.0
    version: int | None = None  # None: inherits global_defs vrrp_version (IPv6 forces 3)
    family: int | None = None  # 4 or 6, from the first VIP (or native_ipv6); None if no VIPs
    authentication: Authentication | None = None
    # addresses
    vips: list[VirtualAddress] = msgspec.field(default_factory=list)
    excluded_vips: list[VirtualAddress] = msgspec.field(default_factory=list)
    routes: list[Route] = msgspec.field(default_factory=list)
    rules: list[Rule] = msgspec.field(default_factory=list)
    no_virtual_ipaddress: bool = False
    # tracking
    track_interfaces: list[TrackedInterface] = msgspec.field(default_factory=list)
    track_scripts: list[TrackRef] = msgspec.field(default_factory=list)
    track_processes: list[TrackRef] = msgspec.field(default_factory=list)
    track_files: list[TrackRef] = msgspec.field(default_factory=list)
    track_bfds: list[TrackRef] = msgspec.field(default_factory=list)
    track_src_ip: bool = False
    dont_track_primary: bool = False
    linkbeat_use_polling: bool = False
    # transport
    unicast_src_ip: IPAddress | None = None
    mcast_src_ip: IPAddress | None = None
    mcast_dst_ip: IPAddress | None = None  # None: global vrrp_mcast_group4/6
    unicast_peers: list[UnicastPeer] = msgspec.field(default_factory=list)
    unicast_ttl: int | None = None  # None: 255
    check_unicast_src: bool = False
    unicast_fault_no_peer: bool = False
    old_unicast_checksum: str | None = None  # None | "auto" (flag given) | "never"
    v3_checksum_as_v2: bool | None = None
    vrf: str | None = None
    use_vmac: bool = False
    vmac_name: str | None = None
    vmac_mac: str | None = None
    vmac_xmit_base: bool = False
    use_vmac_addr: bool = False
    use_ipvlan: bool = False
    ipvlan_name: str | None = None
    ipvlan_address: IPInterface | None = None
    ipvlan_mode: str | None = None
    native_ipv6: bool = False
    kernel_rx_buf_size: int | None = None
    # election behaviour
    nopreempt: bool = False
    preempt_delay: float = 0.0
    accept: bool | None = None  # None: accept unless strict mode (then owner only)
    strict_mode: bool | None = None  # None: inherits global_defs vrrp_strict
    skip_check_adv_addr: bool | None = None
    lower_prio_no_advert: bool | None = None
    higher_prio_send_advert: bool | None = None
    down_timer_adverts: int = 3
    timer_expired_backup: bool = False
    owner_ignore_adverts: bool | None = None
    promote_secondaries: bool = False
    debug: int = 0
    # gratuitous ARP / NA: None inherits global_defs vrrp_garp_*
    garp_master_delay: float | None = None
    garp_master_repeat: int | None = None
    garp_lower_prio_delay: float | None = None
    garp_lower_prio_repeat: int | None = None
    garp_master_refresh: float | None = None
    garp_master_refresh_repeat: int | None = None
    garp_extra_if: float | None = None
    garp_extra_if_all: bool = False
    # notification
    notify_master: Script | None = None
    notify_backup: Script | None = None
    notify_fault: Script | None = None
    notify_stop: Script | None = None
    notify_deleted: Script | None = None
    notify_deleted_set: bool = False
    notify: Script | None = None
    notify_master_rx_lower_pri: Script | None = None
    notify_priority_changes: bool | None = None
    smtp_alert: bool | None = None  # None: inherits global smtp_alert / smtp_alert_vrrp
    lvs_sync_daemon_interface: str | None = None  # deprecated
    sync_group: str | None = None  # filled by finish from vrrp_sync_group
    origins: dict[str, Origin] = msgspec.field(default_factory=dict)  # keyword -> where set


class SyncGroup(msgspec.Struct, kw_only=True):
    name: str
    members: list[str] = msgspec.field(default_factory=list)
    track_interfaces: list[TrackedInterface] = msgspec.field(default_factory=list)
    track_scripts: list[TrackRef] = msgspec.field(default_factory=list)
    track_processes: list[TrackRef] = msgspec.field(default_factory=list)
    track_files: list[TrackRef] = msgspec.field(default_factory=list)
    track_bfds: list[TrackRef] = msgspec.field(default_factory=list)
    notify_master: Script | None = None
    notify_backup: Script | None = None
    notify_fault: Script | None = None
    notify_stop: Script | None = None
    notify: Script | None = None
    notify_priority_changes: bool | None = None
    smtp_alert: bool | None = None
    global_tracking: bool = False
    sync_group_tracking_weight: bool = False
    origin: Origin = Origin()
    member_origins: dict[str, Origin] = msgspec.field(default_factory=dict)


class GarpGroup(msgspec.Struct, kw_only=True):
    garp_interval: float | None = None
    gna_interval: float | None = None
    interfaces: list[str] = msgspec.field(default_factory=list)
    origin: Origin = Origin()
    interface_origins: dict[str, Origin] = msgspec.field(default_factory=dict)


class TrackGroup(msgspec.Struct, kw_only=True):
    """``track_group NAME { group { VI... } }``: instances that go FAULT if a static item is lost."""

    name: str
    members: list[str] = msgspec.field(default_factory=list)
    origin: Origin = Origin()


class LinkbeatInterface(msgspec.Struct, kw_only=True):
    name: str
    method: str | None = None  # MII | ETHTOOL | IOCTL; None: first supported
    origin: Origin = Origin()


class UpDownDelay(msgspec.Struct, kw_only=True):
    interface: str
    down: float
    up: float
    origin: Origin = Origin()


class VrrpConfig(msgspec.Struct, kw_only=True):
    instances: dict[str, VrrpInstance] = msgspec.field(default_factory=dict)
    scripts: dict[str, VrrpScript] = msgspec.field(default_factory=dict)
    track_processes: dict[str, TrackProcess] = msgspec.field(default_factory=dict)
    track_files: dict[str, TrackFile] = msgspec.field(default_factory=dict)
    bfd_instances: dict[str, BfdInstance] = msgspec.field(default_factory=dict)
    sync_groups: dict[str, SyncGroup] = msgspec.field(default_factory=dict)
    track_groups: dict[str, TrackGroup] = msgspec.field(default_factory=dict)
    garp_groups: list[GarpGroup] = msgspec.field(default_factory=list)
    static_addresses: list[VirtualAddress] = msgspec.field(default_factory=list)
    static_routes: list[Route] = msgspec.field(default_factory=list)
    static_rules: list[Rule] = msgspec.field(default_factory=list)
    linkbeat_interfaces: list[LinkbeatInterface] = msgspec.field(default_factory=list)
    up_down_delays: dict[str, UpDownDelay] = msgspec.field(default_factory=dict)
