"""``include`` and its variants: csh-style braces, glob, and keepalived's include checks.

keepalived 2.2.7, observed with ``keepalived -t``:

* plain ``include`` never fails the configuration, whatever matched;
* ``includem`` (match): a pattern without wildcards that names no file is an error;
* ``includew`` (wildcard_match): a pattern that matched nothing at all is an error;
* ``includeb`` (brace_match): a brace alternative without wildcards that names no file is an error;
* ``includer`` (readable): a matched file that cannot be read is an error;
* ``includea``: all of the above.

Relative patterns are relative to the directory of the including file; we
join paths instead of changing the process's directory as keepalived does.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field

VARIANTS: dict[str, frozenset[str]] = {
    "include": frozenset(),
    "includer": frozenset("r"),
    "includem": frozenset("m"),
    "includew": frozenset("w"),
    "includeb": frozenset("b"),
    "includea": frozenset("rmwb"),
}
MAX_ALTERNATIVES = 1000
_MAGIC = "*?["


@dataclass
class Resolved:
    """The files to read, in order, and the problems that the variant's checks make errors."""

    paths: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def expand_braces(pattern: str) -> list[str]:
    """csh-style ``{a,b{c,d}}`` expansion, left to right, as glob(GLOB_BRACE) does.

    An unmatched ``{`` is taken literally.  The result is capped so that a
    pathological pattern cannot explode.
    """
    start = pattern.find("{")
    if start < 0:
        return [pattern]
    depth, parts, last = 0, [], start + 1
    for i in range(start, len(pattern)):
        c = pattern[i]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                parts.append(pattern[last:i])
                head, tail = pattern[:start], pattern[i + 1 :]
                out: list[str] = []
                for part in parts:
                    out.extend(expand_braces(head + part + tail))
                    if len(out) >= MAX_ALTERNATIVES:
                        return out[:MAX_ALTERNATIVES]
                return out
        elif c == "," and depth == 1:
            parts.append(pattern[last:i])
            last = i + 1
    return [pattern]


def _matches(alternative: str) -> list[str]:
    if "\0" in alternative:
        return []
    if not any(c in alternative for c in _MAGIC):
        return [alternative] if os.path.lexists(alternative) else []
    try:
        return sorted(glob.glob(alternative))
    except (OSError, ValueError, RecursionError):
        return []


def resolve(pattern: str, base_dir: str, checks: frozenset[str]) -> Resolved:
    """Expand ``pattern`` relative to ``base_dir`` into existing paths and check errors."""
    result = Resolved()
    full = pattern if os.path.isabs(pattern) or not base_dir else os.path.join(base_dir, pattern)
    brace_missing = False
    for alternative in expand_braces(full):
        found = _matches(alternative)
        if not found and not any(c in alternative for c in _MAGIC):
            brace_missing = True
        result.paths.extend(p for p in found if p not in result.paths)
    wild = any(c in pattern for c in _MAGIC)
    if not result.paths and ("w" in checks or ("m" in checks and not wild)):
        what = "No config files matched" if wild else "Config files missing"
        result.errors.append(f"{what} '{pattern}'")
    elif brace_missing and "b" in checks and "{" in pattern:
        result.errors.append(f"Some config files missing: '{pattern}'")
    return result
