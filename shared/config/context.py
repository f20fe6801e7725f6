"""The small machinery every block parser shares: diagnostics at a node, typed values, dispatch.

A block parser is a table from keyword to handler; ``dispatch`` walks a block's
children, calls the handler for each, and warns about unknown keywords exactly
where keepalived would ("Unknown keyword").  Handlers get the node and the
struct being filled, so most of them are one-line uses of the factories below.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from shared.config.diagnostics import Diagnostics
from shared.config.host import Host, NoHost
from shared.config.node import Node
from shared.config.values import BadValue, to_bool, to_int, to_timer

T = TypeVar("T")
V = TypeVar("V")
Handler = Callable[["Context", Node, Any], None]


@dataclass
class Context:
    """State shared by one load: where problems go, which ``@id`` lines count, the host checked against.

    keepalived looks at the host while it parses (a script's user must exist
    when its block closes, or later references to it fail), so parsers may ask
    ``host`` too; ``NoHost`` answers yes to everything.
    """

    diagnostics: Diagnostics = field(default_factory=Diagnostics)
    config_id: str = ""
    host: Host = field(default_factory=NoHost)

    def error(self, node: Node, message: str) -> None:
        self.diagnostics.error(node, message)

    def warning(self, node: Node, message: str) -> None:
        self.diagnostics.warning(node, message)

    def note(self, node: Node, message: str) -> None:
        self.diagnostics.note(node, message)

    def value(self, node: Node, convert: Callable[[str], V], index: int = 0) -> V | None:
        """Convert ``node.args[index]``; on failure report what was expected and return None."""
        if index >= len(node.args):
            self.error(node, f"'{node.keyword}' needs a value")
            return None
        try:
            return convert(node.args[index])
        except BadValue as exc:
            self.error(node, f"invalid value for '{node.keyword}': expected {exc}")
            return None


def dispatch(ctx: Context, block: Node, table: Mapping[str, Handler], target: object) -> None:
    """Apply each child of ``block`` to ``target`` through ``table``; unknown keywords warn."""
    for child in block.children or ():
        handler = table.get(child.keyword)
        if handler is None:
            ctx.warning(child, f"unknown keyword '{child.keyword}' in {block.keyword} (ignored)")
            continue
        handler(ctx, child, target)


def set_with(attr: str, convert: Callable[[str], object]) -> Handler:
    """The common handler: convert the first word, store it; a bad word is reported and the old value kept."""

    def handle(ctx: Context, node: Node, target: object) -> None:
        value = ctx.value(node, convert)
        if value is not None:
            setattr(target, attr, value)

    return handle


def set_parsed(attr: str, parse: Callable[[Context, Node], object]) -> Handler:
    """A keyword with a parser of its own, which reports problems and answers None (the old value stays)."""

    def handle(ctx: Context, node: Node, target: object) -> None:
        value = parse(ctx, node)
        if value is not None:
            setattr(target, attr, value)

    return handle


def set_int(attr: str, lo: int | None = None, hi: int | None = None) -> Handler:
    return set_with(attr, lambda w: to_int(w, lo, hi))


def set_timer(attr: str, lo: float | None = None, hi: float | None = None) -> Handler:
    return set_with(attr, lambda w: to_timer(w, lo, hi))


def set_flag(attr: str) -> Handler:
    """A bare keyword means true; an optional <BOOL> may say otherwise (a bad one is reported, ignored)."""

    def handle(ctx: Context, node: Node, target: object) -> None:
        if not node.args:
            setattr(target, attr, True)
            return
        value = ctx.value(node, to_bool)
        if value is not None:
            setattr(target, attr, value)

    return handle


def set_bare_flag(attr: str) -> Handler:
    """A flag keepalived sets whatever follows it (``enable_dbus no`` still enables D-Bus)."""

    def handle(ctx: Context, node: Node, target: object) -> None:
        setattr(target, attr, True)

    return handle


def set_str(attr: str) -> Handler:
    def handle(ctx: Context, node: Node, target: object) -> None:
        if not node.args:
            ctx.error(node, f"'{node.keyword}' needs a value")
            return
        setattr(target, attr, node.args[0])

    return handle


def require_block(ctx: Context, node: Node) -> bool:
    """keepalived's "Missing '{' at beginning of configuration block"."""
    if node.children is None:
        ctx.error(node, f"'{node.keyword}' expects a block: missing '{{'")
        return False
    return True
