"""keepalived.conf's ``vrrp_instance`` → what the machine, the codec and the sockets need.

Why a pure module of its own: every rule about *which* value wins (the
instance's, the tracker's, ``global_defs``', keepalived's implied one) lives
here, so it is unit-tested without root, and the IO shell (``instance.py``)
never looks at configuration.  The one fact that needs the kernel (the
interface's primary address, the default advert source) is passed in.

The result is a frozen :class:`InstancePlan`; two plans compare equal exactly
when nothing the running instance depends on changed, which is how a reload
decides which instances to leave alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from ipaddress import IPv4Address, IPv4Interface, IPv6Interface, ip_interface
from typing import Literal

import msgspec

from services.vrrp.core.machine_types import GarpParams, InstanceParams, TrackerSpec
from services.vrrp.kernel.addresses import (
    IFA_F_HOMEADDRESS,
    IFA_F_MANAGETEMPADDR,
    IFA_F_MCAUTOJOIN,
    IFA_F_NOPREFIXROUTE,
    Vip,
)
from services.vrrp.kernel.ipvlan import Ipvlan, ipvlan_of
from services.vrrp.kernel.vmac import Vmac, address_vmacs, vmac_of
from services.vrrp.packet import (
    VRRP_GROUP_V4,
    AuthType,
    ChecksumMode,
    RxConfig,
    auth_pass_bytes,
)
from shared.addresses import IPAddress
from shared.config.model_global import GlobalDefs
from shared.config.model_vrrp import (
    Origin,
    Route,
    Rule,
    SyncGroup,
    TrackedInterface,
    TrackRef,
    VirtualAddress,
    VrrpConfig,
    VrrpInstance,
)

CS_PER_SECOND = 100
OWNER = 255


class PlanError(ValueError):
    """The instance cannot run on this host as configured (e.g. no source address)."""


class Transport(msgspec.Struct, frozen=True, kw_only=True):
    """How adverts leave and arrive: family, source, destinations, socket kind.

    ``dsts`` is the multicast group alone, or every unicast peer (one copy
    each, as keepalived sends).  ``proto`` is 112, or 51 for ``auth_type AH``.
    """

    interface: str
    family: Literal[4, 6]
    src: IPAddress
    dsts: tuple[IPAddress, ...]
    unicast: bool
    group: IPAddress
    ttl: int = 255
    proto: int = 112
    checksum_mode: ChecksumMode = ChecksumMode.PSEUDO
    ah_key: bytes | None = None


class Pacing(msgspec.Struct, frozen=True, kw_only=True):
    """The pauses after each GARP (``garp``) and NA (``gna``) sent on an interface, in seconds.

    ``group``: the ``garp_group`` (its place in the file) the interface is in;
    every interface of one group shares one sequence of pauses (their switch
    is what the pacing protects).  None: the interface is paced on its own.
    """

    garp: float = 0.0
    gna: float = 0.0
    group: int | None = None


class InstancePlan(msgspec.Struct, frozen=True, kw_only=True):
    """Everything one running instance is built from (equal plans: nothing to restart)."""

    name: str
    params: InstanceParams
    rx: RxConfig
    transport: Transport
    vips: tuple[Vip, ...]
    excluded_vips: tuple[Vip, ...]
    advert_addresses: tuple[IPAddress, ...]
    garp_interval: float = 0.0
    gna_interval: float = 0.0
    """``vrrp_garp_interval`` / ``vrrp_gna_interval``: interfaces in no ``garp_group``."""
    garp_groups: dict[str, Pacing] = msgspec.field(default_factory=dict)
    """``garp_group`` pacing of the (base) interfaces this instance's VIPs are on."""
    stale_after: dict[str, float] = msgspec.field(default_factory=dict)
    vmac: Vmac | Ipvlan | None = None
    """``use_vmac``: the macvlan the VIPs (and, unless ``vmac_xmit_base``, the adverts) use;
    ``use_ipvlan``: the ipvlan the adverts use (the VIPs stay on the base, as in keepalived 2.2.7)."""
    address_vmacs: tuple[Vmac, ...] = ()
    """Per-address ``use_vmac``: the VMACs its VIPs/eVIPs go on (not the instance's own ``vmac``)."""
    routes: tuple[Route, ...] = ()
    rules: tuple[Rule, ...] = ()
    """``virtual_routes`` / ``virtual_rules``, set while MASTER (no file:line: moving a line is no change)."""

    @property
    def all_vips(self) -> tuple[Vip, ...]:
        """What the instance installs as MASTER: VIPs first, then excluded VIPs."""
        return self.vips + self.excluded_vips

    def pacing_of(self, dev: str) -> tuple[Pacing, object]:
        """The pauses for GARPs on ``dev`` and the key of the sequence they belong to.

        A VMAC is paced as its base interface, by its ``garp_group``
        (keepalived 2.2.7, checked on the wire); an interface in no group by
        the globals, on its own.
        """
        base = self.vmac.base if self.vmac is not None and dev == self.vmac.name else dev
        pacing = self.garp_groups.get(base)
        if pacing is None:
            return Pacing(garp=self.garp_interval, gna=self.gna_interval), base
        return pacing, ("garp_group", pacing.group)

    @property
    def tracked_interfaces(self) -> frozenset[str]:
        """Interfaces whose link state the instance must be told about."""
        names = {t.name for t in self.params.trackers if t.kind == "interface"}
        if not self.params.dont_track_primary:
            names.add(self.params.interface)
        return frozenset(names)


