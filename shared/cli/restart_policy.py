"""When ``lifeline up`` starts a service again after it died: systemd's ``Restart=always``, with backoff.

Why restart at all: the services are independent on purpose — a checker that
crashes must not take the node's VIPs down with it (stopping vrrp would hand
every VIP to the peer).  Why back off: a service that dies at once again
(a file it cannot read, a port in use) must not spin; the delay doubles per
quick death up to a ceiling and starts over once a run lasted long enough to
count as healthy.  Pure: the supervisor passes the clock in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

FIRST_DELAY_S = 0.5
MAX_DELAY_S = 30.0
HEALTHY_AFTER_S = 60.0
"""A run this long resets the backoff (systemd's ``RestartSec`` grows the same way in practice)."""


@dataclass
class RestartPolicy:
    """One service's restart schedule."""

    first_delay: float = FIRST_DELAY_S
    max_delay: float = MAX_DELAY_S
    healthy_after: float = HEALTHY_AFTER_S
    started_at: float = 0.0
    restarts: int = 0
    _delay: float = field(default=0.0, repr=False)

    def started(self, now: float) -> None:
        """The service (re)started at ``now``."""
        self.started_at = now

    def exited(self, now: float) -> float:
        """The service died at ``now``: the instant to start it again."""
        if now - self.started_at >= self.healthy_after:
            self._delay = 0.0
        self._delay = self.first_delay if self._delay == 0.0 else min(self._delay * 2, self.max_delay)
        self.restarts += 1
        return now + self._delay


__all__ = ["RestartPolicy"]
