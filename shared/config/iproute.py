"""The ``ip addr`` / ``ip route`` / ``ip rule`` grammar shared by ``virtual_*`` and ``static_*`` blocks.

keepalived parses each line of these blocks itself (not with iproute2), with
its own rules: full option names only, ``track_group`` only in the static
blocks, ``no_track`` only in the virtual ones, and a problem in one option is
reported at that line while the rest of the line is still used where keepalived
still uses it.  Messages say what was wrong and what was expected.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path

from shared.addresses import IPAddress
from shared.config.context import Context
from shared.config.model_vrrp import IPNetwork, Nexthop, Origin, Route, Rule, VirtualAddress
from shared.config.node import Node

SCOPES = {"global": 0, "site": 200, "link": 253, "host": 254, "nowhere": 255}
ROUTE_TYPES = (
    "unicast",
    "local",
    "broadcast",
    "anycast",
    "multicast",
    "blackhole",
    "unreachable",
    "prohibit",
    "throw",
    "nat",
)
RULE_ACTIONS = ("blackhole", "prohibit", "unreachable", "nop")
ROUTE_INT_METRICS = (
    "mtu",
    "hoplimit",
    "advmss",
    "rtt",
    "rttvar",
    "reordering",
    "window",
    "cwnd",
    "ssthresh",
    "initcwnd",
    "initrwnd",
    "rto_min",
    "quickack",
    "fastopen_no_cookie",
)
LOCKABLE = frozenset(
    {
        "mtu",
        "hoplimit",
        "advmss",
        "rtt",
        "rttvar",
        "reordering",
        "window",
        "cwnd",
        "ssthresh",
        "rto_min",
        "congctl",
    }
)
IPPROTOS = {
    "icmp": 1,
    "tcp": 6,
    "udp": 17,
    "sctp": 132,
    "icmpv6": 58,
    "ipv6-icmp": 58,
    "gre": 47,
    "esp": 50,
    "ah": 51,
    "dccp": 33,
    "udplite": 136,
}


@cache
def _table_file(path: str, builtin: tuple[tuple[str, int], ...]) -> dict[str, int]:
    """iproute2's ``NUMBER NAME`` files, as keepalived reads them for names like ``table main``."""
    names = dict(builtin)
    for base in (Path(path), Path("/usr/share/iproute2") / Path(path).name):
        try:
            text = base.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            words = line.split("#", 1)[0].split()
            if len(words) >= 2 and words[0].isdigit():
                names.setdefault(words[1], int(words[0]))
        break
    return names


def route_tables() -> dict[str, int]:
    return _table_file(
        "/etc/iproute2/rt_tables", (("local", 255), ("main", 254), ("default", 253), ("unspec", 0))
    )


def route_protocols() -> dict[str, int]:
    return _table_file(
        "/etc/iproute2/rt_protos", (("unspec", 0), ("redirect", 1), ("kernel", 2), ("boot", 3), ("static", 4))
    )


def _number(word: str, lo: int, hi: int) -> int | None:
    """Decimal or 0x-hex integer in range, else None (the caller reports in its own words)."""
    try:
        value = int(word, 0)
    except ValueError:
        return None
    return value if lo <= value <= hi else None


class Words:
    """A cursor over a line's words; ``take`` returns None at the end of the line."""

    def __init__(self, words: tuple[str, ...]) -> None:
        self.words = words
        self.pos = 0

    def take(self) -> str | None:
        if self.pos >= len(self.words):
            return None
        word = self.words[self.pos]
        self.pos += 1
        return word

    def peek(self) -> str | None:
        return self.words[self.pos] if self.pos < len(self.words) else None


