"""Split-brain detection: a MASTER hearing another node claim the same VRID.

Why it is a signal of its own: the protocol resolves two masters silently (the
lower one yields on the next advert), so without this an operator never learns
that a partition happened.  Definition used here: while we are MASTER, any
advert with a priority above 0 from an address other than ours is another node
that also believes it is master (a backup never advertises; priority 0 is a
master leaving, not a competitor).  Every occurrence is counted; events are
rate-limited to one per ``min_interval`` per instance (each carries how many
occurrences it stands for), because two masters exchange adverts every
interval until one yields, and a misconfigured peer could flood.

Pure (the caller passes ``now``), so it is unit-tested without sockets.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.vrrp.core.machine_types import State
from shared.addresses import IPAddress

DEFAULT_MIN_INTERVAL = 10.0
"""Seconds between two split-brain events of one instance."""


@dataclass(frozen=True)
class Occurrence:
    """What to publish: the peer, the priorities, the running count and the occurrences folded in."""

    peer: IPAddress
    peer_priority: int
    own_priority: int
    count: int
    suppressed: int


class SplitBrainDetector:
    """Counts other masters' adverts seen while MASTER; says when an event is due."""

    def __init__(self, own: IPAddress, min_interval: float = DEFAULT_MIN_INTERVAL) -> None:
        self.own = own
        self.min_interval = min_interval
        self.count = 0
        self.last_peer: IPAddress | None = None
        self.last_at: float | None = None
        self._last_event: float | None = None
        self._suppressed = 0

    def observe(
        self, now: float, state: State, src: IPAddress, priority: int, own_priority: int
    ) -> Occurrence | None:
        """Call before the machine sees the advert; returns an occurrence when an event is due."""
        if state is not State.MASTER or priority == 0 or src == self.own:
            return None
        self.count += 1
        self.last_peer, self.last_at = src, now
        if self._last_event is not None and now - self._last_event < self.min_interval:
            self._suppressed += 1
            return None
        self._last_event = now
        suppressed, self._suppressed = self._suppressed, 0
        return Occurrence(src, priority, own_priority, self.count, suppressed)
