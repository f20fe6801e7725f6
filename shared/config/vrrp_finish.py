"""Whole-file checks for the vrrp blocks: keepalived's ``vrrp_complete_instance`` and host checks.

keepalived reports most of these after parsing, without a line number; we
report them at the instance (or at the keyword concerned) so the operator
still sees where to look.  Each check also applies keepalived's correction to
the model, so the services run what keepalived would run.
"""

from __future__ import annotations

from collections.abc import Iterable

from shared.config.context import Context
from shared.config.host import Host
from shared.config.model import Config
from shared.config.model_vrrp import Origin, Route, Rule, TrackRef, VirtualAddress, VrrpInstance


def finish_vrrp(ctx: Context, config: Config, host: Host) -> None:
    strict_default = bool(getattr(config.global_defs, "vrrp_strict", False))
    version_default = int(getattr(config.global_defs, "vrrp_version", 2) or 2)
    for vi in config.vrrp.instances.values():
        if vi.strict_mode if vi.strict_mode is not None else strict_default:
            _check_strict_knobs(ctx, vi, int(getattr(config.global_defs, "vrrp_down_timer_adverts", 3)))
        _complete_instance(ctx, vi, strict_default, version_default)
        _host_checks_instance(ctx, vi, host)
    _duplicate_vrids(ctx, config)
    _shared_interface_names(ctx, config)
    _sync_groups(ctx, config)
    _host_checks_static(ctx, config, host)


def _shared_interface_names(ctx: Context, config: Config) -> None:
    """keepalived: a VMAC or ipvlan name another instance already uses is ignored ("already using")."""
    users: dict[str, str] = {}
    for vi in config.vrrp.instances.values():
        for keyword, attr in (("use_vmac", "vmac_name"), ("use_ipvlan", "ipvlan_name")):
            name = getattr(vi, attr)
            if name is None:
                continue
            if name in users:
                ctx.diagnostics.error(
                    where(vi, keyword),
                    f"({vi.name}) VRRP instance {users[name]} is already using {name}: ignored",
                )
                setattr(vi, attr, None)
                continue
            users[name] = vi.name


def where(vi: VrrpInstance, keyword: str) -> Origin:
    return vi.origins.get(keyword, vi.origin)


# --------------------------------------------------------------------------- vrrp_complete_instance


def _complete_instance(ctx: Context, vi: VrrpInstance, strict_default: bool, version_default: int) -> None:
    if vi.vrid is None:
        ctx.diagnostics.error(
            vi.origin, f"({vi.name}) virtual_router_id is required (1..255): instance unusable"
        )
    if vi.interface is None and vi.vrf is None:
        ctx.diagnostics.error(vi.origin, f"({vi.name}) no 'interface' given: keepalived needs one")
    if vi.state == "MASTER" and "priority_set" not in vi.origins:
        vi.priority = 255
    version = vi.version or version_default
    if vi.family == 6:
        version = 3
    vi.version = version
    strict = vi.strict_mode if vi.strict_mode is not None else strict_default
    _check_auth(ctx, vi, version, strict)
    _check_preempt(ctx, vi)
    _check_advert_int(ctx, vi, version)
    _check_unicast(ctx, vi)
    if strict:
        _check_strict(ctx, vi, version)
    if not vi.vips:
        ctx.diagnostics.error(vi.origin, f"({vi.name}) no virtual_ipaddress: at least one is required")
    if vi.promote_secondaries and (vi.use_vmac or vi.use_ipvlan):
        ctx.diagnostics.error(
            where(vi, "promote_secondaries"),
            f"({vi.name}) promote_secondaries is set automatically for VMACs (ignored)",
        )
    if vi.use_ipvlan and vi.family != 6 and vi.ipvlan_address is None:
        ctx.diagnostics.error(
            where(vi, "use_ipvlan"),
            f"({vi.name}) an IPv4 ipvlan needs its address (use_ipvlan [NAME] ADDR/LEN): "
            "keepalived keeps the instance in FAULT",
        )


def _check_auth(ctx: Context, vi: VrrpInstance, version: int, strict: bool) -> None:
    auth = vi.authentication
    if auth is None or auth.type is None:
        vi.authentication = None
        return
    here = where(vi, "authentication")
    if not auth.password:
        ctx.diagnostics.error(here, f"({vi.name}) authentication has auth_type but no auth_pass: ignored")
        vi.authentication = None
        return
    if version == 3:
        ctx.diagnostics.error(here, f"({vi.name}) VRRP version 3 does not support authentication: ignored")
        vi.authentication = None
        return
    if strict:
        ctx.diagnostics.error(here, f"({vi.name}) strict mode does not allow authentication: ignored")
        vi.authentication = None
        return
    if auth.type == "AH" and vi.state == "MASTER" and vi.priority != 255:
        ctx.diagnostics.error(
            where(vi, "state"),
            f"({vi.name}) initial state MASTER is incompatible with AH "
            "authentication unless priority is 255: using BACKUP",
        )
        vi.state = "BACKUP"


