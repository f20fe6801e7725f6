"""Problems found in a keepalived.conf, each pinned to the file and line that caused it.

keepalived's ``-t`` mode fails on anything it reports, warnings included, so an
error or a warning makes ``lifeline config check`` fail.  The split exists for
the services: a warning is something keepalived would also shrug off at run
time, an error is something it would drop or refuse, and a reload that produces
an error keeps the running configuration.  A *note* is what keepalived's ``-t``
stays silent about but an operator wants to hear (a script that does not exist,
a plain ``include`` that matched nothing): it is printed and never changes the
verdict, so ours stays keepalived's.
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


class Where(Protocol):
    """Anything that knows where in the configuration it came from."""

    @property
    def file(self) -> str: ...

    @property
    def line(self) -> int: ...


class Diagnostic(msgspec.Struct, frozen=True):
    file: str
    line: int
    severity: Severity
    message: str

    def __str__(self) -> str:
        place = f"{self.file}:{self.line}" if self.line else self.file
        return f"{place}: {self.severity.value}: {self.message}"


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
        """keepalived -t's verdict: anything but a note fails it."""
        return any(d.severity is not Severity.NOTE for d in self._items)

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
