"""TCP, SMTP, DNS, UDP, PING, MISC, FILE and BFD checkers: their own keywords and end-of-block rules."""

from __future__ import annotations

import re
from typing import Any

from shared.config.check_common import (
    COMMON_HANDLERS,
    CONNECT_HANDLERS,
    LATE_HANDLERS,
    CheckerKind,
    Finisher,
    register,
)
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
from shared.config.lvs_common import end_of, to_u32, where
from shared.config.model_lvs import (
    BfdCheck,
    Checker,
    DnsCheck,
    FileCheck,
    MiscCheck,
    PingCheck,
    RealServer,
    SmtpCheck,
    TcpCheck,
    UdpCheck,
)
from shared.config.node import Node
from shared.config.script import set_script
from shared.config.values import BadValue, to_int

DNS_TYPES = ("A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA")
HEX_WORD = re.compile(r"[0-9a-fA-F]+")
PATTERN_WORD = re.compile(r"[0-9a-fA-FxX]+")
MAX_FILE_WEIGHT = 2147483647


def hex_bytes(words: tuple[str, ...]) -> bytes:
    """keepalived's free-form hex: each word is read in pairs, a lone last digit is one byte."""
    if not words or not all(HEX_WORD.fullmatch(w) for w in words):
        raise BadValue(f"hex digits, got '{' '.join(words)}'")
    return bytes(int(pair, 16) for pair in _pairs(words))


def hex_pattern(words: tuple[str, ...]) -> str:
    """Like ``hex_bytes`` but ``X`` digits are wildcards; kept as two characters per byte."""
    if not all(PATTERN_WORD.fullmatch(w) for w in words):
        raise BadValue(f"hex digits or X wildcards, got '{' '.join(words)}'")
    return "".join(p.rjust(2, "0").upper() for p in _pairs(words))


def _pairs(words: tuple[str, ...]) -> list[str]:
    return [w[i : i + 2] for w in words for i in range(0, len(w), 2)]


# ------------------------------------------------------------------ SMTP


def _smtp_host(ctx: Context, node: Node, check: object) -> None:
    """Deprecated ``host { connect_ip ... }``: keepalived makes it another SMTP check."""
    assert isinstance(check, SmtpCheck)
    if not require_block(ctx, node):
        return
    extra = SmtpCheck(where=where(node))
    dispatch(ctx, node, CONNECT_HANDLERS, extra)
    check.hosts.append(extra)


SMTP_TABLE: dict[str, Handler] = {**COMMON_HANDLERS, "helo_name": set_str("helo_name"), "host": _smtp_host}

# ------------------------------------------------------------------ DNS


def _dns_type(ctx: Context, node: Node, check: object) -> None:
    assert isinstance(check, DnsCheck)
    word = node.args[0] if node.args else ""
    if word.upper() not in DNS_TYPES:
        ctx.error(node, f"unknown DNS query type '{word}': expected one of {', '.join(DNS_TYPES)}")
        return
    check.type = word.upper()  # type: ignore[assignment]


DNS_TABLE: dict[str, Handler] = {**COMMON_HANDLERS, "type": _dns_type, "name": set_str("name")}

# ------------------------------------------------------------------ UDP


def _payload(ctx: Context, node: Node, check: object) -> None:
    assert isinstance(check, UdpCheck)
    try:
        check.payload = hex_bytes(node.args)
    except BadValue as exc:
        ctx.error(node, f"invalid UDP_CHECK payload: expected {exc}")


def _require_reply(ctx: Context, node: Node, check: object) -> None:
    assert isinstance(check, UdpCheck)
    check.require_reply = True
    if not node.args:
        return
    try:
        check.reply_pattern = hex_pattern(node.args)
    except BadValue as exc:
        ctx.error(node, f"invalid UDP_CHECK require_reply: expected {exc}")


def _reply_length(word: str) -> int:
    return to_int(word, 0, 65535)


UDP_TABLE: dict[str, Handler] = {
    **COMMON_HANDLERS,
    "payload": _payload,
    "require_reply": _require_reply,
    "min_reply_length": set_with("min_reply_length", _reply_length),
    "max_reply_length": set_with("max_reply_length", _reply_length),
}