# --------------------------------------------------------------------------- small resolutions


def version_of(inst: VrrpInstance, g: GlobalDefs) -> Literal[2, 3]:
    """``version`` beats ``vrrp_version``; IPv6 is always VRRPv3."""
    if inst.family == 6:
        return 3
    version = inst.version if inst.version is not None else g.vrrp_version
    return 3 if version == 3 else 2


def advert_int_cs(inst: VrrpInstance, version: int) -> int:
    """v2 carries whole seconds (the parser already rounded), v3 centiseconds."""
    if version == 2:
        return max(1, round(inst.advert_int)) * CS_PER_SECOND
    return max(1, round(inst.advert_int * CS_PER_SECOND))


def vip_of(va: VirtualAddress) -> Vip:
    """One ``virtual_ipaddress`` line as pyroute2 wants it.

    ``brd +``/``brd -`` set/clear the host bits as ``ip addr`` does; ``peer``
    makes a point-to-point address (the prefix is the peer's: /32 or /128, and
    no broadcast, as keepalived 2.2.7 does); the flag options become
    ``IFA_F_*`` bits (``address_flags``).  IPv6 VIPs
    are always added without DAD (keepalived sets IFA_F_NODAD), and a /128
    without ``preferred_lft`` is deprecated (lifetime 0) as keepalived does so
    the kernel never picks it as a source.
    """
    address: IPv4Interface | IPv6Interface = va.address
    brd: IPv4Address | None = None
    if isinstance(address, IPv4Interface) and va.broadcast is not None:
        if va.broadcast == "+":
            brd = address.network.broadcast_address
        elif va.broadcast == "-":
            brd = address.network.network_address
        else:
            brd = IPv4Address(va.broadcast)
    if va.peer is not None:
        address = ip_interface(f"{address.ip}/{address.max_prefixlen}")  # keepalived: the peer's prefix
        brd = None  # "Cannot specify broadcast and peer addresses - ignoring broadcast address"
    lft = va.preferred_lft
    if lft is None and address.version == 6 and address.network.prefixlen == 128:
        lft = 0
    return Vip(
        address=address,
        dev=va.dev,
        brd=brd,
        scope=va.scope,
        label=va.label,
        nodad=True,
        preferred_lft=None if lft == -1 else lft,
        peer=va.peer,
        flags=address_flags(va),
    )


def address_flags(va: VirtualAddress) -> int:
    """The ``IFA_F_*`` bits keepalived sets for ``home``, ``mngtmpaddr``, ``noprefixroute``, ``autojoin``."""
    wanted = (
        (va.home, IFA_F_HOMEADDRESS),
        (va.mngtmpaddr, IFA_F_MANAGETEMPADDR),
        (va.noprefixroute, IFA_F_NOPREFIXROUTE),
        (va.autojoin, IFA_F_MCAUTOJOIN),
    )
    return sum(bit for on, bit in wanted if on)