def _check_preempt(ctx: Context, vi: VrrpInstance) -> None:
    if vi.nopreempt and vi.priority == 255:
        ctx.diagnostics.error(
            where(vi, "nopreempt"),
            f"({vi.name}) nopreempt is incompatible with priority 255 (address owner): nopreempt cleared",
        )
        vi.nopreempt = False
    elif vi.nopreempt and vi.state == "MASTER":
        ctx.diagnostics.error(
            where(vi, "nopreempt"),
            f"({vi.name}) nopreempt does not work with initial state "
            "MASTER: nopreempt cleared (use state BACKUP)",
        )
        vi.nopreempt = False
    if vi.preempt_delay and vi.state == "MASTER":
        ctx.diagnostics.error(
            where(vi, "preempt_delay"),
            f"({vi.name}) preempt_delay does not work with initial state MASTER: cleared (use state BACKUP)",
        )
        vi.preempt_delay = 0.0


def _check_advert_int(ctx: Context, vi: VrrpInstance, version: int) -> None:
    here = where(vi, "advert_int")
    if version == 2:
        if vi.advert_int > 255:
            ctx.diagnostics.error(here, f"({vi.name}) VRRPv2 advert_int must be 1..255 seconds: using 255")
            vi.advert_int = 255.0
        elif vi.advert_int != int(vi.advert_int) or vi.advert_int < 1:
            rounded = max(1.0, float(round(vi.advert_int)))
            ctx.diagnostics.error(
                here,
                f"({vi.name}) VRRPv2 advert_int {vi.advert_int:g}s must be a whole number of "
                f"seconds: rounded to {rounded:g}",
            )
            vi.advert_int = rounded
        return
    centis = round(vi.advert_int * 100, 6)
    if centis != int(centis) or not 1 <= centis <= 4095:
        rounded = min(40.95, max(0.01, round(vi.advert_int, 2)))
        ctx.diagnostics.error(
            here,
            f"({vi.name}) VRRPv3 advert_int {vi.advert_int:g}s must be a multiple of 10ms in "
            f"0.01..40.95: using {rounded:g}",
        )
        vi.advert_int = rounded


def _check_unicast(ctx: Context, vi: VrrpInstance) -> None:
    if vi.unicast_ttl is not None and not vi.unicast_peers:
        ctx.diagnostics.error(
            vi.origins.get("__end__", vi.origin),
            f"({vi.name}) unicast_ttl needs unicast_peer entries (ignored)",
        )
        vi.unicast_ttl = None
    if not vi.unicast_peers:
        unicast = "unicast_peer" in vi.origins or "unicast_src_ip" in vi.origins
        if unicast and not vi.unicast_fault_no_peer:
            ctx.diagnostics.error(
                where(vi, "unicast_peer"),
                f"({vi.name}) unicast keywords but no unicast peers: "
                "keepalived falls back to multicast (deprecated); "
                "add peers or unicast_fault_no_peer",
            )
        return
    if vi.mcast_dst_ip is not None:
        ctx.diagnostics.error(
            where(vi, "mcast_dst_ip"), f"({vi.name}) mcast_dst_ip is meaningless with unicast peers (ignored)"
        )
        vi.mcast_dst_ip = None
    _check_unicast_vmac(ctx, vi)


def _check_unicast_vmac(ctx: Context, vi: VrrpInstance) -> None:
    """keepalived's end of an instance: a VMAC or ipvlan with unicast needs an interface and xmit_base."""
    if not (vi.use_vmac or vi.use_ipvlan):
        return
    end = vi.origins.get("__end__", vi.origin)
    if vi.interface is None:
        ctx.diagnostics.error(
            end, f"({vi.name}) cannot use a VMAC or ipvlan with unicast and no interface: cleared"
        )
        vi.use_vmac = vi.use_ipvlan = False
    elif not vi.vmac_xmit_base:
        what = "use_vmac" if vi.use_vmac else "use_ipvlan (where vmac_xmit_base is not valid either)"
        ctx.diagnostics.error(end, f"({vi.name}) unicast with {what} requires vmac_xmit_base: set")
        vi.vmac_xmit_base = True


