"""Root handlers for the vrrp-owned root blocks, and ``finish`` for the whole-file checks.

Each root keyword keepalived's vrrp process owns has a handler here; the
per-block grammars live in ``vrrp_instance``, ``vrrp_trackers`` and ``iproute``,
and the checks keepalived runs once the whole file is read are in
``vrrp_finish``.
"""

from __future__ import annotations

from collections.abc import Callable

from shared.config.context import Context
from shared.config.host import Host
from shared.config.iproute import RulePreferences, parse_address, parse_route, parse_rule
from shared.config.model import Config
from shared.config.model_vrrp import GarpGroup, LinkbeatInterface, Origin, SyncGroup, TrackGroup, UpDownDelay
from shared.config.node import Node
from shared.config.script import set_script
from shared.config.values import BadValue, to_bool, to_timer
from shared.config.vrrp_blocks import block_end, list_lines, origin, track_interfaces, track_refs
from shared.config.vrrp_finish import finish_vrrp, resolve_refs
from shared.config.vrrp_instance import parse_vrrp_instance
from shared.config.vrrp_trackers import (
    parse_bfd_instance,
    parse_track_file,
    parse_track_process,
    parse_vrrp_script,
)

RootHandler = Callable[[Context, Node, Config], None]

# Rules without a preference are numbered downwards across the whole file.
_PREFS: dict[int, RulePreferences] = {}


def _prefs(ctx: Context) -> RulePreferences:
    return _PREFS.setdefault(id(ctx), RulePreferences())


def _instance(ctx: Context, node: Node, config: Config) -> None:
    parse_vrrp_instance(ctx, node, config, _prefs(ctx))


def _static_addresses(ctx: Context, node: Node, config: Config) -> None:
    for line in list_lines(ctx, node):
        vip = parse_address(ctx, line, static=True)
        if vip is not None:
            _track_group_known(ctx, line, config, vip.track_group)
            config.vrrp.static_addresses.append(vip)


def _static_routes(ctx: Context, node: Node, config: Config) -> None:
    for line in list_lines(ctx, node):
        route = parse_route(ctx, line, static=True)
        if route is None:
            continue
        _track_group_known(ctx, line, config, route.track_group)
        if route.dev is None and not route.no_track:
            ctx.error(
                line,
                f"cannot track route {route.destination} with no interface ('dev'): "
                "it is not tracked (add 'dev IF' or 'no_track')",
            )
        config.vrrp.static_routes.append(route)


def _static_rules(ctx: Context, node: Node, config: Config) -> None:
    for line in list_lines(ctx, node):
        rule = parse_rule(ctx, line, static=True, prefs=_prefs(ctx))
        if rule is not None:
            _track_group_known(ctx, line, config, rule.track_group)
            config.vrrp.static_rules.append(rule)


def _track_group_known(ctx: Context, line: Node, config: Config, name: str | None) -> None:
    """keepalived looks the track_group up while parsing: it must be defined earlier in the file."""
    if name is not None and name not in config.vrrp.track_groups:
        ctx.error(line, f"track_group {name} not found (it must be defined before it is used)")


def _group_members(ctx: Context, node: Node, group: SyncGroup | TrackGroup) -> None:
    for line in list_lines(ctx, node):
        for name in line.words:
            if name in group.members:
                ctx.error(line, f"{name} is listed twice in {group.name} (ignored)")
                continue
            group.members.append(name)
            if isinstance(group, SyncGroup):
                group.member_origins[name] = origin(line)


def _sync_bool(attr: str) -> Callable[[Context, Node, SyncGroup], None]:
    def handle(ctx: Context, node: Node, group: SyncGroup) -> None:
        try:
            setattr(group, attr, to_bool(node.args[0]) if node.args else True)
        except BadValue as exc:
            ctx.error(node, f"invalid value for '{node.keyword}': expected {exc}")

    return handle


