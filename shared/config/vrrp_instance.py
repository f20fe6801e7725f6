"""``vrrp_instance NAME { ... }``: every keyword of keepalived 2.2's instance block.

Per-keyword checks (ranges, syntax) happen here, at the keyword's line, as
keepalived does them while parsing; whole-instance rules (state MASTER vs AH,
strict mode, VRID required...) are in ``vrrp_finish``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from shared.config.context import Context, Handler, dispatch, require_block, set_flag
from shared.config.iproute import RulePreferences, parse_address, parse_route, parse_rule
from shared.config.model import Config
from shared.config.model_vrrp import Authentication, UnicastPeer, VirtualAddress, VrrpInstance
from shared.config.node import Node
from shared.config.script import parse_script, set_script
from shared.config.values import BadValue, to_bool, to_int, to_ip, to_timer
from shared.config.vrrp_blocks import block_end, list_lines, origin, track_interfaces, track_refs
from shared.config.vrrp_finish import resolve_refs

# Keywords keepalived 2.2.7 does not know (added in 2.2.8 / 2.3.x): parsed for the
# model, but reported as keepalived 2.2.7 reports them, so `config check` agrees.
NEWER_THAN_227 = frozenset(
    {"timer_expired_backup", "v3_checksum_as_v2", "owner_ignore_adverts", "no_virtual_ipaddress"}
)


def _state(ctx: Context, node: Node, vi: VrrpInstance) -> None:
    word = node.args[0] if node.args else ""
    if word in ("MASTER", "BACKUP"):
        vi.state = word
        return
    ctx.error(node, f"({vi.name}) unknown state '{word}': expected MASTER or BACKUP (using BACKUP)")
    vi.state = "BACKUP"


def _interface(ctx: Context, node: Node, vi: VrrpInstance) -> None:
    if not node.args:
        ctx.error(node, f"({vi.name}) 'interface' needs an interface name")
        return
    if vi.vrf is not None:
        ctx.error(node, f"({vi.name}) cannot specify both a VRF and an interface: interface ignored")
        return
    vi.interface = node.args[0]


def _vrf(ctx: Context, node: Node, vi: VrrpInstance) -> None:
    if not node.args:
        ctx.error(node, f"({vi.name}) 'vrf' needs a VRF interface name")
        return
    if vi.interface is not None:
        ctx.error(node, f"({vi.name}) cannot specify both a VRF and an interface: vrf ignored")
        return
    vi.vrf = node.args[0]


def _or_ignored(attr: str, convert: Callable[[str], object], what: str) -> Handler:
    """A keyword whose bad value keepalived reports (naming the instance) and ignores, keeping the default."""

    def handle(ctx: Context, node: Node, vi: VrrpInstance) -> None:
        try:
            value = convert(node.args[0] if node.args else "")
        except BadValue as exc:
            ctx.error(node, f"({vi.name}) invalid {what}: expected {exc} (ignored)")
            return
        setattr(vi, attr, value)

    return handle


def _ranged(attr: str, lo: int, hi: int, what: str) -> Handler:
    return _or_ignored(attr, lambda w: to_int(w, lo, hi), what)


def _priority(ctx: Context, node: Node, vi: VrrpInstance) -> None:
    try:
        vi.priority = to_int(node.args[0] if node.args else "", 1, 255)
    except BadValue as exc:
        ctx.error(node, f"({vi.name}) invalid priority: expected {exc} (using 100)")
        vi.priority = 100
    vi.origins["priority_set"] = origin(node)


def _timer(attr: str, lo: float, hi: float | None, what: str) -> Handler:
    return _or_ignored(attr, lambda w: to_timer(w, lo, hi), what)


def _advert_int(ctx: Context, node: Node, vi: VrrpInstance) -> None:
    try:
        value = to_timer(node.args[0] if node.args else "", 0)
    except BadValue as exc:
        ctx.error(node, f"({vi.name}) invalid advert_int: expected {exc} (ignored)")
        return
    if value <= 0:
        ctx.error(node, f"({vi.name}) advert_int must be greater than 0 (ignored)")
        return
    vi.advert_int = value


def _authentication(ctx: Context, node: Node, vi: VrrpInstance) -> None:
    """Unknown keywords here are errors, not warnings: keepalived drops the block's line and fails ``-t``."""
    if not require_block(ctx, node):
        return
    vi.authentication = vi.authentication or Authentication()
    for child in node.children or ():
        handler = AUTH_KEYWORDS.get(child.keyword)
        if handler is None:
            ctx.error(child, f"unknown keyword '{child.keyword}' in authentication (ignored)")
            continue
        handler(ctx, child, vi)


