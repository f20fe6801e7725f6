"""Pieces the virtual_server, real_server and checker parsers share: addresses, methods, lines.

keepalived reports some block-level problems (a checker with no url, an empty
virtual_server_group) at the line of the block's closing brace, so ``end_of``
gives that line.
"""

from __future__ import annotations

from typing import Any

from shared.addresses import IPAddress
from shared.config.context import Context, Handler, set_parsed, set_with
from shared.config.model_lvs import LvsMethod, Where
from shared.config.node import Node
from shared.config.values import BadValue, to_int, to_ip, to_timer

MIN_TIMER = 0.000001
MAX_CONNECT_TIMEOUT = 4294.967295
MAX_U32 = 4294967295
MAX_WEIGHT = 2147483647
TUNNEL_TYPES = ("ipip", "gue", "gre")
CHECKSUMS = ("nocsum", "csum", "remcsum")


def where(node: Node) -> Where:
    return Where(file=node.file, line=node.line)


def end_of(node: Node) -> Where:
    """The line of a block's closing ``}``: keepalived reports block-level problems there."""
    return Where(file=node.file, line=node.end_line or node.line)


def to_port(word: str) -> int:
    """A service or check port: keepalived refuses 0."""
    return to_int(word, 1, 65535)


def to_u32(word: str) -> int:
    return to_int(word, 0, MAX_U32)


def to_address_port(
    ctx: Context, node: Node, words: tuple[str, ...], what: str
) -> tuple[IPAddress, int] | None:
    """``IP [PORT]`` as a server line writes it; 0 stands for "no port given"."""
    if not words:
        ctx.error(node, f"'{node.keyword}' needs an IP address")
        return None
    try:
        address = to_ip(words[0])
        port = to_port(words[1]) if len(words) > 1 else 0
    except BadValue as exc:
        ctx.error(node, f"invalid {what} address/port '{' '.join(words[:2])}': expected {exc}; skipping")
        return None
    return address, port


def parse_lvs_method(ctx: Context, node: Node) -> LvsMethod | None:
    """``NAT|DR|TUN [type ipip|gue port N|gre] [nocsum|csum|remcsum]``, case-sensitive as in keepalived."""
    if not node.args:
        ctx.error(node, f"'{node.keyword}' needs NAT, DR or TUN")
        return None
    kind = node.args[0]
    if kind not in ("NAT", "DR", "TUN"):
        ctx.error(node, f"unknown forwarding method '{kind}': expected NAT, DR or TUN")
        return None
    options = _tunnel_options(ctx, node, node.args[1:], tunnel=kind == "TUN")
    if options is None:
        return None
    tunnel_type, port, checksum = options
    if kind != "TUN":
        return LvsMethod(kind="NAT" if kind == "NAT" else "DR")
    return LvsMethod(kind="TUN", tunnel_type=tunnel_type or "ipip", tunnel_port=port, checksum=checksum)


def _tunnel_options(
    ctx: Context, node: Node, words: tuple[str, ...], *, tunnel: bool
) -> tuple[Any, int | None, Any] | None:
    tunnel_type: str | None = None
    port: int | None = None
    checksum: str | None = None
    i = 0
    while i < len(words):
        word = words[i]
        if word == "type" and i + 1 < len(words):
            tunnel_type = words[i + 1]
            if tunnel_type not in TUNNEL_TYPES:
                ctx.error(node, f"unknown tunnel type '{tunnel_type}': expected ipip, gue or gre")
                return None
            i += 2
        elif word == "port" and i + 1 < len(words):
            try:
                port = to_port(words[i + 1])
            except BadValue as exc:
                ctx.error(node, f"invalid gue tunnel port: expected {exc}")
                return None
            i += 2
        elif word in CHECKSUMS:
            checksum = word
            i += 1
        else:
            ctx.error(node, f"invalid tunnel option '{word}': expected type, port or nocsum/csum/remcsum")
            return None
    if tunnel and not _tunnel_ok(ctx, node, tunnel_type or "ipip", port, checksum):
        return None
    return tunnel_type, port, checksum


def _tunnel_ok(ctx: Context, node: Node, tunnel_type: str, port: int | None, checksum: str | None) -> bool:
    """keepalived checks option combinations for TUN only (NAT/DR ignore them)."""
    if (tunnel_type == "gue") != (port is not None):
        ctx.error(node, "a gue tunnel needs 'port N', and only gue tunnels take a port")
        return False
    if tunnel_type == "gre" and checksum == "remcsum":
        ctx.error(node, "gre tunnels do not support the remcsum option")
        return False
    if tunnel_type == "ipip" and checksum not in (None, "nocsum"):
        ctx.error(node, "ipip tunnels take no checksum option")
        return False
    return True


def set_method(attr: str) -> Handler:
    return set_parsed(attr, parse_lvs_method)


def positive_timer(word: str) -> float:
    return to_timer(word, MIN_TIMER)


def connect_timer(word: str) -> float:
    return to_timer(word, MIN_TIMER, MAX_CONNECT_TIMEOUT)


def nonneg_timer(word: str) -> float:
    return to_timer(word, 0)


def nonneg_int(word: str) -> int:
    return to_int(word, 0)


TIMING_HANDLERS: dict[str, Handler] = {
    "connect_timeout": set_with("connect_timeout", connect_timer),
    "retry": set_with("retry", nonneg_int),
    "delay_before_retry": set_with("delay_before_retry", nonneg_timer),
    "warmup": set_with("warmup", nonneg_timer),
    "delay_loop": set_with("delay_loop", positive_timer),
}