def _check_strict(ctx: Context, vi: VrrpInstance, version: int) -> None:
    if (vi.state == "MASTER") != (vi.priority == 255):
        ctx.diagnostics.error(
            where(vi, "state"),
            f"({vi.name}) strict mode: state MASTER requires priority 255 (address owner) and vice versa",
        )
        vi.state = "MASTER" if vi.priority == 255 else "BACKUP"
    if vi.preempt_delay:
        ctx.diagnostics.error(
            where(vi, "preempt_delay"), f"({vi.name}) preempt_delay is incompatible with strict mode: cleared"
        )
        vi.preempt_delay = 0.0
    if vi.accept and version == 2 and vi.priority != 255:
        ctx.diagnostics.error(
            where(vi, "accept"),
            f"({vi.name}) accept mode with VRRPv2 does not comply with RFC 3768 in strict mode: cleared",
        )
        vi.accept = False


def _check_strict_knobs(ctx: Context, vi: VrrpInstance, global_down_timer_adverts: int) -> None:
    """Strict mode's other refusals, each reported (and corrected) as ``keepalived -t`` 2.2.7 does.

    Run before ``_complete_instance`` forces IPv6 to version 3, so an explicit
    ``version 2`` on an IPv6 instance is still visible.  Globals that strict
    mode overrides silently in 2.2.7 (``vrrp_garp_lower_prio_*``,
    ``vrrp_lower_prio_no_advert``, ``vrrp_higher_prio_send_advert``) are not
    reported; ``services/vrrp/core/params.py`` forces them.
    """
    name = vi.name
    explicit_down = "down_timer_adverts" in vi.origins
    if (vi.down_timer_adverts if explicit_down else global_down_timer_adverts) != 3:
        ctx.diagnostics.error(
            where(vi, "down_timer_adverts"),
            f"({name}) down_timer_adverts is incompatible with strict mode: using 3",
        )
        vi.down_timer_adverts = 3
    for keyword in ("garp_lower_prio_repeat", "garp_lower_prio_delay"):
        if getattr(vi, keyword):
            ctx.diagnostics.error(
                where(vi, keyword),
                f"({name}) strict mode sends no GARPs after lower priority adverts: {keyword} 0",
            )
            setattr(vi, keyword, 0)
    if vi.lower_prio_no_advert is False:
        ctx.diagnostics.error(
            where(vi, "lower_prio_no_advert"), f"({name}) strict mode requires lower_prio_no_advert: set"
        )
        vi.lower_prio_no_advert = True
    if vi.higher_prio_send_advert:
        ctx.diagnostics.error(
            where(vi, "higher_prio_send_advert"),
            f"({name}) strict mode requires higher_prio_send_advert to be clear: cleared",
        )
        vi.higher_prio_send_advert = False
    _check_strict_vmac(ctx, vi)
    _check_strict_ipv6(ctx, vi)


def _check_strict_vmac(ctx: Context, vi: VrrpInstance) -> None:
    if vi.vmac_mac is not None:
        ctx.diagnostics.error(
            where(vi, "use_vmac"), f"({vi.name}) strict mode does not allow a VMAC MAC address: cleared"
        )
        vi.vmac_mac = None
    if vi.vmac_xmit_base:
        ctx.diagnostics.error(
            where(vi, "vmac_xmit_base"),
            f"({vi.name}) vmac_xmit_base is incompatible with strict mode: cleared",
        )
        vi.vmac_xmit_base = False


def _check_strict_ipv6(ctx: Context, vi: VrrpInstance) -> None:
    if vi.family != 6:
        return
    if vi.version == 2:
        ctx.diagnostics.error(
            where(vi, "version"), f"({vi.name}) strict mode: IPv6 cannot use VRRP version 2: using 3"
        )
    first = next((v for v in vi.vips if v.address.version == 6), None)
    if first is not None and not first.address.ip.is_link_local:
        ctx.diagnostics.error(
            first.origin, f"({vi.name}) strict mode: the first IPv6 virtual address must be link-local"
        )


# --------------------------------------------------------------------------- VRID collisions


def _duplicate_vrids(ctx: Context, config: Config) -> None:
    seen: dict[tuple[str, int, int, str, frozenset[str]], VrrpInstance] = {}
    for vi in config.vrrp.instances.values():
        if vi.vrid is None or vi.interface is None:
            continue
        dest = str(vi.mcast_dst_ip) if vi.mcast_dst_ip else ""
        peers = frozenset(str(p.address) for p in vi.unicast_peers)
        key = (vi.interface, vi.family or 4, vi.vrid, dest, frozenset[str]())
        if peers:
            clash = next((other for k, other in seen.items() if k[:3] == key[:3] and k[4] & peers), None)
            key = (vi.interface, vi.family or 4, vi.vrid, "unicast", peers)
        else:
            clash = seen.get(key)
        if clash is not None:
            ctx.diagnostics.error(
                where(vi, "virtual_router_id"),
                f"{clash.name} and {vi.name} both use VRID {vi.vrid} with IPv{vi.family or 4} on "
                f"interface {vi.interface}",
            )
            continue
        seen[key] = vi


# --------------------------------------------------------------------------- sync groups


