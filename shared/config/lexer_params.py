"""``$NAME=VALUE`` parameters and their expansion (keepalived.conf(5) "Parameter substitution").

Values are stored as written and expanded at use time, recursively, so a
later redefinition of an inner parameter changes what an outer one produces.
Expansion is textual and rescans what it inserted, like keepalived; bounds on
the number of substitutions and on the line length turn a self-referencing
definition into an error instead of a hang.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from shared.config.lexer_text import WS

NAME = r"[A-Za-z_][A-Za-z0-9_]*"
DEFINITION_RE = re.compile(rf"\$({NAME})=(.*)", re.DOTALL)
_REF_RE = re.compile(rf"\$(?:\{{([^}}]*)\}}|({NAME})(?=[{WS}]|$))")
_TRAILING_RE = re.compile(rf"\$(?:\{{({NAME})\}}|({NAME}))$")
_RANDOM_RE = re.compile(r"_RANDOM(?: +(\d+)(?: +(\d+))?)? *")
_ENV_RE = re.compile(rf"_ENV +({NAME}) *")

MAX_SUBSTITUTIONS = 2000
MAX_LINE_LENGTH = 100_000
RANDOM_MAX = 32767


@dataclass(frozen=True, slots=True)
class Param:
    """A definition: one line, or several for a ``\\``-continued one (used only alone on a line)."""

    lines: tuple[str, ...]
    multi: bool = False


@dataclass
class Params:
    """Every definition seen so far plus the predefined ``_`` names that depend on where we are."""

    instance: str = ""
    pwd: str = ""
    defs: dict[str, Param] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.Random)

    def define(self, name: str, value: str) -> None:
        self.defs[name] = Param((value.strip(WS),))

    def define_multi(self, name: str, lines: list[str]) -> None:
        self.defs[name] = Param(tuple(line for line in lines if line), multi=True)

    def multi_line(self, text: str) -> tuple[str, list[str]] | None:
        """The lines ``text`` becomes if it ends with a use of a multi-line parameter, else None.

        keepalived 2.2.7 expands a multi-line definition only at the end of a
        line: its first line joins the text before the reference, the others
        follow as lines of their own.  Anywhere else it is left as written.
        """
        m = _TRAILING_RE.search(text)
        if m is None:
            return None
        name = m.group(1) or m.group(2)
        param = self.defs.get(name)
        if param is None or not param.multi:
            return None
        head, lines = text[: m.start()], list(param.lines) or [""]
        return name, [head + lines[0], *lines[1:]]

    def value_of(self, ref: str) -> str | None:
        """The text that replaces ``$ref``/``${ref}``, or None to leave it untouched."""
        param = self.defs.get(ref)
        if param is not None:
            return None if param.multi else param.lines[0]
        return self._predefined(ref)

    def _predefined(self, ref: str) -> str | None:
        fixed = {"_PWD": self.pwd, "_INSTANCE": self.instance, "_HASH": "#", "_BANG": "!"}
        if ref in fixed:
            return fixed[ref]
        m = _RANDOM_RE.fullmatch(ref)
        if m is not None:
            lo = int(m.group(1)) if m.group(1) else 0
            hi = int(m.group(2)) if m.group(2) else RANDOM_MAX
            return str(self.rng.randint(min(lo, hi), max(lo, hi)))
        m = _ENV_RE.fullmatch(ref)
        if m is not None:
            return os.environ.get(m.group(1), "")
        return None

    def substitute(self, text: str, report: Callable[[str], None]) -> str:
        """Expand every defined ``$NAME`` (followed by whitespace or the end) and ``${...}``.

        Undefined references stay as written so that ``$`` in scripts survives.
        On runaway expansion ``report`` is told and the line is returned unexpanded.
        """
        out, i, count = text, 0, 0
        while (i := out.find("$", i)) >= 0:
            m = _REF_RE.match(out, i)
            value = None if m is None else self.value_of(m.group(1) if m.group(1) is not None else m.group(2))
            if m is None or value is None:
                i = i + 1 if m is None else m.end()
                continue
            out = out[:i] + value + out[m.end() :]
            count += 1
            if count > MAX_SUBSTITUTIONS or len(out) > MAX_LINE_LENGTH:
                report("parameter expansion does not end (a definition refers to itself?)")
                return text
        return out
