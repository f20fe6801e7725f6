"""Small shared pieces of the vrrp parsers: list blocks, tracker references, block end lines.

keepalived reports some problems (a ``vrrp_script`` without ``script``...) when
it reaches the closing brace of a block, so diagnostics about a whole block go
to its end line.
"""

from __future__ import annotations

from shared.config.context import Context
from shared.config.model_vrrp import Origin, TrackedInterface, TrackRef
from shared.config.node import Node
from shared.config.values import BadValue, to_int


def origin(node: Node) -> Origin:
    return Origin(node.file, node.line)


def end_line(node: Node) -> int:
    """The line of a block's closing ``}`` (the lexer records it); a plain line's own line."""
    return node.end_line or node.line


def block_end(node: Node) -> Origin:
    return Origin(node.file, end_line(node))


def list_lines(ctx: Context, node: Node) -> tuple[Node, ...]:
    """The lines of a list block (``group { VI_1 VI_2 }``); a missing block is reported."""
    if node.children is None:
        ctx.error(node, f"'{node.keyword}' expects a block: missing '{{'")
        return ()
    return node.children


def parse_weight(
    ctx: Context, node: Node, words: tuple[str, ...], limit: int, owner: str
) -> tuple[int | None, bool | None, bool]:
    """``weight N [reverse|noreverse]`` after a name; returns (weight, reverse, ok)."""
    weight: int | None = None
    reverse: bool | None = None
    index = 0
    while index < len(words):
        word = words[index]
        if word == "weight":
            if index + 1 >= len(words):
                ctx.error(node, f"{owner}: 'weight' needs a number in -{limit}..{limit}")
                return None, None, False
            try:
                weight = to_int(words[index + 1], -limit, limit)
            except BadValue as exc:
                ctx.error(node, f"{owner}: invalid weight: expected {exc} (ignored)")
                return None, None, False
            index += 2
            continue
        if word == "reverse":
            reverse = True
        elif word in ("noreverse", "no_reverse"):
            reverse = False
        else:
            ctx.error(node, f"{owner}: unknown word '{word}': expected 'weight N' and/or 'reverse'")
        index += 1
    return weight, reverse, True


def track_refs(ctx: Context, node: Node, into: list[TrackRef], limit: int, what: str) -> None:
    """A ``track_script`` / ``track_process`` / ``track_file`` / ``track_bfd`` block; duplicates ignored."""
    seen = {ref.name for ref in into}
    for line in list_lines(ctx, node):
        name = line.keyword
        weight, reverse, ok = parse_weight(ctx, line, line.args, limit, f"{what} {name}")
        if not ok:
            continue
        if name in seen:
            ctx.error(line, f"duplicate {what} '{name}' (ignored)")
            continue
        seen.add(name)
        into.append(TrackRef(name=name, weight=weight, reverse=reverse, origin=origin(line)))


def track_interfaces(ctx: Context, node: Node, into: list[TrackedInterface]) -> None:
    seen = {item.name for item in into}
    for line in list_lines(ctx, node):
        weight, reverse, ok = parse_weight(ctx, line, line.args, 253, f"track_interface {line.keyword}")
        if not ok:
            continue
        if line.keyword in seen:
            ctx.error(line, f"duplicate track_interface '{line.keyword}' (ignored)")
            continue
        seen.add(line.keyword)
        into.append(
            TrackedInterface(
                name=line.keyword, weight=weight or 0, reverse=bool(reverse), origin=origin(line)
            )
        )
