"""Compat lines: one ``file:line`` line for each use of a keyword lifeline does not fully act on.

Why a pass of its own over the parsed tree rather than a call in every
handler: the handlers say what keepalived says, this says what lifeline does,
and the two must not be mixed up (a compat line never changes the verdict).
Each line carries its area, so a service logs only its own (``shared.runner``).
"""

from __future__ import annotations

from collections.abc import Iterable

from shared.config.blocks import uses
from shared.config.diagnostics import Diagnostic, Severity
from shared.config.node import Node
from shared.config.support.registry import Status
from shared.config.support.table import row


def compat_diagnostics(roots: Iterable[Node]) -> list[Diagnostic]:
    """One compat line per line of the file whose keyword is not *done*, in file order.

    A line that expands to several uses (a ``~SEQ`` loop) gets one line: the
    operator edits the line, not its expansions.
    """
    out: list[Diagnostic] = []
    seen: set[tuple[str, int, str, str]] = set()
    for use in uses(roots):
        support = row(use.block, use.keyword)
        if support is None or support.status is Status.DONE:
            continue
        node = use.node
        key = (node.file, node.line, use.block, use.keyword)
        if key in seen:
            continue
        seen.add(key)
        message = support.message(use.keyword)
        out.append(Diagnostic(node.file, node.line, Severity.COMPAT, message, area=support.area.value))
    return out


def in_areas(diagnostic: Diagnostic, areas: Iterable[str]) -> bool:
    """Whether a service claiming ``areas`` logs this diagnostic: all but the compat lines of other areas."""
    return diagnostic.severity is not Severity.COMPAT or diagnostic.area in set(areas)