def _global_tracking(ctx: Context, node: Node, group: SyncGroup) -> None:
    """Deprecated; keepalived 2.2.7 takes it as ``sync_group_tracking_weight`` (members keep weights)."""
    ctx.warning(
        node,
        f"({group.name}) global_tracking is deprecated: use track_interface/track_script/"
        "track_file on the sync group",
    )
    group.global_tracking = True
    group.sync_group_tracking_weight = True


SYNC_KEYWORDS: dict[str, Callable[[Context, Node, SyncGroup], None]] = {
    "group": _group_members,
    "track_interface": lambda ctx, node, g: track_interfaces(ctx, node, g.track_interfaces),
    "track_script": lambda ctx, node, g: track_refs(ctx, node, g.track_scripts, 253, "track_script"),
    "track_process": lambda ctx, node, g: track_refs(ctx, node, g.track_processes, 254, "track_process"),
    "track_file": lambda ctx, node, g: track_refs(ctx, node, g.track_files, 254, "track_file"),
    "track_bfd": lambda ctx, node, g: track_refs(ctx, node, g.track_bfds, 253, "track_bfd"),
    "notify_master": set_script("notify_master"),
    "notify_backup": set_script("notify_backup"),
    "notify_fault": set_script("notify_fault"),
    "notify_stop": set_script("notify_stop"),
    "notify": set_script("notify"),
    "notify_priority_changes": _sync_bool("notify_priority_changes"),
    "smtp_alert": _sync_bool("smtp_alert"),
    "global_tracking": _global_tracking,
    "sync_group_tracking_weight": _sync_bool("sync_group_tracking_weight"),
}


def _name_and_block(ctx: Context, node: Node) -> str | None:
    if not node.args:
        ctx.error(node, f"'{node.keyword}' needs a name")
        return None
    if node.children is None:
        ctx.error(node, f"'{node.keyword}' expects a block: missing '{{'")
        return None
    return node.args[0]


def _sync_group(ctx: Context, node: Node, config: Config) -> None:
    from shared.config.context import dispatch

    name = _name_and_block(ctx, node)
    if name is None:
        return
    if name in config.vrrp.sync_groups:
        ctx.error(node, f"vrrp_sync_group {name} is already defined (this one is ignored)")
        return
    group = SyncGroup(name=name, origin=origin(node))
    dispatch(ctx, node, SYNC_KEYWORDS, group)
    resolve_refs(ctx, name, group.track_scripts, config.vrrp.scripts, "track script")
    resolve_refs(ctx, name, group.track_processes, config.vrrp.track_processes, "track process")
    resolve_refs(ctx, name, group.track_files, config.vrrp.track_files, "track file")
    resolve_refs(ctx, name, group.track_bfds, config.vrrp.bfd_instances, "track bfd")
    config.vrrp.sync_groups[name] = group


TRACK_GROUP_KEYWORDS: dict[str, Callable[[Context, Node, TrackGroup], None]] = {"group": _group_members}


def _track_group(ctx: Context, node: Node, config: Config) -> None:
    name = _name_and_block(ctx, node)
    if name is None:
        return
    group = TrackGroup(name=name, origin=origin(node))
    for child in node.children or ():
        handler = TRACK_GROUP_KEYWORDS.get(child.keyword)
        if handler is None:
            ctx.warning(child, f"unknown keyword '{child.keyword}' in track_group (ignored)")
            continue
        handler(ctx, child, group)
    config.vrrp.track_groups[name] = group


def _garp_group(ctx: Context, node: Node, config: Config) -> None:
    if node.children is None:
        ctx.error(node, "'garp_group' expects a block: missing '{'")
        return
    group = GarpGroup(origin=block_end(node))
    placed: list[tuple[str, Origin]] = []
    for child in node.children:
        placed.extend(_garp_keyword(ctx, child, group))
    taken = {name for other in config.vrrp.garp_groups for name in other.interfaces}
    for name, where in placed:
        group.interface_origins.setdefault(name, where)
        if name in taken:
            ctx.diagnostics.error(where, f"interface {name} is already in another garp_group (ignored)")
            continue
        group.interfaces.append(name)
    if group.garp_interval is None and group.gna_interval is None:
        ctx.diagnostics.error(
            block_end(node), "garp_group sets neither garp_interval nor gna_interval: it is removed"
        )
        return
    config.vrrp.garp_groups.append(group)


