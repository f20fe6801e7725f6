"""What a reload changes among the running checks (pure: no units, no asyncio, no bus).

Why a diff and never a restart of everything: a check's state is more than its
last result.  A real server's checker that has failed twice out of ``retry 3``,
a ``vrrp_script`` counter half-way between ``rise`` and ``fall``, a process
tracker counting down its ``terminate_delay``: restarting those would forget
where they stand, and the next result would be judged from scratch.  So a
reload compares, check by check, what runs with what the new file asks for.

Granularity: one *check* is a tracker (``track:<name>``) or one (virtual
server, real server) pair with all its checkers.  The pair, not the address
unit the replicas share (``rs:<ip>:<port>``): changing the checks of a real
server of one virtual server leaves the same address under another virtual
server, and every other real server, untouched.  The checkers of one pair go
together because they make one up/down verdict (``RealServerState``).

What counts as a change is the *fingerprint*: what the check runs and how it
is judged, without where it was written.  ``comparable`` drops every source
location (``Where``, ``Origin``, a script's file and line), so moving a block
or adding a comment above it is no change.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

import msgspec

from shared.config.model_lvs import Where
from shared.config.model_vrrp import Origin
from shared.config.script import Script

K = TypeVar("K", bound=Hashable)

LOCATION_FIELDS = frozenset({"lines", "end_line"})
"""Struct fields that only say where something was written (besides ``Where``/``Origin`` values)."""


def comparable(value: object) -> object:
    """``value`` as plain tuples, with every source location left out.

    Structs become ``(type name, (field, value)...)``, so two checker kinds
    with equal fields still differ; a ``Script`` is its command, argv, user and
    group (its ``file``/``line``/``keyword`` only point into the file).
    """
    if isinstance(value, Where | Origin):
        return None
    if isinstance(value, Script):
        return ("Script", value.command, tuple(value.argv), value.user, value.group)
    if isinstance(value, msgspec.Struct):
        fields = tuple(
            (name, comparable(getattr(value, name)))
            for name in value.__struct_fields__
            if name not in LOCATION_FIELDS
        )
        return (type(value).__name__, fields)
    if isinstance(value, list | tuple):
        return tuple(comparable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), comparable(v)) for k, v in value.items()))
    return value


@dataclass(frozen=True)
class CheckDiff(Generic[K]):
    """Check keys per fate, in file order (removed ones in the order they ran)."""

    added: tuple[K, ...] = ()
    removed: tuple[K, ...] = ()
    changed: tuple[K, ...] = ()
    kept: tuple[K, ...] = ()

    def summary(self) -> str:
        """The one line the runner prints and replies: ``2 added, 1 removed, 1 changed, 14 kept``."""
        return (
            f"{len(self.added)} added, {len(self.removed)} removed, "
            f"{len(self.changed)} changed, {len(self.kept)} kept"
        )


def diff(running: Mapping[K, object], wanted: Mapping[K, object]) -> CheckDiff[K]:
    """Compare fingerprints: a key only in ``wanted`` is added, only in ``running`` removed.

    A key in both is kept when its fingerprints are equal, else changed (the
    running check is replaced; the caller decides what the new one inherits).
    """
    added: list[K] = []
    changed: list[K] = []
    kept: list[K] = []
    for key, fingerprint in wanted.items():
        if key not in running:
            added.append(key)
        elif running[key] != fingerprint:
            changed.append(key)
        else:
            kept.append(key)
    removed = [key for key in running if key not in wanted]
    return CheckDiff(tuple(added), tuple(removed), tuple(changed), tuple(kept))


def fingerprint_of_checks(weight: int, checks: Iterable[tuple[object, object]]) -> object:
    """A real server's fingerprint: its configured weight and each (checker, target), in order.

    The weight is in because it is part of what the pair publishes (the
    effective weight of MISC/FILE checks is computed from it).
    """
    return (weight, tuple((comparable(checker), comparable(target)) for checker, target in checks))
