"""What a reload does to the notifier's sinks: the pure difference between what runs and what is wanted.

Why by name and definition: a sink's name is its durable consumer
(``notifier_<name>``), and the consumer's ack floor is the record of what this
sink has delivered.  So a sink whose name stays keeps its consumer whatever
else changes: if its *definition* (what it would do with an event: scripts
and their users, mail settings, FIFO path and owner...) is equal it is kept
untouched, otherwise only the sink object behind the consumer is swapped.  A
name that appears is a new consumer, one that disappears a consumer to remove.

Definitions are plain values compared with ``==`` (``wiring`` builds them
without the file:line where things were configured, so moving a block in
keepalived.conf changes nothing).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class SinkChanges:
    """Sink names per verdict, each tuple in the order the names were given (wanted, then running)."""

    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()

    @property
    def noop(self) -> bool:
        return not (self.added or self.changed or self.removed)

    def summary(self) -> str:
        """The one line the runner prints after ``lifeline-notifier reloaded:``."""
        return (
            f"sinks: {len(self.added)} added, {len(self.changed)} changed, "
            f"{len(self.removed)} removed, {len(self.kept)} kept"
        )

    def details(self) -> str:
        """The names behind the counts, for the log: ``added vrrp_notify_fifo; changed script``."""
        parts = [
            f"{verdict} {', '.join(names)}"
            for verdict, names in (
                ("added", self.added),
                ("changed", self.changed),
                ("removed", self.removed),
                ("kept", self.kept),
            )
            if names
        ]
        return "; ".join(parts) or "no sinks"


def diff(running: Mapping[str, object], wanted: Mapping[str, object]) -> SinkChanges:
    """Compare the running sinks' definitions with the new configuration's, name by name."""
    added = tuple(name for name in wanted if name not in running)
    changed = tuple(name for name, want in wanted.items() if name in running and running[name] != want)
    kept = tuple(name for name, want in wanted.items() if name in running and running[name] == want)
    removed = tuple(name for name in running if name not in wanted)
    return SinkChanges(added=added, changed=changed, removed=removed, kept=kept)