Placed = list[tuple[str, Origin]]
"""Interfaces a garp_group line names, each with where a clash with another group is reported."""


def _garp_keyword(ctx: Context, child: Node, group: GarpGroup) -> Placed:
    """Set an interval, or return the interfaces named; unknown keywords warn."""
    handler = GARP_KEYWORDS.get(child.keyword)
    if handler is None:
        ctx.warning(child, f"unknown keyword '{child.keyword}' in garp_group (ignored)")
        return []
    return handler(ctx, child, group)


def _garp_interval(ctx: Context, child: Node, group: GarpGroup) -> Placed:
    value = ctx.value(child, lambda w: to_timer(w, 0))
    if value is not None:
        setattr(group, child.keyword, value)
    return []


def _garp_interface(ctx: Context, child: Node, group: GarpGroup) -> Placed:
    if child.args:
        return [(child.args[0], origin(child))]
    ctx.error(child, "'interface' needs an interface name")
    return []


def _garp_interfaces(ctx: Context, child: Node, group: GarpGroup) -> Placed:
    return [(line.keyword, block_end(child)) for line in list_lines(ctx, child)]


GARP_KEYWORDS: dict[str, Callable[[Context, Node, GarpGroup], Placed]] = {
    "garp_interval": _garp_interval,
    "gna_interval": _garp_interval,
    "interface": _garp_interface,
    "interfaces": _garp_interfaces,
}


def _linkbeat(ctx: Context, node: Node, config: Config) -> None:
    for line in list_lines(ctx, node):
        method: str | None = None
        if line.args:
            if line.args[0].upper() in ("MII", "ETHTOOL", "IOCTL") and len(line.args) == 1:
                method = line.args[0].upper()
            else:
                ctx.error(
                    line,
                    f"unexpected '{' '.join(line.args)}' after linkbeat interface "
                    f"{line.keyword}: expected MII, ETHTOOL or IOCTL",
                )
                continue
        config.vrrp.linkbeat_interfaces.append(
            LinkbeatInterface(name=line.keyword, method=method, origin=origin(line))
        )


def _up_down_delays(ctx: Context, node: Node, config: Config) -> None:
    for line in list_lines(ctx, node):
        if not line.args:
            ctx.error(line, f"interface {line.keyword} needs a down delay: expected IF DOWN [UP]")
            continue
        try:
            down = to_timer(line.args[0], 0, 255)
            up = to_timer(line.args[1], 0, 255) if len(line.args) > 1 else down
        except BadValue as exc:
            ctx.error(line, f"invalid up/down delay for {line.keyword}: expected {exc}")
            continue
        config.vrrp.up_down_delays[line.keyword] = UpDownDelay(
            interface=line.keyword, down=down, up=up, origin=origin(line)
        )


ROOT_HANDLERS: dict[str, RootHandler] = {
    "vrrp_instance": _instance,
    "vrrp_script": parse_vrrp_script,
    "vrrp_track_process": parse_track_process,
    "track_file": parse_track_file,
    "vrrp_track_file": parse_track_file,
    "bfd_instance": parse_bfd_instance,
    "vrrp_sync_group": _sync_group,
    "track_group": _track_group,
    "static_ipaddress": _static_addresses,
    "static_routes": _static_routes,
    "static_rules": _static_rules,
    "garp_group": _garp_group,
    "linkbeat_interfaces": _linkbeat,
    "interface_up_down_delays": _up_down_delays,
}


def finish(ctx: Context, config: Config, host: Host) -> None:
    """Cross-checks that need the whole file and the host (track_script names, interfaces)."""
    _PREFS.pop(id(ctx), None)
    finish_vrrp(ctx, config, host)
