"""``include`` and its variants: csh-style braces, glob, and keepalived's include checks.

keepalived 2.2.7 (``lib/parser.c``, observed with ``keepalived -t``) counts,
while it globs, the files that are missing (a name without wildcards) and the
directories it cannot open (where a wildcard must be matched), then:

* nothing matched and something was missing: "Config files missing", a
  *brace_match* problem if the pattern has braces, else a *match* problem;
* nothing matched, nothing missing, wildcards used: "No config files matched",
  a *wildcard_match* problem;
* something matched and something was missing: "Some config files missing", a
  *brace_match* problem (then nothing at all is included);
* a matched file that cannot be read: a *read* problem.

A problem fails the configuration only under the checks in force: the include
variant's (``includer`` read, ``includem`` read+match, ``includew``
read+match+wildcard_match, ``includeb`` read+brace_match, ``includea`` all),
plus the global ``include_check``'s; plain ``include`` never fails it.

The global ``include_check`` (in ``global_defs``) adds its checks to every
include read after it, as keepalived applies it while it reads; the value in
force when an include line is read stays in force for the files it names and
comes back when they end (``include_check_set`` is keepalived's own rule).

Relative patterns are relative to the directory of the including file; we
join paths instead of changing the process's directory as keepalived does.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

VARIANTS: dict[str, frozenset[str]] = {
    "include": frozenset(),
    "includer": frozenset("r"),
    "includem": frozenset("rm"),
    "includew": frozenset("rmw"),
    "includeb": frozenset("rb"),
    "includea": frozenset("rmwb"),
}
INCLUDE_CHECKS: dict[str, str] = {"read": "r", "match": "m", "wildcard_match": "w", "brace_match": "b"}
"""``include_check`` words (2.2.7's: its man page says ``readable``) and their variant letters."""
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
    if not _wild(alternative):
        return [alternative] if os.path.lexists(alternative) else []
    try:
        return sorted(glob.glob(alternative))
    except (OSError, ValueError, RecursionError):
        return []


def _wild(text: str) -> bool:
    return any(c in text for c in _MAGIC)


def _missing(alternative: str) -> bool:
    """keepalived's missing_files / missing_directories: a plain name absent, or a directory to search absent.

    glob opens the directory that holds the first wildcard; if it cannot, the
    alternative counts as missing (not merely unmatched).
    """
    if not _wild(alternative):
        return not os.path.lexists(alternative)
    head = alternative[: min(alternative.find(c) for c in _MAGIC if c in alternative)]
    return not os.path.isdir(os.path.dirname(head) or ".")


def resolve(pattern: str, base_dir: str, checks: frozenset[str]) -> Resolved:
    """Expand ``pattern`` relative to ``base_dir``: the paths, and the problems ``checks`` make errors."""
    result = Resolved()
    full = pattern if os.path.isabs(pattern) or not base_dir else os.path.join(base_dir, pattern)
    missing = False
    for alternative in expand_braces(full):
        found = _matches(alternative)
        missing = missing or (not found and _missing(alternative))
        result.paths.extend(p for p in found if p not in result.paths)
    braces = "{" in pattern
    if not result.paths:
        if missing and ("b" if braces else "m") in checks:
            result.errors.append(f"Config files missing '{pattern}'")
        elif not missing and _wild(full) and "w" in checks:
            result.errors.append(f"No config files matched '{pattern}'")
    elif missing and "b" in checks:
        result.errors.append(f"Some config files missing: '{pattern}' (nothing of it is included)")
        result.paths = []
    return result


def include_check_set(current: frozenset[str], words: Sequence[str]) -> tuple[frozenset[str], list[str]]:
    """keepalived's ``include_check_set``: the checks after ``include_check WORDS``, and what it refuses.

    No word means every check.  A bare word sets ``read`` plus that check, but
    only as the first word ("Duplicate include_check" otherwise); ``+word``
    adds, ``-word`` removes; an unknown word is refused and skipped.
    """
    if not words:
        return frozenset("rmwb"), []
    checks, problems = set(current), []
    for index, word in enumerate(words):
        sign, name = (word[0], word[1:]) if word[:1] in "+-" else ("", word)
        if not sign:
            if index:
                problems.append(f"duplicate include_check '{word}' (ignored): only the first word may set")
                continue
            checks = set()
        flag = INCLUDE_CHECKS.get(name)
        if flag is None:
            problems.append(
                f"unknown include_check type '{name}' (ignored): expected {', '.join(INCLUDE_CHECKS)}"
            )
            continue
        if not sign:
            checks = {"r", flag}
        elif sign == "+":
            checks.add(flag)
        else:
            checks.discard(flag)
    return frozenset(checks), problems
