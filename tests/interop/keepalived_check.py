"""Run the real ``keepalived -t`` inside a namespace and turn its output into records.

keepalived 2.2.7's config test mode prints each problem on stderr as

* ``(FILE: Line N) message`` — FILE exactly as it was named: the ``-f``
  argument for the top file, the ``include`` argument (relative to the
  including file's directory) for included files;
* ``(Line N) message`` — no file: the first, parent-process pass over the
  top file (for example "Invalid smtp server", "Extra '}' found");
* ``message`` — no line at all: checks made after parsing (duplicate VRID,
  "SECURITY VIOLATION", "Non-existent interface specified ...").

It parses the configuration several times (parent, vrrp child, checker child),
so the same record repeats; records are de-duplicated here.  ``-t`` writes no
pid files (checked with strace), so no ``-p/-r/-c`` are needed.  Exit status:
0 clean, 5 for almost any reported problem, 6 for a script-security violation,
-11 (SIGSEGV) for some malformed checkers; only its zero-ness is meaningful.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from shared.lab.daemon import keepalived_binary
from shared.lab.netns import Namespace, run_in_namespace

KEEPALIVED_TIMEOUT = 60.0
_LINE_RE = re.compile(r"^\((?:(?P<file>[^()]*?): )?Line (?P<line>\d+)\)\s?(?P<message>.*)$")


@dataclass(frozen=True, order=True)
class Record:
    """One reported problem; ``line`` is 0 when the tool gave none, ``file`` "" when unknown."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file or '?'}:{self.line}: {self.message}" if self.line else self.message


@dataclass(frozen=True)
class Verdict:
    """What one tool said about one file: exit status, parsed records and the raw output."""

    returncode: int
    records: tuple[Record, ...]
    output: str

    @property
    def clean(self) -> bool:
        return self.returncode == 0


def parse_keepalived_output(text: str, top_file: str) -> tuple[Record, ...]:
    """Records from ``keepalived -t`` output, de-duplicated, in first-seen order.

    A "(Line N)" record without a file is attributed to ``top_file``: only the
    parent's pass over the top file prints it that way.
    """
    seen: dict[Record, None] = {}
    for raw in text.splitlines():
        text_line = raw.rstrip()
        if not text_line:
            continue
        match = _LINE_RE.match(text_line)
        if match:
            record = Record(match["file"] or top_file, int(match["line"]), match["message"].strip())
        else:
            record = Record("", 0, text_line.strip())
        seen.setdefault(record)
    return tuple(seen)


def run_keepalived_check(ns: Namespace | str, conf: Path, config_id: str | None = None) -> Verdict:
    """``keepalived -t -f CONF [-i ID]`` inside ``ns``, run from the config's directory.

    A missing top-level file makes keepalived exit 0 ("Config files missing"),
    so the file's existence is asserted here rather than trusted.
    """
    if not conf.is_file():
        raise AssertionError(f"{conf} does not exist; keepalived -t would call it clean")
    argv = [keepalived_binary(), "-t", "-f", str(conf)]  # none is a failure, not a skip: CI installs it
    if config_id is not None:
        argv += ["-i", config_id]
    proc = run_in_namespace(ns, argv, KEEPALIVED_TIMEOUT, cwd=conf.parent)
    output = proc.stderr + proc.stdout
    return Verdict(proc.returncode, parse_keepalived_output(output, str(conf)), output)