def _garp_default(value: float | None, default: float) -> float:
    return default if value is None else value


def garp_params(inst: VrrpInstance, g: GlobalDefs) -> GarpParams:
    """Instance ``garp_*`` beat global ``vrrp_garp_*``; ``vrrp_min_garp`` changes the globals.

    ``vrrp_min_garp`` means one GARP and no second burst: it sets the global
    master repeat to 1 and delay to 0 (the lower-priority values follow them
    unless set), and an instance keyword still wins over it.
    """
    master_repeat = 1 if g.vrrp_min_garp else g.vrrp_garp_master_repeat
    master_delay = 0 if g.vrrp_min_garp else g.vrrp_garp_master_delay
    lower_repeat = (
        g.vrrp_garp_lower_prio_repeat if g.vrrp_garp_lower_prio_repeat is not None else master_repeat
    )
    lower_delay = g.vrrp_garp_lower_prio_delay if g.vrrp_garp_lower_prio_delay is not None else master_delay
    return GarpParams(
        master_delay=_garp_default(inst.garp_master_delay, master_delay),
        master_repeat=int(_garp_default(inst.garp_master_repeat, master_repeat)),
        master_refresh=_garp_default(inst.garp_master_refresh, g.vrrp_garp_master_refresh),
        master_refresh_repeat=int(
            _garp_default(inst.garp_master_refresh_repeat, g.vrrp_garp_master_refresh_repeat)
        ),
        lower_prio_delay=_garp_default(inst.garp_lower_prio_delay, lower_delay),
        lower_prio_repeat=int(_garp_default(inst.garp_lower_prio_repeat, lower_repeat)),
        extra_if=extra_if(inst, g)[0],
    )


def extra_if(inst: VrrpInstance, g: GlobalDefs) -> tuple[float, bool]:
    """``garp_extra_if [all] SECS`` (period, all): the instance's, else ``vrrp_garp_extra_if``'s.

    The instance's keyword brings its own ``all`` (0 turns it off); without it
    the global period and ``all`` apply (keepalived 2.2.7, checked on the wire).
    """
    if inst.garp_extra_if is not None:
        return inst.garp_extra_if, inst.garp_extra_if_all
    return float(g.vrrp_garp_extra_if), g.vrrp_garp_extra_if_all


def extra_if_vips(vips: Iterable[Vip], own_dev: str, vmacs: frozenset[str], every: bool) -> tuple[Vip, ...]:
    """The VIP each ``garp_extra_if`` GARP/NA announces: the first (VIPs, then eVIPs) on each interface.

    keepalived 2.2.7 keeps switches' MAC caches of interfaces that carry no
    adverts: never the instance's own interface (its VMAC with ``use_vmac``,
    even with ``vmac_xmit_base``); without ``all`` only keepalived's own VMAC
    interfaces, with ``all`` any interface a VIP is on (docs/keepalived.md).
    ``vips`` already name their interface (``dev``; None is ``own_dev``).
    """
    out: dict[str, Vip] = {}
    for vip in vips:
        dev = vip.dev or own_dev
        if dev == own_dev or dev in out or not (every or dev in vmacs):
            continue
        out[dev] = vip
    return tuple(out.values())


# --------------------------------------------------------------------------- trackers


def _group_of(inst: VrrpInstance, vrrp: VrrpConfig) -> SyncGroup | None:
    return vrrp.sync_groups.get(inst.sync_group) if inst.sync_group else None


def _ref_spec(
    ref: TrackRef, kind: Literal["script", "process", "file", "bfd"], vrrp: VrrpConfig
) -> TrackerSpec:
    """A track_script/process/file/bfd line: the instance's weight and reverse beat the tracker's."""
    weight, reverse, init_fail = 0, False, False
    if kind == "script" and ref.name in vrrp.scripts:
        script = vrrp.scripts[ref.name]
        weight, reverse, init_fail = script.weight, script.weight_reverse, script.init_fail
    elif kind == "process" and ref.name in vrrp.track_processes:
        proc = vrrp.track_processes[ref.name]
        weight, reverse = proc.weight, proc.weight_reverse
    elif kind == "file" and ref.name in vrrp.track_files:
        tf = vrrp.track_files[ref.name]
        weight, reverse = tf.weight, tf.weight_reverse
    elif kind == "bfd" and ref.name in vrrp.bfd_instances:
        bfd = vrrp.bfd_instances[ref.name]
        weight, reverse = bfd.weight, bfd.weight_reverse
    return TrackerSpec(
        name=ref.name,
        kind=kind,
        weight=weight if ref.weight is None else ref.weight,
        reverse=reverse if ref.reverse is None else ref.reverse,
        init_fail=init_fail,
    )


