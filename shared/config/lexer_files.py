"""Reading configuration files so that no file can hang or exhaust the reader.

keepalived 2.2.7 reads only regular, non-executable files: anything else that
an ``include`` matches is skipped ("Configuration file '...' is not a regular
non-executable file - skipping", "... is a directory - skipping"), and plain
``include`` still passes ``keepalived -t`` while ``includer``/``includea``
fail it.  lifeline skips the same files, with the same verdicts (the caller
decides the severity from the include variant).  So ``/dev/zero``, a FIFO, a
socket or a directory is never read: each is refused on ``stat``, before any
``open``.

Beyond keepalived, which reads whatever it is given: every file is read with
a size cap, and all the files of one configuration share a budget of bytes
and of reads (an included file counts each time it is read).  Files that each
include the next one twice make 2^k reads; a budget turns that, or a huge
file, into one error at the ``include`` line instead of minutes of work or a
MemoryError.  The limits are far above any real configuration (thousands of
``conf.d`` files, a few MiB each).
"""

from __future__ import annotations

import enum
import os
import stat
from dataclasses import dataclass

MAX_FILE_BYTES = 16 << 20
"""One file: a keepalived.conf of 16 MiB is some 400,000 lines."""
MAX_TOTAL_BYTES = 64 << 20
"""Everything one configuration reads, includes counted each time (the lexer's line budget is 2 M)."""
MAX_FILE_READS = 10_000
"""Files opened for one configuration, the same file counted each time it is included."""
_CHUNK = 1 << 20


class Refusal(enum.Enum):
    """Why a file was not read, which decides the diagnostic's severity."""

    SKIPPED = "skipped"
    """keepalived skips it too: a note for ``include``, an error for ``includer``/``includea``."""
    LIMIT = "limit"
    """lifeline's size cap or budget: always an error (keepalived would hang or run out of memory)."""


@dataclass(frozen=True)
class Refused:
    """A file that was not read, and why (a phrase that follows the file's name)."""

    kind: Refusal
    reason: str


@dataclass
class ReadBudget:
    """What one configuration may still read: bytes and file reads."""

    bytes_left: int = MAX_TOTAL_BYTES
    reads_left: int = MAX_FILE_READS

    @property
    def exhausted(self) -> Refused | None:
        """The budget error once nothing more may be read, else None."""
        if self.reads_left <= 0:
            return Refused(
                Refusal.LIMIT, f"not read: the configuration read more than {MAX_FILE_READS} files"
            )
        if self.bytes_left <= 0:
            return Refused(Refusal.LIMIT, f"not read: the configuration read {MAX_TOTAL_BYTES >> 20} MiB")
        return None


def _not_plain(mode: int) -> str | None:
    """keepalived's test: a regular file without any execute bit; else what the file is."""
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    for test, what in kinds:
        if test(mode):
            return what
    if not stat.S_ISREG(mode):
        return "not a regular file"
    if mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH):
        return "executable"
    return None


def _skipped(what: str) -> Refused:
    return Refused(Refusal.SKIPPED, f"is {what}, not a regular non-executable file: skipped")


def _too_big(cap: int) -> Refused:
    if cap < MAX_FILE_BYTES:
        return Refused(Refusal.LIMIT, f"not read: the configuration would exceed {MAX_TOTAL_BYTES >> 20} MiB")
    return Refused(Refusal.LIMIT, f"is larger than {MAX_FILE_BYTES >> 20} MiB: not read")


def _read_at_most(fd: int, limit: int) -> bytes:
    """Up to ``limit`` bytes, never more, whatever the file claims (it may grow meanwhile)."""
    parts: list[bytes] = []
    got = 0
    while got < limit:
        chunk = os.read(fd, min(_CHUNK, limit - got))
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def read_config_file(path: str, budget: ReadBudget) -> str | Refused:
    """The text of ``path`` if it is a regular non-executable file within the budget; charged to it.

    ``stat`` decides before anything is opened (opening a FIFO waits for a
    writer; opening some devices acts on them); the descriptor is checked
    again with ``fstat`` (``O_NONBLOCK``, so a file swapped for a FIFO in
    between cannot hang the open).  Raises ``OSError`` when the file cannot
    be read at all, as ``open`` would.
    """
    spent = budget.exhausted
    if spent is not None:
        return spent
    budget.reads_left -= 1
    what = _not_plain(os.stat(path).st_mode)
    if what is not None:
        return _skipped(what)
    cap = min(MAX_FILE_BYTES, budget.bytes_left)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        opened = os.fstat(fd)
        what = _not_plain(opened.st_mode)
        if what is not None:
            return _skipped(what)
        if opened.st_size > cap:
            return _too_big(cap)
        data = _read_at_most(fd, cap + 1)
    finally:
        os.close(fd)
    if len(data) > cap:
        return _too_big(cap)
    budget.bytes_left -= len(data)
    return data.decode("utf-8", errors="replace")
