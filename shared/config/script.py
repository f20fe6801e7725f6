"""Script keywords (notify*, script, misc_path, quorum_up...): keepalived's quoted-string rules.

keepalived reads these with a richer tokenizer than other keywords: the first
word (usually double-quoted) is the command line, split for exec honouring
single quotes and backslash escapes; optional words after it name the user and
group the script runs as.
"""

from __future__ import annotations

import shlex

import msgspec

from shared.config.context import Context
from shared.config.node import Node


class Script(msgspec.Struct, frozen=True):
    command: str
    argv: list[str]
    user: str | None = None
    group: str | None = None


def parse_script(ctx: Context, node: Node) -> Script | None:
    """Parse ``node`` as a script keyword; report a missing or unsplittable command at its line."""
    if not node.args:
        ctx.error(node, f"'{node.keyword}' needs a script to run")
        return None
    command = node.args[0]
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        ctx.error(node, f"'{node.keyword}': cannot split script '{command}': {exc}")
        return None
    if not argv:
        ctx.error(node, f"'{node.keyword}' needs a script to run")
        return None
    user = node.args[1] if len(node.args) > 1 else None
    group = node.args[2].lstrip(":") if len(node.args) > 2 else None
    return Script(command=command, argv=argv, user=user, group=group)
