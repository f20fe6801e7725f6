"""Problems found in a keepalived.conf, each pinned to the file and line that caused it.

keepalived's ``-t`` mode fails on anything it reports, warnings included, so an
error or a warning makes ``lifeline config check`` fail.  The split exists for
the services: a warning is something keepalived would also shrug off at run
time, an error is something it would drop or refuse, and a reload that produces
an error keeps the running configuration.  A *note* is what keepalived's ``-t``
stays silent about but an operator wants to hear (a script that does not exist,
a plain ``include`` that matched nothing): it is printed and never changes the
verdict, so ours stays keepalived's.  A *compat* line is the same kind of
aside about lifeline itself: a keyword keepalived acts on and lifeline does not
(or only in part), reported from the support registry
(``shared.config.support``).  It prints as a warning, because the operator
should treat it as one, but it never changes the verdict, which stays
``keepalived -t``'s (``config check --strict-compat`` makes it an error).
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum
from typing import Protocol

import msgspec


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"
    COMPAT = "compat"

    @property
    def label(self) -> str:
        """The word printed after ``file:line:``: a compat line reads as the warning it is."""
        return Severity.WARNING.value if self is Severity.COMPAT else self.value

    @property
    def fails_check(self) -> bool:
        """keepalived -t's verdict: its errors and warnings fail it; notes and compat lines are ours."""
        return self in (Severity.ERROR, Severity.WARNING)


class Where(Protocol):
    """Anything that knows where in the configuration it came from."""

    @property
    def file(self) -> str: ...

    @property
    def line(self) -> int: ...


class Diagnostic(msgspec.Struct, frozen=True):
    """One problem at ``file:line``; a compat line's ``area`` says which service logs it."""

    file: str
    line: int
    severity: Severity
    message: str
    area: str | None = None

    def __str__(self) -> str:
        place = f"{self.file}:{self.line}" if self.line else self.file
        return f"{place}: {self.severity.label}: {self.message}"


class Diagnostics:
    """An ordered collector of problems, shared by every stage of loading."""

    def __init__(self) -> None:
        self._items: list[Diagnostic] = []

    def error(self, where: Where, message: str) -> None:
        self._items.append(Diagnostic(where.file, where.line, Severity.ERROR, message))

    def warning(self, where: Where, message: str) -> None:
        self._items.append(Diagnostic(where.file, where.line, Severity.WARNING, message))

    def note(self, where: Where, message: str) -> None:
        self._items.append(Diagnostic(where.file, where.line, Severity.NOTE, message))

    def add(self, diagnostic: Diagnostic) -> None:
        self._items.append(diagnostic)

    @property
    def items(self) -> list[Diagnostic]:
        return list(self._items)

    @property
    def fails_check(self) -> bool:
        """keepalived -t's verdict: errors and warnings fail it, notes and compat lines do not."""
        return any(d.severity.fails_check for d in self._items)

    @property
    def has_errors(self) -> bool:
        return any(d.severity is Severity.ERROR for d in self._items)

    def __iter__(self) -> Iterator[Diagnostic]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


class ConfigError(Exception):
    """The configuration cannot be used; carries every problem found, not just the first."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = diagnostics
        super().__init__("\n".join(str(d) for d in diagnostics))