def _iface_spec(ti: TrackedInterface) -> TrackerSpec:
    return TrackerSpec(name=ti.name, kind="interface", weight=ti.weight, reverse=ti.reverse)


def _specs_of(source: VrrpInstance | SyncGroup, vrrp: VrrpConfig) -> Iterable[TrackerSpec]:
    yield from (_iface_spec(ti) for ti in source.track_interfaces)
    yield from (_ref_spec(r, "script", vrrp) for r in source.track_scripts)
    yield from (_ref_spec(r, "process", vrrp) for r in source.track_processes)
    yield from (_ref_spec(r, "file", vrrp) for r in source.track_files)
    yield from (_ref_spec(r, "bfd", vrrp) for r in source.track_bfds)


def route_interface_specs(inst: VrrpInstance) -> Iterator[TrackerSpec]:
    """The interfaces of the tracked ``virtual_routes`` (not ``no_track``), as unweighted interface trackers.

    keepalived 2.2.7 (checked in a namespace): such a route's interface (its
    ``dev`` or a nexthop's) going down puts the instance in FAULT, and its
    coming up lets it out; a ``no_track`` route's interface is not watched.
    """
    seen: set[str] = set()
    for route in inst.routes:
        if route.no_track:
            continue
        for dev in (route.dev, *(hop.dev for hop in route.nexthops)):
            if dev is not None and dev not in seen:
                seen.add(dev)
                yield TrackerSpec(name=dev, kind="interface", weight=0)


def tracker_specs(inst: VrrpInstance, vrrp: VrrpConfig) -> tuple[TrackerSpec, ...]:
    """The instance's trackers (its tracked virtual routes' interfaces last), then its sync group's.

    In a sync group keepalived ignores members' weights (a failure means
    FAULT) unless ``sync_group_tracking_weight`` is set, or its deprecated
    spelling ``global_tracking``, which keepalived 2.2.7 reports as an error and
    then treats the same way.
    """
    group = _group_of(inst, vrrp)
    specs = [*_specs_of(inst, vrrp), *route_interface_specs(inst)]
    if group is not None:
        specs.extend(_specs_of(group, vrrp))
        if not (group.sync_group_tracking_weight or group.global_tracking):
            specs = [msgspec.structs.replace(s, weight=0) for s in specs]
    return tuple(specs)


def notify_priority_changes(inst: VrrpInstance, vrrp: VrrpConfig, g: GlobalDefs) -> bool:
    """keepalived 2.2.7's order: the instance's keyword, else its sync group's, else the global one."""
    if inst.notify_priority_changes is not None:
        return inst.notify_priority_changes
    group = _group_of(inst, vrrp)
    if group is not None and group.notify_priority_changes is not None:
        return group.notify_priority_changes
    return g.vrrp_notify_priority_changes


def stale_intervals(specs: Iterable[TrackerSpec], vrrp: VrrpConfig, default: float = 5.0) -> dict[str, float]:
    """How long a tracker may stay silent before ``status`` calls it stale: 3 heartbeats.

    The checker re-publishes each result every interval; scripts say their
    interval, other trackers are assumed to beat every ``default`` seconds.
    """
    out: dict[str, float] = {}
    for spec in specs:
        if spec.kind == "interface":
            continue
        interval = (
            vrrp.scripts[spec.name].interval
            if spec.kind == "script" and spec.name in vrrp.scripts
            else default
        )
        out[spec.name] = 3 * max(interval, 1.0)
    return out


# --------------------------------------------------------------------------- transport and codec


def configured_source(inst: VrrpInstance) -> IPAddress | None:
    """``unicast_src_ip`` (unicast) or ``mcast_src_ip``; None means "the interface's own address"."""
    if inst.unicast_peers and inst.unicast_src_ip is not None:
        return inst.unicast_src_ip
    return inst.mcast_src_ip if inst.mcast_src_ip is not None else inst.unicast_src_ip


