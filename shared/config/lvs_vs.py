"""``virtual_server`` and its ``real_server`` blocks: keywords, value rules, keepalived's messages.

Problems keepalived finds while reading a line are reported here at that line;
problems that need the whole block or file (missing protocol, quorum above the
total weight, duplicated real servers) are left to ``lvs_finish``.
"""

from __future__ import annotations

import ipaddress

from shared.config import check_http, check_kinds  # noqa: F401  (registers checker kinds)
from shared.config.check_common import KINDS, parse_checker
from shared.config.context import (
    Context,
    Handler,
    dispatch,
    require_block,
    set_bare_flag,
    set_flag,
    set_str,
    set_with,
)
from shared.config.lvs_common import (
    MAX_U32,
    MAX_WEIGHT,
    TIMING_HANDLERS,
    end_of,
    set_method,
    to_address_port,
    to_u32,
    where,
)
from shared.config.model import Config
from shared.config.model_lvs import (
    DEFAULT_PERSISTENCE_TIMEOUT,
    SCHEDULERS,
    RealServer,
    SorryServer,
    VirtualServer,
)
from shared.config.node import Node
from shared.config.script import set_script
from shared.config.values import BadValue, to_int

MAX_PERSISTENCE = 2678400
SH_MH_FLAGS = ("sh-port", "sh-fallback", "mh-port", "mh-fallback")
OTHER_FLAGS = ("flag-1", "flag-2", "flag-3", "hashed")


def _vs(target: object) -> VirtualServer:
    assert isinstance(target, VirtualServer)
    return target


def _lb_algo(ctx: Context, node: Node, target: object) -> None:
    """Scheduler names are case-sensitive in keepalived ('RR' is refused)."""
    word = node.args[0] if node.args else ""
    if word not in SCHEDULERS:
        ctx.error(node, f"invalid scheduler '{word}': expected one of {'|'.join(SCHEDULERS)}")
        return
    _vs(target).lb_algo = word


def _protocol(ctx: Context, node: Node, target: object) -> None:
    word = node.args[0].upper() if node.args else ""
    if word not in ("TCP", "UDP", "SCTP"):
        ctx.error(node, f"unknown protocol '{node.args[0] if node.args else ''}': expected TCP, UDP or SCTP")
        return
    _vs(target).protocol = word  # type: ignore[assignment]


def _persistence_timeout(ctx: Context, node: Node, target: object) -> None:
    """A bare keyword means keepalived's 360 s."""
    if not node.args:
        _vs(target).persistence_timeout = DEFAULT_PERSISTENCE_TIMEOUT
        return
    value = ctx.value(node, lambda w: to_int(w, 1, MAX_PERSISTENCE))
    if value is not None:
        _vs(target).persistence_timeout = value


def to_granularity(word: str) -> str:
    """An IPv4 netmask, or an IPv6 prefix length."""
    if word.isdigit() and 1 <= int(word) <= 128:
        return word
    try:
        ipaddress.IPv4Address(word)
    except ValueError:
        raise BadValue(f"an IPv4 netmask or an IPv6 prefix length, got '{word}'") from None
    return word


def _sched_flag(ctx: Context, node: Node, target: object) -> None:
    """sh-/mh- flags only mean something to the scheduler already chosen above them.

    ``hashed`` is no flag at all in 2.2.7's ``lbflags_handler``: it falls to the
    scheduler-specific branch, where sh and mh ignore it silently and any other
    scheduler reports "hashed only applies to sh scheduler" (``keepalived -t``
    exits 5).  The kernel marks every service it holds HASHED by itself.
    """
    vs = _vs(target)
    if node.keyword == "hashed" and vs.lb_algo not in ("sh", "mh"):
        ctx.error(node, "'hashed' only applies to the sh scheduler - ignoring")
        return
    if node.keyword in SH_MH_FLAGS and vs.lb_algo not in ("sh", "mh"):
        ctx.error(node, f"'{node.keyword}' only applies to the sh and mh schedulers - ignoring")
        return
    if node.keyword not in vs.sched_flags:
        vs.sched_flags.append(node.keyword)


def _sorry_server(ctx: Context, node: Node, target: object) -> None:
    parsed = to_address_port(ctx, node, node.args, "sorry server")
    if parsed is not None:
        _vs(target).sorry_server = SorryServer(address=parsed[0], port=parsed[1] or None, where=where(node))


def _sorry_method(ctx: Context, node: Node, target: object) -> None:
    if _vs(target).sorry_server is None:
        ctx.error(node, "'sorry_server_lvs_method' used without a sorry_server above it")
        return
    set_method("sorry_server_lvs_method")(ctx, node, target)