def _auth_type(ctx: Context, node: Node, vi: VrrpInstance) -> None:
    assert vi.authentication is not None
    kind = node.args[0] if node.args else ""
    if kind in ("PASS", "AH"):
        vi.authentication.type = kind
    else:
        ctx.error(node, f"({vi.name}) unknown auth_type '{kind}': expected PASS or AH")


def _auth_password(ctx: Context, node: Node, vi: VrrpInstance) -> None:
    assert vi.authentication is not None
    vi.authentication.password = _auth_pass(ctx, node)


def _auth_pass(ctx: Context, node: Node) -> bytes:
    if not node.args:
        ctx.error(node, "'auth_pass' needs a password")
        return b""
    password = node.args[0].encode()
    if len(password) > 8:
        ctx.error(node, "auth_pass is longer than 8 characters: only the first 8 are used")
        password = password[:8]
    return password


AUTH_KEYWORDS: dict[str, Handler] = {"auth_type": _auth_type, "auth_pass": _auth_password}


def _addresses(attr: str) -> Handler:
    def handle(ctx: Context, node: Node, vi: VrrpInstance) -> None:
        items: list[VirtualAddress] = getattr(vi, attr)
        for line in list_lines(ctx, node):
            vip = parse_address(ctx, line, static=False)
            if vip is None:
                continue
            if attr == "vips" and not _family_fits(ctx, line, vi, vip):
                continue
            items.append(vip)

    return handle


def _family_fits(ctx: Context, node: Node, vi: VrrpInstance, vip: VirtualAddress) -> bool:
    """All VIPs of an instance share the family of the first (eVIPs may mix)."""
    version = vip.address.version
    if vi.family is None:
        if vi.native_ipv6 and version == 4:
            ctx.error(node, f"({vi.name}) native_ipv6 instances cannot have IPv4 addresses")
            return False
        vi.family = version
        return True
    if vi.family != version:
        ctx.error(
            node,
            f"({vi.name}) address {vip.address} is IPv{version} but the instance is "
            f"IPv{vi.family}: all virtual_ipaddress entries must share one family (ignored); "
            "use virtual_ipaddress_excluded for the other family",
        )
        return False
    return True


def _routes(ctx: Context, node: Node, vi: VrrpInstance) -> None:
    for line in list_lines(ctx, node):
        route = parse_route(ctx, line, static=False)
        if route is None:
            continue
        if route.dev is None and not route.no_track:
            ctx.error(
                line,
                f"cannot track route {route.destination} with no interface ('dev'): "
                "it is not tracked (add 'dev IF' or 'no_track')",
            )
        vi.routes.append(route)


def _rules_for(prefs: RulePreferences) -> Handler:
    def handle(ctx: Context, node: Node, vi: VrrpInstance) -> None:
        for line in list_lines(ctx, node):
            rule = parse_rule(ctx, line, static=False, prefs=prefs)
            if rule is not None:
                vi.rules.append(rule)

    return handle


def _unicast_peer(ctx: Context, node: Node, vi: VrrpInstance) -> None:
    for line in list_lines(ctx, node):
        try:
            address = to_ip(line.keyword)
        except BadValue:
            ctx.error(line, f"({vi.name}) invalid unicast peer address '{line.keyword}' (skipped)")
            continue
        if not _family_of(vi, address.version):
            ctx.error(
                line,
                f"({vi.name}) unicast peer {address} is IPv{address.version} but the instance is "
                f"IPv{vi.family}: skipped",
            )
            continue
        peer = UnicastPeer(address=address, origin=origin(line))
        _peer_ttls(ctx, line, peer)
        vi.unicast_peers.append(peer)


def _family_of(vi: VrrpInstance, version: int) -> bool:
    """The first address that says (peer, source address, VIP) fixes the instance's family."""
    if vi.family is None:
        vi.family = version
    return vi.family == version


def _peer_ttls(ctx: Context, line: Node, peer: UnicastPeer) -> None:
    args = list(line.args)
    while args:
        key = args.pop(0)
        if key not in ("min_ttl", "max_ttl") or not args:
            ctx.error(line, f"unknown unicast_peer option '{key}': expected min_ttl N / max_ttl N")
            continue
        try:
            setattr(peer, key, to_int(args.pop(0), 0, 255))
        except BadValue as exc:
            ctx.error(line, f"invalid {key}: expected {exc}")


