"""When ``lifeline up`` starts a service again after it died: ``Restart=always`` with a low ceiling.

Why restart at all: the services are independent on purpose — a checker that
crashes must not take the node's VIPs down with it (stopping vrrp would hand
every VIP to the peer).  Why back off: a service that dies at once again
(a file it cannot read, a port in use) must not spin; the delay doubles per
quick death.

Why the ceiling is 2 s and never "give up": a dead notifier is a late notify
script, and keepalived runs ``notify_master`` within a second.  A 30 s
ceiling left a notifier crashing in a burst down at 29 of 30 probes.
systemd's answer to a burst is ``StartLimitIntervalSec=10s`` /
``StartLimitBurst=5``: the sixth quick start within 10 s puts the unit in
``failed`` and restarts stop until an operator acts.  That suits a unit an
operator is paged for; here the service that crashes is the one that must be
back for the next transition, so lifeline keeps restarting, and bounds the
cost instead: with the ceiling a crash loop is at most one start per 2 s
(a Python service starts in well under that), and a service that comes
back healthy is restarted after at most 2 s whatever happened before.  A run
of ``healthy_after`` (10 s, systemd's default start-limit window) starts the
schedule over.  Pure: the supervisor passes the clock in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

FIRST_DELAY_S = 0.2
MAX_DELAY_S = 2.0
"""The ceiling: a service that died is started again at most this long after."""
HEALTHY_AFTER_S = 10.0
"""A run this long resets the backoff (systemd's default ``StartLimitIntervalSec``)."""


@dataclass
class RestartPolicy:
    """One service's restart schedule and what an operator sees: ``restarts``, ``backoff``, ``last_exit``."""

    first_delay: float = FIRST_DELAY_S
    max_delay: float = MAX_DELAY_S
    healthy_after: float = HEALTHY_AFTER_S
    started_at: float = 0.0
    restarts: int = 0
    last_exit: int | None = None
    """The exit status of the last death (negative: killed by that signal), None before the first."""
    _delay: float = field(default=0.0, repr=False)

    def started(self, now: float) -> None:
        """The service (re)started at ``now``."""
        self.started_at = now

    def exited(self, now: float, status: int | None = None) -> float:
        """The service died at ``now`` with ``status``: the instant to start it again."""
        if now - self.started_at >= self.healthy_after:
            self._delay = 0.0
        self._delay = self.first_delay if self._delay == 0.0 else min(self._delay * 2, self.max_delay)
        self.restarts += 1
        self.last_exit = status
        return now + self._delay

    @property
    def backoff(self) -> float:
        """The delay the last death was given (0 before any)."""
        return self._delay


__all__ = ["RestartPolicy"]
