"""One log line per NATS outage, not one per reconnect attempt.

Why: nats-py calls the error callback at every failed attempt, every
``reconnect_wait`` (0.5 s), so a service logged 25 WARNING lines in 12 s for
one stopped nats-server.  An operator needs three facts: it went away (and
why), it is still away (once a minute, with the count), it came back (after
how long).  Pure: the caller passes the clock.
"""

from __future__ import annotations

from dataclasses import dataclass

REMIND_EVERY_S = 60.0


@dataclass
class OutageLog:
    """Decides which connection errors are worth a line; counts the others."""

    remind_every: float = REMIND_EVERY_S
    since: float | None = None
    """When the outage began (None: connected)."""
    failures: int = 0
    _last_line: float = 0.0

    def failed(self, now: float, why: str) -> str | None:
        """A failed attempt at ``now``: the line to log, or None to stay quiet."""
        self.failures += 1
        if self.since is None:
            self.since = now
            self._last_line = now
            return why
        if now - self._last_line >= self.remind_every:
            self._last_line = now
            return (
                f"still unreachable after {now - self.since:.0f} s ({self.failures} failed attempts): {why}"
            )
        return None

    def recovered(self, now: float) -> str | None:
        """Connected again: a summary of the outage, or None if there was none."""
        if self.since is None:
            return None
        line = f"back after {now - self.since:.1f} s ({self.failures} failed attempts)"
        self.since, self.failures = None, 0
        return line


__all__ = ["OutageLog"]
