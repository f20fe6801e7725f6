"""Checker blocks inside real_server: the shared keywords and the table of checker kinds.

Each checker kind is a msgspec Struct (see ``model_lvs``) plus a keyword table.
keepalived gives MISC_CHECK only part of the common keywords and FILE_CHECK /
BFD_CHECK none of them; an out-of-place keyword is "unknown" there too.
"""

from __future__ import annotations

from collections.abc import Callable

from shared.config.context import Context, Handler, dispatch, require_block, set_flag, set_with
from shared.config.lvs_common import TIMING_HANDLERS, to_port, to_u32, where
from shared.config.model_lvs import Checker, RealServer
from shared.config.node import Node
from shared.config.values import to_ip

CONNECT_HANDLERS: dict[str, Handler] = {
    "connect_ip": set_with("connect_ip", to_ip),
    "connect_port": set_with("connect_port", to_port),
    "bindto": set_with("bindto", to_ip),
    "bind_port": set_with("bind_port", to_port),
    "bind_if": set_with("bind_if", str),
    "fwmark": set_with("fwmark", to_u32),
}

LATE_HANDLERS: dict[str, Handler] = {
    "retry": TIMING_HANDLERS["retry"],
    "delay_before_retry": TIMING_HANDLERS["delay_before_retry"],
    "warmup": TIMING_HANDLERS["warmup"],
    "delay_loop": TIMING_HANDLERS["delay_loop"],
    "alpha": set_flag("alpha"),
    "log_all_failures": set_flag("log_all_failures"),
}
"""What MISC_CHECK accepts of the common keywords (no address, port or connect_timeout)."""

COMMON_HANDLERS: dict[str, Handler] = {
    **CONNECT_HANDLERS,
    "connect_timeout": TIMING_HANDLERS["connect_timeout"],
    **LATE_HANDLERS,
}

Finisher = Callable[[Context, Node, Checker], bool]
"""Runs after a checker block is read; returns False when keepalived would drop the checker."""


class CheckerKind:
    """How to read one checker type: its Struct, its keywords, and its end-of-block checks."""

    def __init__(
        self,
        factory: Callable[[], Checker],
        table: dict[str, Handler],
        finisher: Finisher | None = None,
    ) -> None:
        self.factory = factory
        self.table = table
        self.finisher = finisher


KINDS: dict[str, CheckerKind] = {}


def register(keyword: str, kind: CheckerKind) -> None:
    KINDS[keyword] = kind


def parse_checker(ctx: Context, node: Node, rs: object) -> None:
    """A real_server handler for every checker keyword: read the block and attach the checker."""
    assert isinstance(rs, RealServer)
    if not require_block(ctx, node):
        return
    kind = KINDS[node.keyword]
    checker = kind.factory()
    checker.where = where(node)
    dispatch(ctx, node, kind.table, checker)
    if kind.finisher is None or kind.finisher(ctx, node, checker):
        rs.checkers.append(checker)