def _ip(attr: str, multicast: bool = False) -> Handler:
    def handle(ctx: Context, node: Node, vi: VrrpInstance) -> None:
        value = ctx.value(node, to_ip)
        if value is None:
            return
        if attr == "unicast_src_ip":
            _family_of(vi, value.version)
        if multicast and not value.is_multicast:
            ctx.error(node, f"({vi.name}) {node.keyword} {value} is not a multicast address (ignored)")
            return
        setattr(vi, attr, value)

    return handle


def _notify_deleted(ctx: Context, node: Node, vi: VrrpInstance) -> None:
    vi.notify_deleted_set = True
    if node.args:
        vi.notify_deleted = parse_script(ctx, node)


def _use_vmac(ctx: Context, node: Node, vi: VrrpInstance) -> None:
    vi.use_vmac = True
    for word in node.args:
        if _looks_like_mac(word):
            vi.vmac_mac = word
        else:
            vi.vmac_name = word


def _looks_like_mac(word: str) -> bool:
    parts = word.split(":")
    return len(parts) in (5, 6) and all(
        len(p) <= 2 and all(c in "0123456789abcdefABCDEF" for c in p) for p in parts
    )


IPVLAN_MODES = ("bridge", "private", "vepa")
IFNAMSIZ = 16


def _use_ipvlan(ctx: Context, node: Node, vi: VrrpInstance) -> None:
    """``use_ipvlan [NAME] [ADDR/LEN] [bridge|private|vepa]``: each part once, as keepalived checks it."""
    if vi.use_ipvlan:
        ctx.error(node, f"({vi.name}) use_ipvlan already specified (ignored)")
        return
    vi.use_ipvlan = True
    for word in node.args:
        if word in IPVLAN_MODES:
            _ipvlan_mode(ctx, node, vi, word)
            continue
        try:
            address = ipaddress.ip_interface(word)
        except ValueError:
            _ipvlan_name(ctx, node, vi, word)
            continue
        _ipvlan_address(ctx, node, vi, address)


def _ipvlan_mode(ctx: Context, node: Node, vi: VrrpInstance, word: str) -> None:
    if vi.ipvlan_mode is not None:
        ctx.error(node, f"({vi.name}) ipvlan type already specified: '{word}' ignored")
        return
    vi.ipvlan_mode = word


def _ipvlan_address(
    ctx: Context, node: Node, vi: VrrpInstance, address: ipaddress.IPv4Interface | ipaddress.IPv6Interface
) -> None:
    if vi.ipvlan_address is not None:
        ctx.error(node, f"({vi.name}) ipvlan address already specified: '{address}' ignored")
    elif not _family_of(vi, address.version):
        ctx.error(node, f"({vi.name}) ipvlan address {address} is not of the instance's family: skipped")
    else:
        vi.ipvlan_address = address


def _ipvlan_name(ctx: Context, node: Node, vi: VrrpInstance, word: str) -> None:
    if vi.ipvlan_name is not None:
        ctx.error(node, f"({vi.name}) ipvlan interface already specified: '{word}' ignored")
    elif len(word) >= IFNAMSIZ:
        ctx.error(
            node, f"({vi.name}) ipvlan interface name '{word}' is too long (at most 15 characters): ignored"
        )
    else:
        vi.ipvlan_name = word


def _native_ipv6(ctx: Context, node: Node, vi: VrrpInstance) -> None:
    if vi.family == 4:
        ctx.error(node, f"({vi.name}) native_ipv6 cannot be used with IPv4 addresses")
        return
    vi.native_ipv6 = True
    vi.family = 6


def _version(ctx: Context, node: Node, vi: VrrpInstance) -> None:
    try:
        vi.version = to_int(node.args[0] if node.args else "", 2, 3)
    except BadValue as exc:
        ctx.error(node, f"({vi.name}) invalid version: expected {exc} (ignored)")


def _bool_opt(attr: str) -> Handler:
    """``KEYWORD [<BOOL>]``: bare means true."""

    def handle(ctx: Context, node: Node, vi: object) -> None:
        if not node.args:
            setattr(vi, attr, True)
            return
        try:
            setattr(vi, attr, to_bool(node.args[0]))
        except BadValue as exc:
            ctx.error(node, f"invalid value for '{node.keyword}': expected {exc}")

    return handle


def _old_unicast_checksum(ctx: Context, node: Node, vi: VrrpInstance) -> None:
    if node.args and node.args[0] != "never":
        ctx.error(node, f"'old_unicast_checksum' takes only 'never', got '{node.args[0]}'")
        return
    vi.old_unicast_checksum = "never" if node.args else "auto"