def parse_prefix(
    ctx: Context, node: Node, word: str
) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface | None:
    """``ADDR[/LEN]``: an invalid address drops the item; a bad length is clamped, as keepalived does."""
    addr_text, slash, len_text = word.partition("/")
    try:
        addr = ipaddress.ip_address(addr_text)
    except ValueError:
        ctx.error(node, f"invalid IP address '{word}': expected ADDRESS[/PREFIXLEN] (item skipped)")
        return None
    width = addr.max_prefixlen
    if not slash:
        return ipaddress.ip_interface(f"{addr}/{width}")
    try:
        length = int(len_text, 10)
    except ValueError:
        ctx.error(node, f"invalid prefix length in '{word}': expected 0..{width} (item skipped)")
        return None
    if not 0 <= length <= width:
        ctx.error(node, f"prefix length {length} of '{word}' out of range 0..{width}: using {width}")
        length = width
    return ipaddress.ip_interface(f"{addr}/{length}")


def _address(word: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(word)
    except ValueError:
        return None


# --------------------------------------------------------------------------- addresses


AddrOption = Callable[[Context, Node, Words, VirtualAddress], bool]


def _addr_value(ctx: Context, node: Node, words: Words, key: str, what: str) -> str | None:
    value = words.take()
    if value is None:
        ctx.error(node, f"'{key}' needs {what} for {node.keyword}")
    return value


def _addr_brd(ctx: Context, node: Node, words: Words, vip: VirtualAddress) -> bool:
    value = _addr_value(ctx, node, words, "brd", "an address, '+' or '-'")
    if value is None:
        return False
    if value not in ("+", "-") and _address(value) is None:
        ctx.error(node, f"invalid broadcast address '{value}': expected an address, '+' or '-'")
        return True
    vip.broadcast = value
    return True


def _addr_dev(ctx: Context, node: Node, words: Words, vip: VirtualAddress) -> bool:
    value = words.take()
    if value is None:
        ctx.error(node, f"'dev' needs an interface name for {vip.address}")
        return False
    vip.dev = value
    return True


def _addr_scope(ctx: Context, node: Node, words: Words, vip: VirtualAddress) -> bool:
    value = _addr_value(ctx, node, words, "scope", "a scope")
    if value is None:
        return False
    if value in SCOPES:
        vip.scope = value
    else:
        ctx.error(
            node, f"invalid scope '{value}' for {vip.address}: expected one of {', '.join(SCOPES)} (ignored)"
        )
    return True


def _addr_label(ctx: Context, node: Node, words: Words, vip: VirtualAddress) -> bool:
    value = _addr_value(ctx, node, words, "label", "a label")
    if value is None:
        return False
    if len(value) >= 16:
        ctx.error(node, f"label '{value}' is too long: at most 15 characters (ignored)")
    else:
        vip.label = value
    return True


def _addr_peer(ctx: Context, node: Node, words: Words, vip: VirtualAddress) -> bool:
    value = _addr_value(ctx, node, words, "peer", "an address")
    if value is None:
        return False
    peer = _address(value)
    if peer is None:
        ctx.error(node, f"invalid peer address '{value}': expected a plain address without /prefix")
    else:
        vip.peer = peer
    return True


def _addr_preferred_lft(ctx: Context, node: Node, words: Words, vip: VirtualAddress) -> bool:
    value = _addr_value(ctx, node, words, "preferred_lft", "a lifetime or 'forever'")
    if value is None:
        return False
    if value == "forever":
        vip.preferred_lft = -1
        return True
    number = _number(value, 0, 0xFFFFFFFF)
    if number is None:
        ctx.error(node, f"invalid preferred_lft '{value}': expected seconds or 'forever'")
    else:
        vip.preferred_lft = number
    return True


def _addr_flag(attr: str) -> AddrOption:
    def handle(ctx: Context, node: Node, words: Words, vip: VirtualAddress) -> bool:
        setattr(vip, attr, True)
        return True

    return handle


def _addr_use_vmac(ctx: Context, node: Node, words: Words, vip: VirtualAddress) -> bool:
    """``use_vmac`` alone: keepalived 2.2.7 takes no name here (a word after it is an unknown option)."""
    vip.use_vmac = True
    return True


LINE_OPTIONS = ("no_track", "track_group")
"""The address options ``parse_address`` reads itself (``track_group`` for static addresses only)."""

ADDRESS_OPTIONS: dict[str, AddrOption] = {
    "brd": _addr_brd,
    "broadcast": _addr_brd,
    "dev": _addr_dev,
    "scope": _addr_scope,
    "label": _addr_label,
    "peer": _addr_peer,
    "home": _addr_flag("home"),
    "-nodad": _addr_flag("nodad"),
    "nodad": _addr_flag("nodad"),
    "mngtmpaddr": _addr_flag("mngtmpaddr"),
    "noprefixroute": _addr_flag("noprefixroute"),
    "autojoin": _addr_flag("autojoin"),
    "preferred_lft": _addr_preferred_lft,
    "use_vmac": _addr_use_vmac,
}


def parse_address(
    ctx: Context, node: Node, *, static: bool, seen: list[str] | None = None
) -> VirtualAddress | None:
    """One address line; ``static`` allows ``track_group``, the virtual blocks ``no_track``.

    ``seen`` collects the options the line uses, for the support registry's compat lines.
    """
    words = Words(node.words)
    first = words.take() or ""
    iface = parse_prefix(ctx, node, first)
    if iface is None:
        return None
    vip = VirtualAddress(address=iface, origin=Origin(node.file, node.line))
    while (key := words.take()) is not None:
        if seen is not None and (
            key in ADDRESS_OPTIONS or key == "no_track" or (key == "track_group" and static)
        ):
            seen.append(key)
        if key == "no_track":
            vip.no_track = True
            continue
        if key == "track_group" and static:
            vip.track_group = words.take()
            if vip.track_group is None:
                ctx.error(node, "'track_group' needs a track_group name")
            continue
        handler = ADDRESS_OPTIONS.get(key)
        if handler is None:
            ctx.error(
                node,
                f"unknown option '{key}' for address {first} (ignored): expected brd, dev, "
                "scope, label, peer, home, -nodad, mngtmpaddr, noprefixroute, autojoin, "
                "preferred_lft" + (", track_group" if static else ", no_track, use_vmac"),
            )
            continue
        if not handler(ctx, node, words, vip):
            return None
    return vip


# --------------------------------------------------------------------------- routes


class RouteState:
    """A route being filled, plus the family its addresses have fixed so far."""

    def __init__(self, route: Route) -> None:
        self.route = route
        self.family: int | None = None
        self.forced_family: int | None = None

    def note_family(self, ctx: Context, node: Node, version: int) -> bool:
        if self.family is None:
            self.family = version
            return True
        if self.family != version:
            ctx.error(node, "cannot mix IPv4 and IPv6 addresses in one route")
            return False
        return True


RouteOption = Callable[[Context, Node, Words, RouteState], bool]


def _route_need(ctx: Context, node: Node, words: Words, key: str, what: str) -> str | None:
    value = words.take()
    if value is None:
        ctx.error(node, f"route option '{key}' needs {what}")
    return value


def _route_gateway(ctx: Context, node: Node, words: Words, state: RouteState, key: str) -> IPAddress | None:
    value = _route_need(ctx, node, words, key, "an address")
    if value in ("inet", "inet6"):
        state.forced_family = 4 if value == "inet" else 6
        if state.family is not None and state.family != state.forced_family:
            ctx.error(node, "cannot mix IPv4 and IPv6 addresses in one route")
            return None
        value = _route_need(ctx, node, words, key, "an address")
    if value is None:
        return None
    gw = _address(value)
    if gw is None:
        ctx.error(node, f"invalid '{key}' address '{value}': expected an IPv4 or IPv6 address")
        return None
    if not state.note_family(ctx, node, gw.version):
        return None
    return gw


def _route_via(ctx: Context, node: Node, words: Words, state: RouteState) -> bool:
    gw = _route_gateway(ctx, node, words, state, "via")
    if gw is None:
        return False
    state.route.via = gw
    return True


def _route_gw(ctx: Context, node: Node, words: Words, state: RouteState) -> bool:
    ctx.warning(node, "'gw' in routes is deprecated: use 'via'")
    return _route_via(ctx, node, words, state)


def _route_or(ctx: Context, node: Node, words: Words, state: RouteState) -> bool:
    ctx.warning(node, "'or' in routes is deprecated: use 'nexthop'")
    gw = _route_gateway(ctx, node, words, state, "or")
    if gw is None:
        return False
    route = state.route
    if not route.nexthops:
        route.nexthops.append(Nexthop(via=route.via, dev=route.dev))
        route.via = None
    route.nexthops.append(Nexthop(via=gw))
    return True


def _route_src(ctx: Context, node: Node, words: Words, state: RouteState) -> bool:
    value = _route_need(ctx, node, words, "src", "an address")
    if value is None:
        return False
    src = _address(value)
    if src is None:
        ctx.error(node, f"invalid route 'src' address '{value}': expected an address")
        return False
    if not state.note_family(ctx, node, src.version):
        return False
    state.route.source = src
    return True


def _route_from(ctx: Context, node: Node, words: Words, state: RouteState) -> bool:
    value = _route_need(ctx, node, words, "from", "a prefix")
    if value is None:
        return False
    iface = parse_prefix(ctx, node, value)
    if iface is None or not state.note_family(ctx, node, iface.version):
        return False
    state.route.from_prefix = iface.network
    return True


def _table_number(value: str) -> int | None:
    """A routing table by name (rt_tables) or number, for routes and rules alike."""
    table = route_tables().get(value)
    return _number(value, 0, 0xFFFFFFFF) if table is None else table


TABLE_NOT_FOUND = (
    "routing table '{value}' not found: expected a number or a name from /etc/iproute2/rt_tables"
)


def _route_word(key: str, what: str, parse: Callable[[str], object] = str, invalid: str = "") -> RouteOption:
    """A route option of one word, stored in ``Route.<key>`` as ``parse`` gives it (None: a bad word).

    A missing word drops the route; a bad one is reported with ``invalid`` but the route is kept,
    as keepalived does.
    """

    def handle(ctx: Context, node: Node, words: Words, state: RouteState) -> bool:
        value = _route_need(ctx, node, words, key, what)
        if value is None:
            return False
        parsed = parse(value)
        if parsed is None:
            ctx.error(node, invalid.format(value=value))
            return True
        setattr(state.route, key, parsed)
        return True

    return handle


def _named_or_byte(names: Callable[[], Mapping[str, int]]) -> Callable[[str], str | None]:
    """Scope and protocol: kept as written when a known name or a number 0..255."""
    return lambda value: value if value in names() or _number(value, 0, 255) is not None else None


_route_dev = _route_word("dev", "an interface name")
_route_realms = _route_word("realms", "a realm")
_route_table = _route_word("table", "a table number or name", _table_number, TABLE_NOT_FOUND)
_route_scope = _route_word(
    "scope",
    "a scope",
    _named_or_byte(lambda: SCOPES),
    f"invalid route scope '{{value}}': expected one of {', '.join(SCOPES)} or 0..255",
)
_route_protocol = _route_word(
    "protocol",
    "a protocol number or name",
    _named_or_byte(route_protocols),
    "invalid route protocol '{value}': expected 0..255 or a name from /etc/iproute2/rt_protos",
)
_route_metric = _route_word(
    "metric",
    "a number",
    lambda value: _number(value, 0, 0xFFFFFFFF),
    "invalid route metric '{value}': expected a number 0..4294967295",
)
_route_tos = _route_word(
    "tos",
    "a number",
    lambda value: _number(value, 0, 255),
    "invalid route tos '{value}': expected 0..255",
)


def _route_pref(ctx: Context, node: Node, words: Words, state: RouteState) -> bool:
    value = _route_need(ctx, node, words, "pref", "low, medium or high")
    if value is None:
        return False
    if value not in ("low", "medium", "high"):
        ctx.error(node, f"invalid route pref '{value}': expected low, medium or high")
        return True
    if state.route.destination.version != 6:
        ctx.error(node, "route 'pref' is only valid for IPv6 routes")
        return True
    state.route.pref = value
    return True


def _route_features(ctx: Context, node: Node, words: Words, state: RouteState) -> bool:
    value = _route_need(ctx, node, words, "features", "'ecn'")
    if value is None:
        return False
    if value != "ecn":
        ctx.error(node, f"invalid route feature '{value}': expected 'ecn'")
        return True
    state.route.features.append(value)
    return True


def _route_metric_option(key: str) -> RouteOption:
    def handle(ctx: Context, node: Node, words: Words, state: RouteState) -> bool:
        value = _route_need(ctx, node, words, key, "a value")
        if value is None:
            return False
        if value == "lock" and key in LOCKABLE:
            state.route.locked.append(key)
            value = _route_need(ctx, node, words, key, "a value")
            if value is None:
                return False
        if key != "congctl" and _route_metric_value(key, value) is None:
            ctx.error(node, f"invalid route {key} '{value}': expected a number")
            return True
        state.route.metrics[key] = value
        return True

    return handle


def _route_metric_value(key: str, value: str) -> float | None:
    """Numbers, or for the rtt family iproute2's time units (``rtt 10ms``)."""
    if key in ("rtt", "rttvar", "rto_min"):
        for unit in ("ms", "msec", "msecs", "s", "sec", "secs", "us", "usec", "usecs"):
            if value.endswith(unit):
                value = value[: -len(unit)]
                break
    try:
        return float(value) if key in ("rtt", "rttvar", "rto_min") else int(value, 0)
    except ValueError:
        return None


def _route_flag(attr: str) -> RouteOption:
    def handle(ctx: Context, node: Node, words: Words, state: RouteState) -> bool:
        setattr(state.route, attr, True)
        return True

    return handle


def _route_skip_value(key: str) -> RouteOption:
    """Options keepalived accepts and we only carry as written (vrf, expires, ttl-propagate...)."""

    def handle(ctx: Context, node: Node, words: Words, state: RouteState) -> bool:
        value = _route_need(ctx, node, words, key, "a value")
        if value is None:
            return False
        state.route.metrics[key] = value
        return True

    return handle


def _route_nexthop(ctx: Context, node: Node, words: Words, state: RouteState) -> bool:
    hop = Nexthop()
    while (key := words.peek()) in ("via", "dev", "weight", "onlink", "realms"):
        words.take()
        if key == "onlink":
            hop.onlink = True
            continue
        value = _route_need(ctx, node, words, key, "a value")
        if value is None:
            return False
        if key == "via":
            words.pos -= 1
            gw = _route_gateway(ctx, node, words, state, "via")
            if gw is None:
                return False
            hop.via = gw
        elif key == "dev":
            hop.dev = value
        elif key == "weight":
            weight = _number(value, 1, 256)
            if weight is None:
                ctx.error(node, f"invalid nexthop weight '{value}': expected 1..256")
                return False
            hop.weight = weight
        else:
            hop.realms = value
    state.route.nexthops.append(hop)
    return True


ROUTE_OPTIONS: dict[str, RouteOption] = {
    "src": _route_src,
    "from": _route_from,
    "via": _route_via,
    "gw": _route_gw,
    "or": _route_or,
    "dev": _route_dev,
    "oif": _route_dev,
    "onlink": _route_flag("onlink"),
    "table": _route_table,
    "scope": _route_scope,
    "protocol": _route_protocol,
    "metric": _route_metric,
    "priority": _route_metric,
    "preference": _route_metric,
    "tos": _route_tos,
    "dsfield": _route_tos,
    "realms": _route_realms,
    "pref": _route_pref,
    "features": _route_features,
    "nexthop": _route_nexthop,
    "append": _route_flag("append"),
    "congctl": _route_metric_option("congctl"),
    "vrf": _route_skip_value("vrf"),
    "expires": _route_skip_value("expires"),
    "ttl-propagate": _route_skip_value("ttl-propagate"),
    **{key: _route_metric_option(key) for key in ROUTE_INT_METRICS},
}


def _route_destination(ctx: Context, node: Node, words: Words) -> tuple[str, IPNetwork | None, bool]:
    """The leading ``[TYPE] [to] PREFIX`` (possibly after options like ``src``); ok=False to drop."""
    kind = "unicast"
    word = words.peek()
    if word in ROUTE_TYPES:
        kind = words.take() or kind
        word = words.peek()
    if word == "to":
        words.take()
        word = words.peek()
    if word is None:
        ctx.error(node, "route has no destination: expected [TYPE] PREFIX [options]")
        return kind, None, False
    words.take()
    if word == "default":
        return kind, ipaddress.IPv4Network("0.0.0.0/0"), True
    iface = parse_prefix(ctx, node, word)
    if iface is None:
        return kind, None, False
    return kind, iface.network, True


def parse_route(ctx: Context, node: Node, *, static: bool) -> Route | None:
    """One route line: options may precede the destination (keepalived's ``src X PREFIX via Y``)."""
    words = Words(node.words)
    placeholder = Route(destination=ipaddress.IPv4Network("0.0.0.0/0"), origin=Origin(node.file, node.line))
    state = RouteState(placeholder)
    have_destination = False
    while (key := words.peek()) is not None:
        if key in ("src", "from") and not have_destination:
            words.take()
            if not ROUTE_OPTIONS[key](ctx, node, words, state):
                return None
            continue
        if not have_destination:
            kind, destination, ok = _route_destination(ctx, node, words)
            if not ok or destination is None:
                return None
            placeholder.type = kind
            placeholder.destination = destination
            if not state.note_family(ctx, node, destination.version):
                return None
            have_destination = True
            continue
        if not _route_option(ctx, node, words, state, static=static):
            return None
    if not have_destination:
        ctx.error(node, "route has no destination: expected [TYPE] PREFIX [options]")
        return None
    return placeholder


def _route_option(ctx: Context, node: Node, words: Words, state: RouteState, *, static: bool) -> bool:
    key = words.take() or ""
    if key in ("inet", "inet6"):
        return True
    if key == "no_track":
        state.route.no_track = True
        return True
    if key == "track_group" and static:
        state.route.track_group = words.take()
        if state.route.track_group is None:
            ctx.error(node, "'track_group' needs a track_group name")
        return True
    handler = ROUTE_OPTIONS.get(key)
    if handler is None:
        ctx.error(
            node,
            f"unknown route option '{key}': expected ip-route options such as via, dev, "
            "table, metric, scope, protocol, src, nexthop" + (", track_group" if static else ", no_track"),
        )
        return False
    return handler(ctx, node, words, state)


# --------------------------------------------------------------------------- rules


class RuleState:
    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.family: int | None = None
        self.has_action = False


RuleOption = Callable[[Context, Node, Words, RuleState], bool]


def _rule_need(ctx: Context, node: Node, words: Words, key: str, what: str) -> str | None:
    value = words.take()
    if value is None:
        ctx.error(node, f"rule option '{key}' needs {what}")
    return value


def _rule_prefix(attr: str, key: str) -> RuleOption:
    def handle(ctx: Context, node: Node, words: Words, state: RuleState) -> bool:
        value = _rule_need(ctx, node, words, key, "a prefix or 'all'")
        if value is None:
            return False
        if value in ("all", "any", "default"):
            return True
        iface = parse_prefix(ctx, node, value)
        if iface is None:
            ctx.error(node, f"invalid rule '{key}' address '{value}' (rule skipped)")
            return False
        if state.family is not None and state.family != iface.version:
            ctx.error(node, "cannot mix IPv4 and IPv6 addresses in one rule")
            return False
        state.family = iface.version
        setattr(state.rule, attr, iface.network)
        return True

    return handle


def _rule_word(
    attr: str, key: str, what: str, parse: Callable[[str], object] = str, invalid: str = ""
) -> RuleOption:
    """A rule option of one word stored as ``parse`` gives it; ``parse`` answers None for a bad word.

    Unlike a route's, a rule's bad value drops the whole rule, as keepalived does.
    """

    def handle(ctx: Context, node: Node, words: Words, state: RuleState) -> bool:
        value = _rule_need(ctx, node, words, key, what)
        if value is None:
            return False
        parsed = parse(value)
        if parsed is None:
            ctx.error(node, invalid.format(value=value))
            return False
        setattr(state.rule, attr, parsed)
        return True

    return handle


def _rule_int(attr: str, key: str, hi: int = 0xFFFFFFFF) -> RuleOption:
    return _rule_word(
        attr,
        key,
        "a number",
        lambda value: _number(value, 0, hi),
        f"invalid rule {key} '{{value}}': expected a number 0..{hi}",
    )


def _rule_range(attr: str, key: str, hi: int) -> RuleOption:
    def low_high(value: str) -> tuple[int, int] | None:
        low_text, dash, high_text = value.partition("-")
        low = _number(low_text, 0, hi)
        high = _number(high_text, 0, hi) if dash else None
        return None if low is None or high is None else (low, high)

    return _rule_word(
        attr, key, "a range LOW-HIGH", low_high, f"invalid rule {key} range '{{value}}': expected LOW-HIGH"
    )


_rule_ipproto = _rule_word(
    "ipproto",
    "ipproto",
    "a protocol",
    lambda value: IPPROTOS.get(value.lower(), _number(value, 0, 255)),
    "invalid rule ipproto '{value}': expected a protocol name or 0..255",
)


def _rule_table(ctx: Context, node: Node, words: Words, state: RuleState) -> bool:
    value = _rule_need(ctx, node, words, "table", "a table number or name")
    if value is None:
        return False
    table = _table_number(value)
    if table is None:
        ctx.error(node, TABLE_NOT_FOUND.format(value=value))
        return False
    state.rule.table = table
    return _set_action(ctx, node, state, "table")


def _set_action(ctx: Context, node: Node, state: RuleState, action: str) -> bool:
    if state.has_action and (action == "l3mdev" or state.rule.action == "l3mdev"):
        ctx.error(node, "rule 'l3mdev' cannot be combined with another action")
        return False
    state.has_action = True
    state.rule.action = action
    return True


def _rule_goto(ctx: Context, node: Node, words: Words, state: RuleState) -> bool:
    if not _rule_int("goto", "goto")(ctx, node, words, state):
        return False
    return _set_action(ctx, node, state, "goto")


def _rule_action(action: str) -> RuleOption:
    def handle(ctx: Context, node: Node, words: Words, state: RuleState) -> bool:
        return _set_action(ctx, node, state, action)

    return handle


def _rule_fwmark(ctx: Context, node: Node, words: Words, state: RuleState) -> bool:
    value = _rule_need(ctx, node, words, "fwmark", "MARK[/MASK]")
    if value is None:
        return False
    mark_text, slash, mask_text = value.partition("/")
    mark = _number(mark_text, 0, 0xFFFFFFFF)
    mask = _number(mask_text, 0, 0xFFFFFFFF) if slash else None
    if mark is None or (slash and mask is None):
        ctx.error(node, f"invalid rule fwmark '{value}': expected MARK[/MASK]")
        return False
    state.rule.fwmark = mark
    state.rule.fwmask = mask
    return True


def _rule_not(ctx: Context, node: Node, words: Words, state: RuleState) -> bool:
    state.rule.invert = True
    return True


def _rule_family(version: int) -> RuleOption:
    def handle(ctx: Context, node: Node, words: Words, state: RuleState) -> bool:
        state.family = version
        return True

    return handle


def _rule_type(ctx: Context, node: Node, words: Words, state: RuleState) -> bool:
    value = _rule_need(ctx, node, words, "type", "an action")
    if value is None:
        return False
    if value not in RULE_ACTIONS:
        ctx.error(node, f"invalid rule type '{value}': expected one of {', '.join(RULE_ACTIONS)}")
        return False
    return _set_action(ctx, node, state, value)


RULE_OPTIONS: dict[str, RuleOption] = {
    "not": _rule_not,
    "from": _rule_prefix("from_prefix", "from"),
    "to": _rule_prefix("to_prefix", "to"),
    "table": _rule_table,
    "lookup": _rule_table,
    "preference": _rule_int("preference", "preference"),
    "priority": _rule_int("preference", "priority"),
    "order": _rule_int("preference", "order"),
    "tos": _rule_int("tos", "tos", 255),
    "dsfield": _rule_int("tos", "dsfield", 255),
    "fwmark": _rule_fwmark,
    "realms": _rule_word("realms", "realms", "a value"),
    "iif": _rule_word("iif", "iif", "a value"),
    "oif": _rule_word("oif", "oif", "a value"),
    "goto": _rule_goto,
    "uidrange": _rule_range("uidrange", "uidrange", 0xFFFFFFFF),
    "sport": _rule_range("sport", "sport", 65535),
    "dport": _rule_range("dport", "dport", 65535),
    "ipproto": _rule_ipproto,
    "protocol": _rule_int("protocol", "protocol", 255),
    "suppress_prefixlength": _rule_int("suppress_prefixlength", "suppress_prefixlength"),
    "suppress_ifgroup": _rule_int("suppress_ifgroup", "suppress_ifgroup"),
    "tunnel_id": _rule_int("tunnel_id", "tunnel_id", 0xFFFFFFFFFFFFFFFF),
    "l3mdev": _rule_action("l3mdev"),
    "inet": _rule_family(4),
    "inet6": _rule_family(6),
    **{action: _rule_action(action) for action in RULE_ACTIONS},
    "type": _rule_type,
}


class RulePreferences:
    """keepalived numbers rules without a preference downwards from 16384, warning for each."""

    def __init__(self) -> None:
        self.next = 16384


def parse_rule(ctx: Context, node: Node, *, static: bool, prefs: RulePreferences) -> Rule | None:
    words = Words(node.words)
    state = RuleState(Rule(origin=Origin(node.file, node.line)))
    while (key := words.take()) is not None:
        if key == "no_track":
            state.rule.no_track = True
            continue
        if key == "track_group" and static:
            state.rule.track_group = words.take()
            continue
        handler = RULE_OPTIONS.get(key)
        if handler is None:
            ctx.error(
                node,
                f"unknown rule option '{key}': expected ip-rule options such as from, to, "
                "table, preference, fwmark, iif, oif" + (", track_group" if static else ", no_track"),
            )
            return None
        if not handler(ctx, node, words, state):
            return None
    if not state.has_action:
        ctx.error(
            node,
            "rule has no action (table, goto, blackhole, prohibit, unreachable, nop, l3mdev): rule ignored",
        )
        return None
    if state.rule.preference is None:
        state.rule.preference = prefs.next
        ctx.error(
            node,
            f"rule has no preference: keepalived assigns {prefs.next}, which is probably "
            "not what you want; add 'preference N'",
        )
        prefs.next -= 1
    state.rule.family = state.family or 4
    return state.rule