def family_of(inst: VrrpInstance) -> Literal[4, 6]:
    return 6 if inst.family == 6 else 4


def _group(inst: VrrpInstance, g: GlobalDefs, family: int) -> IPAddress:
    if inst.mcast_dst_ip is not None and not inst.unicast_peers:
        return inst.mcast_dst_ip
    return g.vrrp_mcast_group6 if family == 6 else g.vrrp_mcast_group4


def _auth(inst: VrrpInstance, version: int, family: int) -> tuple[int, bytes]:
    """(auth_type, 8 bytes): only VRRPv2 over IPv4 authenticates."""
    auth = inst.authentication
    if auth is None or auth.type is None or version != 2 or family != 4:
        return AuthType.NONE, bytes(8)
    kind = AuthType.AH if auth.type.upper() == "AH" else AuthType.PASS
    return kind, auth_pass_bytes(auth.password)


def _checksum_mode(inst: VrrpInstance, g: GlobalDefs) -> ChecksumMode:
    if inst.v3_checksum_as_v2:
        return ChecksumMode.AS_V2
    if inst.unicast_peers and inst.old_unicast_checksum == "auto":
        return ChecksumMode.OLD_UNICAST
    return ChecksumMode.PSEUDO


def transport(inst: VrrpInstance, g: GlobalDefs, src: IPAddress, version: int) -> Transport:
    """Sockets' view of the instance: where from, where to, how."""
    family = family_of(inst)
    group = _group(inst, g, family)
    peers = tuple(p.address for p in inst.unicast_peers)
    auth_type, auth_data = _auth(inst, version, family)
    return Transport(
        interface=inst.interface or "",
        family=family,
        src=src,
        dsts=peers if peers else (group,),
        unicast=bool(peers),
        group=group,
        ttl=inst.unicast_ttl if peers and inst.unicast_ttl is not None else 255,
        proto=51 if auth_type == AuthType.AH else 112,
        checksum_mode=_checksum_mode(inst, g),
        ah_key=auth_data if auth_type == AuthType.AH else None,
    )


def rx_config(inst: VrrpInstance, g: GlobalDefs, version: int, addresses: tuple[IPAddress, ...]) -> RxConfig:
    """What the codec checks received adverts against."""
    family = family_of(inst)
    auth_type, auth_data = _auth(inst, version, family)
    group4 = _group(inst, g, 4) if family == 4 else VRRP_GROUP_V4
    return RxConfig(
        vrid=inst.vrid or 0,
        version=version,
        interval_cs=advert_int_cs(inst, version),
        addresses=addresses,
        auth_type=auth_type,
        auth_data=auth_data,
        unicast=bool(inst.unicast_peers),
        unicast_peers=frozenset(p.address for p in inst.unicast_peers),
        check_unicast_src=inst.check_unicast_src or g.vrrp_check_unicast_src,
        skip_check_adv_addr=_bool(inst.skip_check_adv_addr, g.vrrp_skip_check_adv_addr),
        rx_buf_size=inst.kernel_rx_buf_size or 0,
        peer_ttls=tuple(
            (p.address, p.min_ttl or 0, 255 if p.max_ttl is None else p.max_ttl)
            for p in inst.unicast_peers
            if p.min_ttl is not None or p.max_ttl is not None
        ),
        checksum_mode=_checksum_mode(inst, g),
        old_unicast_autodetect=inst.old_unicast_checksum != "never",
        mcast_group4=group4 if isinstance(group4, IPv4Address) else VRRP_GROUP_V4,
    )


# --------------------------------------------------------------------------- the whole plan


def _bool(value: bool | None, default: bool) -> bool:
    return default if value is None else value


def _strict_garp(garp: GarpParams) -> GarpParams:
    """Strict mode sends no GARPs after a lower-priority advert, whatever the globals say."""
    return msgspec.structs.replace(garp, lower_prio_repeat=0, lower_prio_delay=0.0)