def _garp_extra_if(ctx: Context, node: Node, vi: VrrpInstance) -> None:
    args = list(node.args)
    if args and args[0] == "all":
        vi.garp_extra_if_all = True
        args.pop(0)
    try:
        vi.garp_extra_if = to_timer(args[0] if args else "", 0, 86400)
    except BadValue as exc:
        ctx.error(node, f"({vi.name}) invalid garp_extra_if: expected {exc} (ignored)")


def _vmac_garp_intvl(ctx: Context, node: Node, vi: VrrpInstance) -> None:
    """keepalived 2.2.7's deprecated spelling of ``garp_extra_if``: a warning, then the same meaning."""
    ctx.warning(node, f"({vi.name}) keyword 'vmac_garp_intvl' is deprecated - please use 'garp_extra_if'")
    _garp_extra_if(ctx, node, vi)


def _lvs_sync_daemon_interface(ctx: Context, node: Node, vi: VrrpInstance) -> None:
    ctx.warning(
        node,
        f"({vi.name}) lvs_sync_daemon_interface in a vrrp_instance is deprecated: "
        "use global_defs lvs_sync_daemon",
    )
    vi.lvs_sync_daemon_interface = node.args[0] if node.args else None


def _linkbeat_use_polling(ctx: Context, node: Node, vi: VrrpInstance) -> None:
    ctx.warning(
        node,
        f"({vi.name}) linkbeat_use_polling in a vrrp_instance is deprecated: use a linkbeat_interfaces block",
    )
    vi.linkbeat_use_polling = True


def _nopreempt(ctx: Context, node: Node, vi: VrrpInstance) -> None:
    vi.nopreempt = True


def _preempt(ctx: Context, node: Node, vi: VrrpInstance) -> None:
    """``preempt``: a no-op kept for old configs; preemption is the default."""


def _tracks(attr: str, limit: int, what: str) -> Handler:
    def handle(ctx: Context, node: Node, vi: object) -> None:
        track_refs(ctx, node, getattr(vi, attr), limit, what)

    return handle


def _track_interface(ctx: Context, node: Node, vi: object) -> None:
    track_interfaces(ctx, node, vi.track_interfaces)  # type: ignore[attr-defined]


def _newer(inner: Handler) -> Handler:
    """A keyword of keepalived 2.2.8+: 2.2.7's verdict here; what lifeline does is its compat line's."""

    def handle(ctx: Context, node: Node, vi: VrrpInstance) -> None:
        ctx.warning(
            node, f"'{node.keyword}' is not known to keepalived 2.2.7 (it ignores it as an unknown keyword)"
        )
        inner(ctx, node, vi)

    return handle


