"""What the http service knows: the newest state entry per key, and the last transitions.

Why newest by timestamp and not by arrival: the service reads the state
bucket once (a snapshot) while it already follows the live events, so the
same entry can arrive twice and an old one after a new one; keeping the
entry with the larger ``ts`` makes the order of the two reads irrelevant.
Pure: the shell feeds it entries, the tests feed it the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from shared.cli.fleet import StateEntry
from shared.events import GroupState, InstanceState

TRANSITIONS_KEPT: Final = 50
"""Transitions the page lists (newest first); older ones are in the event stream (``lifeline events``)."""

TRANSITION_KINDS: Final = ("vrrp.state", "vrrp.group")


@dataclass
class Model:
    entries: dict[str, StateEntry] = field(default_factory=dict)
    transitions: list[dict[str, Any]] = field(default_factory=list)
    """Newest first: instance and group transitions with their reasons."""

    def apply(self, entry: StateEntry) -> bool:
        """Keep ``entry`` if it is newer than what is known for its key; True when it was kept."""
        seen = self.entries.get(entry.key)
        if seen is not None and seen.event.ts >= entry.event.ts:
            return False
        self.entries[entry.key] = entry
        if entry.kind in TRANSITION_KINDS:
            self._transition(entry)
        return True

    def _transition(self, entry: StateEntry) -> None:
        event = entry.event
        assert isinstance(event, InstanceState | GroupState)
        row = {
            "node": entry.node,
            "kind": "instance" if isinstance(event, InstanceState) else "group",
            "name": " ".join(entry.names),
            "state": str(event.state),
            "previous": None if event.previous is None else str(event.previous),
            "reason": str(event.reason),
            "detail": event.detail,
            "ts": event.ts,
        }
        self.transitions = sorted([row, *self.transitions], key=lambda r: -int(r["ts"]))[:TRANSITIONS_KEPT]

    def instance(self, node: str, instance: str) -> InstanceState | None:
        """The newest known state of ``instance`` on ``node``."""
        for entry in self.entries.values():
            if entry.kind == "vrrp.state" and entry.node == node and entry.names == (instance,):
                assert isinstance(entry.event, InstanceState)
                return entry.event
        return None

    def of_node(self, node: str) -> list[StateEntry]:
        return [e for e in self.entries.values() if e.node == node]

    def sorted_entries(self) -> list[StateEntry]:
        return sorted(self.entries.values(), key=lambda e: (e.node, e.kind, e.names))


def transition_json(model: Model) -> list[dict[str, Any]]:
    """The transitions as JSON-ready builtins (a copy: the page's list cannot change under a writer)."""
    return [dict(r) for r in model.transitions]