def _udp_finish(ctx: Context, node: Node, check: Checker) -> bool:
    assert isinstance(check, UdpCheck)
    if check.min_reply_length > check.max_reply_length:
        ctx.diagnostics.warning(
            end_of(node),
            f"UDP_CHECK min_reply_length {check.min_reply_length} > max_reply_length "
            f"{check.max_reply_length}: the check will always fail",
        )
    return True


# ------------------------------------------------------------------ MISC


def _misc_user(ctx: Context, node: Node, check: object) -> None:
    assert isinstance(check, MiscCheck)
    if not node.args:
        ctx.error(node, "'user' needs a user name")
        return
    check.user = node.args[0]
    check.group = node.args[1] if len(node.args) > 1 else None
    check.where_user = where(node)


MISC_TABLE: dict[str, Handler] = {
    **LATE_HANDLERS,
    "misc_path": set_script("misc_path", takes_user=False),
    "misc_timeout": set_with("misc_timeout", lambda w: float(to_u32(w))),
    "misc_dynamic": set_bare_flag("misc_dynamic"),
    "user": _misc_user,
}


def _needs(attr: str, kind: str) -> Finisher:
    """A checker keepalived drops, with a warning at its closing brace, when ``attr`` was never given."""

    def finish(ctx: Context, node: Node, check: Checker) -> bool:
        if getattr(check, attr) is None:
            ctx.diagnostics.warning(end_of(node), f"{kind} has no {attr} - ignoring this checker")
            return False
        return True

    return finish


# ------------------------------------------------------------------ FILE / BFD


def _file_weight(ctx: Context, node: Node, check: object) -> None:
    assert isinstance(check, FileCheck)
    value = ctx.value(node, lambda w: to_int(w, -MAX_FILE_WEIGHT, MAX_FILE_WEIGHT))
    if value is None:
        return
    check.weight = value
    check.reverse = len(node.args) > 1 and node.args[1] == "reverse"


def _reference(attr: str, what: str) -> Handler:
    """A checker naming a block defined elsewhere; the line is kept so an unknown name is reported there."""

    def handle(ctx: Context, node: Node, check: Any) -> None:
        if not node.args:
            ctx.error(node, f"'{node.keyword}' needs the name of {what}")
            return
        setattr(check, attr, node.args[0])
        check.where_ref = where(node)

    return handle


FILE_TABLE: dict[str, Handler] = {
    "track_file": _reference("track_file", "a track_file block"),
    "weight": _file_weight,
}
BFD_TABLE: dict[str, Handler] = {"name": _reference("name", "a bfd_instance"), "alpha": set_flag("alpha")}


def _file_finish(ctx: Context, node: Node, check: Checker) -> bool:
    assert isinstance(check, FileCheck)
    check.where_end = end_of(node)
    return _needs("track_file", "FILE_CHECK")(ctx, node, check)


def expand_smtp_hosts(rs: RealServer) -> None:
    """Turn each deprecated SMTP ``host {}`` into a check of its own, as keepalived does."""
    extra: list[Checker] = []
    for check in rs.checkers:
        if isinstance(check, SmtpCheck):
            for host in check.hosts:
                extra.append(_smtp_from_host(check, host))
            check.hosts = []
    rs.checkers.extend(extra)


def _smtp_from_host(parent: SmtpCheck, host: SmtpCheck) -> SmtpCheck:
    fields = {f: getattr(parent, f) for f in parent.__struct_fields__ if f not in ("hosts", "where")}
    for f in ("connect_ip", "connect_port", "bindto", "bind_port", "bind_if", "fwmark"):
        value = getattr(host, f)
        if value is not None:
            fields[f] = value
    return SmtpCheck(**fields, where=host.where)


register("TCP_CHECK", CheckerKind(TcpCheck, dict(COMMON_HANDLERS)))
register("PING_CHECK", CheckerKind(PingCheck, dict(COMMON_HANDLERS)))
register("SMTP_CHECK", CheckerKind(SmtpCheck, SMTP_TABLE))
register("DNS_CHECK", CheckerKind(DnsCheck, DNS_TABLE))
register("UDP_CHECK", CheckerKind(UdpCheck, UDP_TABLE, _udp_finish))
register("MISC_CHECK", CheckerKind(MiscCheck, MISC_TABLE, _needs("misc_path", "MISC_CHECK")))
register("FILE_CHECK", CheckerKind(FileCheck, FILE_TABLE, _file_finish))
register("BFD_CHECK", CheckerKind(BfdCheck, BFD_TABLE, _needs("name", "BFD_CHECK")))