def instance_params(inst: VrrpInstance, g: GlobalDefs, vrrp: VrrpConfig, src: IPAddress) -> InstanceParams:
    """The machine's parameters (trackers resolved, globals applied, strict mode's rules forced).

    Strict mode forces its knobs here rather than trusting the config check's
    corrections, because a global (``vrrp_down_timer_adverts``,
    ``vrrp_garp_lower_prio_*``, ``vrrp_*_prio_*advert``) may still carry
    another value that ``keepalived -t`` does not complain about.
    """
    version = version_of(inst, g)
    strict = _bool(inst.strict_mode, g.vrrp_strict)
    down = inst.down_timer_adverts if "down_timer_adverts" in inst.origins else g.vrrp_down_timer_adverts
    garp = garp_params(inst, g)
    return InstanceParams(
        name=inst.name,
        vrid=inst.vrid or 0,
        address=src,
        interface=inst.interface or "",
        version=version,
        priority=inst.priority,
        advert_int_cs=advert_int_cs(inst, version),
        initial_state="MASTER" if inst.state == "MASTER" else "BACKUP",
        nopreempt=inst.nopreempt,
        preempt_delay=inst.preempt_delay,
        down_timer_adverts=3 if strict else down,
        accept=_bool(inst.accept, not strict or inst.priority == OWNER),
        vips=tuple(vip_of(v) for v in [*inst.vips, *inst.excluded_vips]),
        trackers=tracker_specs(inst, vrrp),
        dont_track_primary=inst.dont_track_primary,
        garp=_strict_garp(garp) if strict else garp,
        lower_prio_no_advert=strict or _bool(inst.lower_prio_no_advert, g.effective_lower_prio_no_advert()),
        higher_prio_send_advert=not strict
        and _bool(inst.higher_prio_send_advert, g.vrrp_higher_prio_send_advert),
        owner_ignores_adverts=strict,
        unicast_no_peer=inst.unicast_fault_no_peer and not inst.unicast_peers,
        source_from_interface=configured_source(inst) is None,
        untracked_vips=tuple(vip_of(v) for v in [*inst.vips, *inst.excluded_vips] if v.no_track),
    )


def build_plan(
    inst: VrrpInstance, g: GlobalDefs, vrrp: VrrpConfig, interface_address: IPAddress | None
) -> InstancePlan:
    """Resolve one instance; ``interface_address`` is the interface's primary IPv4 / IPv6 link-local.

    Raises :class:`PlanError` when there is no advert source at all.
    """
    ipv = ipvlan_of(inst, g)
    src = configured_source(inst) or ipvlan_source(ipv) or interface_address
    if src is None:
        raise PlanError(
            f"({inst.name}) interface {inst.interface} has no IPv{family_of(inst)} address"
            " to send adverts from"
        )
    params = instance_params(inst, g, vrrp, src)
    vmac = vmac_of(inst, g)
    per_address = address_vmacs(inst, g, vmac)
    all_vips = _on_address_vmacs(inst, per_address)
    params = msgspec.structs.replace(params, vips=all_vips)
    vips, excluded = all_vips[: len(inst.vips)], all_vips[len(inst.vips) :]
    tx = transport(inst, g, src, params.version)
    if vmac is not None:
        params, vips, excluded, tx = _on_vmac(vmac, params, vips, excluded, tx)
    elif ipv is not None and not ipv.xmit_base:
        tx = msgspec.structs.replace(tx, interface=ipv.name)
    params = _with_extra_if(inst, g, vrrp, params, vmac)
    family = family_of(inst)
    advertised = tuple(v.ip for v in vips if v.address.version == family)
    return InstancePlan(
        name=inst.name,
        params=params,
        rx=rx_config(inst, g, params.version, advertised),
        transport=tx,
        vips=vips,
        excluded_vips=excluded,
        advert_addresses=advertised,
        garp_interval=g.vrrp_garp_interval,
        gna_interval=g.vrrp_gna_interval,
        garp_groups=garp_groups_for(vrrp, _vip_devs(inst)),
        stale_after=stale_intervals(params.trackers, vrrp),
        vmac=vmac or ipv,
        address_vmacs=tuple(v for v in dict.fromkeys(per_address.values()) if v is not vmac),
        routes=tuple(msgspec.structs.replace(r, origin=Origin()) for r in inst.routes),
        rules=tuple(msgspec.structs.replace(r, origin=Origin()) for r in inst.rules),
    )