def _sync_groups(ctx: Context, config: Config) -> None:
    owner: dict[str, str] = {}
    for group in list(config.vrrp.sync_groups.values()):
        members: list[str] = []
        for name in group.members:
            here = group.member_origins.get(name, group.origin)
            if name not in config.vrrp.instances:
                ctx.diagnostics.error(
                    here, f"vrrp_instance {name} in sync group {group.name} does not exist (ignored)"
                )
            elif name in owner:
                ctx.diagnostics.error(
                    here,
                    f"vrrp_instance {name} is already in sync group {owner[name]}: ignored in {group.name}",
                )
            else:
                members.append(name)
        group.members = members
        if not members:
            ctx.diagnostics.error(group.origin, f"sync group {group.name} has no vrrp instances: removed")
            del config.vrrp.sync_groups[group.name]
            continue
        if len(members) == 1:
            ctx.diagnostics.error(
                group.origin, f"sync group {group.name} has only 1 vrrp instance: probably not what you want"
            )
        for name in members:
            owner[name] = group.name
            _member_tracking(
                ctx, config.vrrp.instances[name], group.name, {t.name for t in group.track_interfaces}
            )


def _member_tracking(ctx: Context, vi: VrrpInstance, group: str, group_ifs: set[str]) -> None:
    vi.sync_group = group
    for tracked in vi.track_interfaces:
        if tracked.name in group_ifs:
            ctx.diagnostics.error(
                tracked.origin,
                f"({vi.name}) track_interface {tracked.name} is configured on both "
                f"the instance and sync group {group}: remove one",
            )


# --------------------------------------------------------------------------- the host


def _missing(host: Host, name: str | None) -> bool:
    return name is not None and not host.has_interface(name)


def _host_checks_instance(ctx: Context, vi: VrrpInstance, host: Host) -> None:
    if _missing(host, vi.interface):
        ctx.diagnostics.error(
            where(vi, "interface"),
            f"interface {vi.interface} for vrrp_instance {vi.name} does not exist on this host",
        )
    for tracked in vi.track_interfaces:
        if _missing(host, tracked.name):
            ctx.diagnostics.error(
                tracked.origin, f"({vi.name}) tracked interface {tracked.name} does not exist on this host"
            )
    _check_addresses(ctx, host, [*vi.vips, *vi.excluded_vips])
    _check_routes(ctx, host, vi.routes)
    _check_rules(ctx, host, vi.rules)


def _check_addresses(ctx: Context, host: Host, addresses: Iterable[VirtualAddress]) -> None:
    for vip in addresses:
        if _missing(host, vip.dev):
            ctx.diagnostics.error(
                vip.origin, f"interface {vip.dev} for address {vip.address} does not exist on this host"
            )


def _check_routes(ctx: Context, host: Host, routes: Iterable[Route]) -> None:
    for route in routes:
        devs = [route.dev, *(hop.dev for hop in route.nexthops)]
        for dev in devs:
            if _missing(host, dev):
                ctx.diagnostics.error(
                    route.origin, f"interface {dev} for route {route.destination} does not exist on this host"
                )


def _check_rules(ctx: Context, host: Host, rules: Iterable[Rule]) -> None:
    for rule in rules:
        for dev in (rule.iif, rule.oif):
            if _missing(host, dev):
                ctx.diagnostics.error(rule.origin, f"interface {dev} for rule does not exist on this host")


def _host_checks_static(ctx: Context, config: Config, host: Host) -> None:
    vrrp = config.vrrp
    _check_addresses(ctx, host, vrrp.static_addresses)
    _check_routes(ctx, host, vrrp.static_routes)
    _check_rules(ctx, host, vrrp.static_rules)
    for group in vrrp.garp_groups:
        for name, here in group.interface_origins.items():
            if _missing(host, name):
                ctx.diagnostics.error(here, f"interface {name} in garp_group does not exist on this host")
    for beat in vrrp.linkbeat_interfaces:
        if _missing(host, beat.name):
            ctx.diagnostics.error(beat.origin, f"linkbeat interface {beat.name} does not exist on this host")
    for delay in vrrp.up_down_delays.values():
        if _missing(host, delay.interface):
            ctx.diagnostics.error(
                delay.origin,
                f"interface {delay.interface} in interface_up_down_delays does not exist on this host",
            )


def resolve_refs(ctx: Context, owner: str, refs: list[TrackRef], known: Iterable[str], what: str) -> None:
    """Drop references to trackers not defined (yet): keepalived resolves them while parsing."""
    names = set(known)
    kept = []
    for ref in refs:
        if ref.name in names:
            kept.append(ref)
        else:
            ctx.diagnostics.error(
                ref.origin,
                f"({owner}) {what} {ref.name} not found (it must be defined before it is used): ignored",
            )
    refs[:] = kept
