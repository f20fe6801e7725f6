"""``~SEQ(...)``, ``~SEQx(...)`` and ``~LST(...)`` line prefixes (keepalived.conf(5) "Sequence blocks").

A prefix turns the rest of its line into one line per value, with the loop
variable(s) bound as parameters.  Parsing is separate from expansion so the
reader can bind variables, recurse (prefixes nest), and restore them.
The rules follow keepalived 2.2.7 as observed: ``start`` defaults to 1 unless
``end`` is negative, a zero step or a step pointing away from ``end`` is
invalid, ``~LST`` values cannot contain whitespace, and a ``{...}`` value
group may be shorter than the variable group (missing ones are empty).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.config.lexer_params import NAME

_NAME_RE = re.compile(NAME)
_INT_RE = re.compile(r"([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")
PREFIXES = ("~SEQx(", "~SEQ(", "~LST(")
MAX_VALUES = 1_000_000


class LoopError(ValueError):
    """A malformed prefix; the message is what the user sees."""


@dataclass(frozen=True, slots=True)
class Loop:
    """Parsed prefix: the bindings to apply in turn, and the rest of the line they apply to."""

    names: tuple[str, ...]
    values: tuple[tuple[str, ...], ...]
    rest: str


def split_prefix(text: str) -> tuple[str, str] | None:
    """``("~SEQ(...)", rest)`` if ``text`` starts with a loop prefix, else None; raises if unclosed."""
    prefix = next((p for p in PREFIXES if text.startswith(p)), None)
    if prefix is None:
        return None
    depth = 0
    for i in range(len(prefix) - 1, len(text)):
        if text[i] in "({":
            depth += 1
        elif text[i] in ")}":
            depth -= 1
            if depth == 0 and text[i] == ")":
                return text[: i + 1], text[i + 1 :]
    raise LoopError(f"unterminated {prefix[:-1]} specification")


def parse_loop(head: str, rest: str) -> Loop:
    """Parse the ``~XXX(...)`` part produced by ``split_prefix``."""
    if head.startswith("~LST("):
        return _parse_list(head[5:-1], rest)
    hexa = head.startswith("~SEQx(")
    return _parse_seq(head[6 if hexa else 5 : -1], rest, hexa)


def _to_int(text: str) -> int:
    """strtol(..., 0) semantics: ``0x`` is hex, a leading ``0`` is octal."""
    m = _INT_RE.fullmatch(text)
    if m is None:
        raise LoopError(f"'{text}' is not a number")
    digits = m.group(2)
    base = 16 if digits[:2] in ("0x", "0X") else 8 if digits.startswith("0") else 10
    value = int(digits, base)
    return -value if m.group(1) == "-" else value


def _parse_seq(inner: str, rest: str, hexa: bool) -> Loop:
    parts = [p.strip() for p in inner.split(",")]
    if not 2 <= len(parts) <= 4 or not _NAME_RE.fullmatch(parts[0]):
        raise LoopError("~SEQ needs (var, [start, [step,]] end)")
    nums = [_to_int(p) for p in parts[1:]]
    end = nums[-1]
    start = nums[0] if len(nums) >= 2 else (-1 if end < 0 else 1)
    step = nums[1] if len(nums) == 3 else (1 if end >= start else -1)
    if step == 0 or (end - start) * step < 0:
        raise LoopError(f"~SEQ step {step} never gets from {start} to {end}")
    count = (end - start) // step + 1
    if count > MAX_VALUES:
        raise LoopError(f"~SEQ would produce {count} lines")
    values = range(start, start + count * step, step)
    text = [format(v, "x") if hexa else str(v) for v in values]
    return Loop((parts[0],), tuple((t,) for t in text), rest)


def _parse_list(inner: str, rest: str) -> Loop:
    inner = inner.strip()
    if inner.startswith("{"):
        return _parse_groups(inner, rest)
    parts = [p.strip() for p in inner.split(",")]
    if len(parts) < 2 or not _NAME_RE.fullmatch(parts[0]):
        raise LoopError("~LST needs (var, value, ...)")
    if any(any(c.isspace() for c in p) for p in parts[1:]):
        raise LoopError("~LST values cannot contain spaces")
    return Loop((parts[0],), tuple((p,) for p in parts[1:]), rest)


def _parse_groups(inner: str, rest: str) -> Loop:
    groups = re.findall(r"\{([^{}]*)\}", inner)
    skeleton = re.sub(r"\{[^{}]*\}", "G", inner)
    if len(groups) < 2 or re.fullmatch(r"G(\s*,\s*G)*", skeleton) is None:
        raise LoopError("~LST needs ({var, ...}, {value, ...}, ...)")
    names = tuple(n.strip() for n in groups[0].split(","))
    if not all(_NAME_RE.fullmatch(n) for n in names):
        raise LoopError("~LST variable names must be parameter names")
    rows: list[tuple[str, ...]] = []
    for group in groups[1:]:
        values = [v.strip() for v in group.split(",")]
        if len(values) > len(names):
            raise LoopError("~LST specification has too many values")
        rows.append(tuple(values) + ("",) * (len(names) - len(values)))
    return Loop(names, tuple(rows), rest)
