"""When to say that the bus fails, and how often (pure; the publisher logs what this returns).

A JetStream that refuses writes (store full, JetStream disabled) or a server
that does not answer makes every publish attempt fail, for minutes.  A log line
per attempt buries everything else, and none at all hides the outage; so an
*episode* is logged three times at most per ``summary_every``: when it starts
(with the first error), while it lasts (how many attempts failed), and when it
ends (how long it lasted).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class FailureEpisode:
    """Failed attempts of one kind of work (publishing); times in seconds of any monotonic clock."""

    what: str
    summary_every: float = 60.0
    failures: int = 0
    """Failed attempts in the current episode (0: working)."""
    total: int = 0
    """Failed attempts since the process started."""
    last_error: str = ""
    since: float | None = None
    _last_said: float = 0.0

    @property
    def failing(self) -> bool:
        return self.failures > 0

    def failed(self, now: float, error: str) -> str | None:
        """Count one failure; the message to log, if one is due."""
        self.failures += 1
        self.total += 1
        self.last_error = error
        if self.since is None:
            self.since = self._last_said = now
            return f"{self.what} fails ({error}); retrying, events wait in the outbox"
        if now - self._last_said >= self.summary_every:
            self._last_said = now
            lasted = now - self.since
            return f"{self.what} still fails after {self.failures} attempts in {lasted:.0f} s ({error})"
        return None

    def succeeded(self, now: float) -> str | None:
        """The work went through; the message to log when this ends an episode."""
        if self.since is None:
            return None
        message = f"{self.what} works again after {self.failures} failed attempts in {now - self.since:.0f} s"
        self.failures = 0
        self.since = None
        return message