def _ip_family(ctx: Context, node: Node, target: object) -> None:
    word = node.args[0] if node.args else ""
    if word not in ("inet", "inet6"):
        ctx.error(node, f"unknown address family '{word}': expected inet or inet6")
        return
    _vs(target).ip_family = word  # type: ignore[assignment]


def _real_server(ctx: Context, node: Node, target: object) -> None:
    parsed = to_address_port(ctx, node, node.args, "real server")
    if parsed is None or not require_block(ctx, node):
        return
    rs = RealServer(address=parsed[0], port=parsed[1] or None, where=where(node), where_end=end_of(node))
    dispatch(ctx, node, RS_TABLE, rs)
    _vs(target).real_servers.append(rs)


def _weight(word: str) -> int:
    return to_int(word, 0, MAX_WEIGHT)


RS_TABLE: dict[str, Handler] = {
    "weight": set_with("weight", _weight),
    "inhibit_on_failure": set_flag("inhibit_on_failure"),
    "notify_up": set_script("notify_up"),
    "notify_down": set_script("notify_down"),
    "lvs_method": set_method("lvs_method"),
    "uthreshold": set_with("uthreshold", to_u32),
    "lthreshold": set_with("lthreshold", to_u32),
    "alpha": set_flag("alpha"),
    **TIMING_HANDLERS,
    "smtp_alert": set_flag("smtp_alert"),
    "virtualhost": set_str("virtualhost"),
    "snmp_name": set_str("snmp_name"),
    **dict.fromkeys(KINDS, parse_checker),
}

VS_TABLE: dict[str, Handler] = {
    "lb_algo": _lb_algo,
    "lvs_sched": _lb_algo,
    "lb_kind": set_method("lvs_method"),
    "lvs_method": set_method("lvs_method"),
    "protocol": _protocol,
    "persistence_timeout": _persistence_timeout,
    "persistence_granularity": set_with("persistence_granularity", to_granularity),
    "persistence_engine": set_str("persistence_engine"),
    "ops": set_bare_flag("ops"),
    **dict.fromkeys(SH_MH_FLAGS + OTHER_FLAGS, _sched_flag),
    **TIMING_HANDLERS,
    "inhibit_on_failure": set_bare_flag("inhibit_on_failure"),
    "alpha": set_bare_flag("alpha"),
    "omega": set_bare_flag("omega"),
    "ha_suspend": set_bare_flag("ha_suspend"),
    "quorum": set_with("quorum", lambda w: to_int(w, 1, MAX_U32)),
    "hysteresis": set_with("hysteresis", lambda w: to_int(w, 0, MAX_U32)),
    "quorum_up": set_script("quorum_up"),
    "quorum_down": set_script("quorum_down"),
    "sorry_server": _sorry_server,
    "sorry_server_inhibit": set_bare_flag("sorry_server_inhibit"),
    "sorry_server_lvs_method": _sorry_method,
    "virtualhost": set_str("virtualhost"),
    "smtp_alert": set_flag("smtp_alert"),
    "snmp_name": set_str("snmp_name"),
    "ip_family": _ip_family,
    "weight": set_with("weight", _weight),
    "real_server": _real_server,
}


def _header(ctx: Context, node: Node) -> VirtualServer | None:
    """``IP [PORT]``, ``fwmark N`` or ``group NAME``; a bad header drops the whole block."""
    args = node.args
    if not args:
        ctx.error(node, "'virtual_server' needs IP [PORT], fwmark N or group NAME")
        return None
    if args[0] in ("fwmark", "group") and len(args) < 2:
        ctx.error(node, f"'virtual_server {args[0]}' needs a value")
        return None
    if args[0] == "group":
        return VirtualServer(group=args[1], where=where(node))
    if args[0] == "fwmark":
        mark = ctx.value(node, to_u32, 1)
        return None if mark is None else VirtualServer(fwmark=mark, where=where(node))
    parsed = to_address_port(ctx, node, args, "virtual server")
    if parsed is None:
        return None
    return VirtualServer(address=parsed[0], port=parsed[1], where=where(node))


def parse_virtual_server(ctx: Context, node: Node, config: Config) -> None:
    vs = _header(ctx, node)
    if vs is None or not require_block(ctx, node):
        return
    dispatch(ctx, node, VS_TABLE, vs)
    vs.lines = {child.keyword: child.line for child in node.children or ()}
    config.lvs.virtual_servers.append(vs)