def _vip_devs(inst: VrrpInstance) -> set[str]:
    """The interfaces the instance's VIPs go on, VMACs named by their base (the instance's interface)."""
    return {v.dev or inst.interface or "" for v in [*inst.vips, *inst.excluded_vips]}


def garp_groups_for(vrrp: VrrpConfig, devs: Iterable[str]) -> dict[str, Pacing]:
    """``garp_group`` pacing of ``devs`` (VIPs' interfaces, VMACs under their base name).

    An interval a group does not set is 0 there (no pause), not the global:
    only interfaces in no group inherit ``vrrp_garp_interval`` /
    ``vrrp_gna_interval`` (keepalived.conf(5)).
    """
    wanted = set(devs)
    out: dict[str, Pacing] = {}
    for index, group in enumerate(vrrp.garp_groups):
        pacing = Pacing(garp=group.garp_interval or 0.0, gna=group.gna_interval or 0.0, group=index)
        out.update({name: pacing for name in group.interfaces if name in wanted})
    return out


def _vmac_names(vrrp: VrrpConfig, g: GlobalDefs) -> frozenset[str]:
    """Every VMAC this configuration makes (keepalived's "is ours" interfaces)."""
    return frozenset(v.name for i in vrrp.instances.values() if (v := vmac_of(i, g)) is not None)


def _with_extra_if(
    inst: VrrpInstance, g: GlobalDefs, vrrp: VrrpConfig, params: InstanceParams, vmac: Vmac | None
) -> InstanceParams:
    """Fill ``extra_if_vips`` from the (VMAC-moved) VIPs; the period is already in ``params.garp``."""
    if params.garp.extra_if <= 0:
        return params
    own = vmac.name if vmac is not None else params.interface
    machine_vips = (v for v in params.vips if isinstance(v, Vip))
    chosen = extra_if_vips(machine_vips, own, _vmac_names(vrrp, g), extra_if(inst, g)[1])
    return msgspec.structs.replace(params, extra_if_vips=chosen)


def _on_address_vmacs(inst: VrrpInstance, per_address: dict[tuple[str, int], Vmac]) -> tuple[Vip, ...]:
    """Every VIP then eVIP, those with ``use_vmac`` on their line moved onto their per-address VMAC."""
    out = []
    for va in [*inst.vips, *inst.excluded_vips]:
        vip = vip_of(va)
        if va.use_vmac:
            vmac = per_address[(va.dev or inst.interface or "", va.address.version)]
            vip = msgspec.structs.replace(vip, dev=vmac.name)
        out.append(vip)
    return tuple(out)


def ipvlan_source(ipv: Ipvlan | None) -> IPAddress | None:
    """An IPv4 ipvlan's own address is the advert source (keepalived 2.2.7 sends from it).

    IPv6 adverts must leave from a link-local: the base's, copied onto the
    ipvlan (``kernel/vmac.py``), so the address configured there is no source.
    """
    if ipv is None or ipv.address is None or ipv.address.version != 4:
        return None
    return ipv.address.ip


def _on_vmac(
    vmac: Vmac,
    params: InstanceParams,
    vips: tuple[Vip, ...],
    excluded: tuple[Vip, ...],
    tx: Transport,
) -> tuple[InstanceParams, tuple[Vip, ...], tuple[Vip, ...], Transport]:
    """VIPs without ``dev`` go on the VMAC; adverts too unless ``vmac_xmit_base`` (docs/keepalived.md#vmac).

    ``params.interface`` stays the base: it is what link tracking watches.
    """

    def move(vs: tuple[Vip, ...]) -> tuple[Vip, ...]:
        return tuple(v if v.dev is not None else msgspec.structs.replace(v, dev=vmac.name) for v in vs)

    machine_vips = move(tuple(v for v in params.vips if isinstance(v, Vip)))
    untracked = move(tuple(v for v in params.untracked_vips if isinstance(v, Vip)))
    params = msgspec.structs.replace(params, vips=machine_vips, untracked_vips=untracked)
    if not vmac.xmit_base:
        tx = msgspec.structs.replace(tx, interface=vmac.name)
    return params, move(vips), move(excluded), tx
