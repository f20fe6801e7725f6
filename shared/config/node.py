"""The lexer's output: a tree of keyword lines, every one knowing its file and line."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Node:
    """One logical configuration line, and the block that followed it if any.

    ``args`` are the whitespace-separated tokens after the keyword with double
    quotes removed.  ``raw`` is the rest of the line after the keyword exactly as
    written (parameters expanded, comment stripped), because keepalived parses
    script keywords (``notify_master``, ``script``, ``misc_path``...) with a
    different tokenizer that honours single quotes and backslash escapes.
    ``children`` is ``None`` for a line without a block and a tuple (maybe
    empty) for ``keyword ... { ... }``.  ``end_line`` is the line of the block's
    closing ``}`` (keepalived reports block-level problems, such as a checker
    without a URL, there); for a plain line it equals ``line``.
    """

    keyword: str
    args: tuple[str, ...]
    file: str
    line: int
    raw: str = ""
    children: tuple[Node, ...] | None = None
    end_line: int = 0

    @property
    def words(self) -> tuple[str, ...]:
        """The keyword and its arguments: list blocks (VIPs, e-mail addresses) are lines of words."""
        return (self.keyword, *self.args)