def instance_keywords(prefs: RulePreferences) -> dict[str, Handler]:
    table: dict[str, Handler] = {
        "state": _state,
        "interface": _interface,
        "vrf": _vrf,
        "virtual_router_id": _ranged("vrid", 1, 255, "virtual_router_id"),
        "priority": _priority,
        "advert_int": _advert_int,
        "version": _version,
        "authentication": _authentication,
        "virtual_ipaddress": _addresses("vips"),
        "virtual_ipaddress_excluded": _addresses("excluded_vips"),
        "virtual_routes": _routes,
        "virtual_rules": _rules_for(prefs),
        "track_interface": _track_interface,
        "track_script": _tracks("track_scripts", 253, "track_script"),
        "track_process": _tracks("track_processes", 254, "track_process"),
        "track_file": _tracks("track_files", 254, "track_file"),
        "track_bfd": _tracks("track_bfds", 253, "track_bfd"),
        "track_src_ip": set_flag("track_src_ip"),
        "dont_track_primary": set_flag("dont_track_primary"),
        "linkbeat_use_polling": _linkbeat_use_polling,
        "unicast_src_ip": _ip("unicast_src_ip"),
        "mcast_src_ip": _ip("mcast_src_ip"),
        "mcast_dst_ip": _ip("mcast_dst_ip", multicast=True),
        "unicast_peer": _unicast_peer,
        "unicast_ttl": _ranged("unicast_ttl", 0, 255, "unicast_ttl"),
        "check_unicast_src": set_flag("check_unicast_src"),
        "unicast_fault_no_peer": set_flag("unicast_fault_no_peer"),
        "old_unicast_checksum": _old_unicast_checksum,
        "use_vmac": _use_vmac,
        "vmac_xmit_base": set_flag("vmac_xmit_base"),
        "use_vmac_addr": set_flag("use_vmac_addr"),
        "use_ipvlan": _use_ipvlan,
        "native_ipv6": _native_ipv6,
        "kernel_rx_buf_size": _ranged("kernel_rx_buf_size", 0, 2**31 - 1, "kernel_rx_buf_size"),
        "nopreempt": _nopreempt,
        "preempt": _preempt,
        "preempt_delay": _timer("preempt_delay", 0, 1000, "preempt_delay"),
        "accept": lambda ctx, node, vi: setattr(vi, "accept", True),
        "no_accept": lambda ctx, node, vi: setattr(vi, "accept", False),
        "strict_mode": _bool_opt("strict_mode"),
        "skip_check_adv_addr": _bool_opt("skip_check_adv_addr"),
        "lower_prio_no_advert": _bool_opt("lower_prio_no_advert"),
        "higher_prio_send_advert": _bool_opt("higher_prio_send_advert"),
        "down_timer_adverts": _ranged("down_timer_adverts", 1, 100, "down_timer_adverts"),
        "promote_secondaries": set_flag("promote_secondaries"),
        "debug": _ranged("debug", 0, 4, "debug level"),
        "garp_master_delay": _timer("garp_master_delay", 0, None, "garp_master_delay"),
        "garp_master_repeat": _ranged("garp_master_repeat", 0, 2**31 - 1, "garp_master_repeat"),
        "garp_lower_prio_delay": _timer("garp_lower_prio_delay", 0, None, "garp_lower_prio_delay"),
        "garp_lower_prio_repeat": _ranged("garp_lower_prio_repeat", 0, 2**31 - 1, "garp_lower_prio_repeat"),
        "garp_master_refresh": _timer("garp_master_refresh", 0, None, "garp_master_refresh"),
        "garp_master_refresh_repeat": _ranged(
            "garp_master_refresh_repeat", 0, 2**31 - 1, "garp_master_refresh_repeat"
        ),
        "garp_extra_if": _garp_extra_if,
        "vmac_garp_intvl": _vmac_garp_intvl,
        "notify_master": set_script("notify_master"),
        "notify_backup": set_script("notify_backup"),
        "notify_fault": set_script("notify_fault"),
        "notify_stop": set_script("notify_stop"),
        "notify": set_script("notify"),
        "notify_deleted": _notify_deleted,
        "notify_master_rx_lower_pri": set_script("notify_master_rx_lower_pri"),
        "notify_priority_changes": _bool_opt("notify_priority_changes"),
        "smtp_alert": _bool_opt("smtp_alert"),
        "lvs_sync_daemon_interface": _lvs_sync_daemon_interface,
        "timer_expired_backup": _newer(set_flag("timer_expired_backup")),
        "v3_checksum_as_v2": _newer(_bool_opt("v3_checksum_as_v2")),
        "owner_ignore_adverts": _newer(_bool_opt("owner_ignore_adverts")),
        "no_virtual_ipaddress": _newer(set_flag("no_virtual_ipaddress")),
    }
    return {key: _recording(key, handler) for key, handler in table.items()}


def _recording(key: str, handler: Handler) -> Handler:
    """Remember where each keyword was set, for checks that run after the block (``finish``)."""

    def handle(ctx: Context, node: Node, vi: VrrpInstance) -> None:
        vi.origins[key] = origin(node)
        handler(ctx, node, vi)

    return handle


def parse_vrrp_instance(ctx: Context, node: Node, config: Config, prefs: RulePreferences) -> None:
    if not node.args:
        ctx.error(node, "'vrrp_instance' needs a name")
        return
    name = node.args[0]
    if not require_block(ctx, node):
        return
    if name in config.vrrp.instances:
        ctx.error(node, f"vrrp_instance {name} is already defined (this one is ignored)")
        return
    vi = VrrpInstance(name=name, origin=origin(node))
    dispatch(ctx, node, instance_keywords(prefs), vi)
    vi.origins["__end__"] = block_end(node)
    resolve_refs(ctx, name, vi.track_scripts, config.vrrp.scripts, "track script")
    resolve_refs(ctx, name, vi.track_processes, config.vrrp.track_processes, "track process")
    resolve_refs(ctx, name, vi.track_files, config.vrrp.track_files, "track file")
    resolve_refs(ctx, name, vi.track_bfds, config.vrrp.bfd_instances, "track bfd")
    config.vrrp.instances[name] = vi
