"""Helpers for the LVS parser tests: text -> Node tree -> Config, with or without the real lexer.

Until ``shared.config.lexer`` lands, a tiny brace lexer (no includes, no
parameters) builds the tree, recording each block's closing line as ``end_line``.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from shared.config.context import Context
from shared.config.diagnostics import Diagnostic
from shared.config.host import FakeHost, Host
from shared.config.model import Config
from shared.config.node import Node
from shared.config.parse import build


@dataclass(frozen=True, slots=True)
class BlockNode(Node):
    end_line: int = 0


def simple_tree(text: str, file: str = "t.conf") -> list[Node]:
    """Split ``{`` / ``}`` onto their own lines as keepalived does, then nest."""
    lines: list[tuple[int, list[str], str]] = []
    for number, raw in enumerate(text.splitlines(), 1):
        body = raw.split("#", 1)[0].split("!", 1)[0]
        for piece in body.replace("{", "\n{\n").replace("}", "\n}\n").split("\n"):
            words = shlex.split(piece, posix=True) if piece.strip() else []
            if words:
                lines.append((number, words, piece.strip()))
    nodes, _ = _nest(lines, 0, file)
    return nodes


def _nest(lines: list[tuple[int, list[str], str]], i: int, file: str) -> tuple[list[Node], int]:
    out: list[Node] = []
    while i < len(lines):
        number, words, piece = lines[i]
        if words == ["}"]:
            return out, i
        raw = piece[len(words[0]) :].strip()
        if i + 1 < len(lines) and lines[i + 1][1] == ["{"]:
            children, j = _nest(lines, i + 2, file)
            end = lines[j][0] if j < len(lines) else number
            out.append(BlockNode(words[0], tuple(words[1:]), file, number, raw, tuple(children), end))
            i = j + 1
        else:
            out.append(Node(words[0], tuple(words[1:]), file, number, raw))
            i += 1
    return out, i


def load_text(text: str, host: Host | None = None) -> tuple[Config, list[Diagnostic]]:
    ctx = Context(config_id="test")
    roots = simple_tree(text)
    config = build(ctx, roots, host if host is not None else FakeHost())
    return config, lvs_only(ctx.diagnostics.items)


def lvs_only(diags: list[Diagnostic]) -> list[Diagnostic]:
    """Drop what script.py reports about scripts themselves (security, paths): not the LVS parser's job."""
    return [d for d in diags if "script" not in d.message.lower()]


def lines_of(diags: list[Diagnostic]) -> list[int]:
    return sorted(d.line for d in lvs_only(diags))


def test_simple_tree_nests_and_records_end_lines() -> None:
    roots = simple_tree("a 1 {\n  b 2\n  c { d }\n}\n")
    assert roots[0].keyword == "a"
    assert roots[0].children is not None
    assert [c.keyword for c in roots[0].children] == ["b", "c"]
    assert isinstance(roots[0], BlockNode)
    assert roots[0].end_line == 4
