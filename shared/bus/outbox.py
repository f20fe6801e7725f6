"""A bounded, ordered in-memory queue for events waiting for the bus.

Why drop-oldest: the newest event is the one that tells where things stand now
(it also lands in the KV bucket), and a consumer still sees that something was
lost, because every event carries a per-publisher ``seq`` and the dropped ones
leave a gap.  Dropping the newest would leave the bus stuck on a stale state.
Drops are counted and logged once per overflow episode, never silent.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Generic, TypeVar

log = logging.getLogger("lifeline.bus")

T = TypeVar("T")


class Outbox(Generic[T]):
    """FIFO with a bound; ``put`` never blocks, ``get`` waits; the head stays "in flight" until ``done``."""

    def __init__(self, maxlen: int) -> None:
        if maxlen < 1:
            raise ValueError("outbox bound must be at least 1")
        self.maxlen = maxlen
        self.dropped = 0
        self._items: deque[T] = deque()
        self._inflight = False
        self._episode_drops = 0
        self._nonempty = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    def __len__(self) -> int:
        """Events waiting, not counting the one in flight."""
        return len(self._items)

    def put(self, item: T) -> T | None:
        """Append ``item``; when full, drop and return the oldest waiting item."""
        dropped: T | None = None
        if len(self._items) >= self.maxlen:
            dropped = self._items.popleft()
            self.dropped += 1
            if self._episode_drops == 0:
                log.warning("bus outbox full (%d events): dropping oldest until NATS is back", self.maxlen)
            self._episode_drops += 1
        self._items.append(item)
        self._nonempty.set()
        self._idle.clear()
        return dropped

    async def get(self) -> T:
        """Wait for and take the oldest item; the outbox is busy until ``done()``."""
        while not self._items:
            self._nonempty.clear()
            await self._nonempty.wait()
        self._inflight = True
        return self._items.popleft()

    def end_of_episode(self) -> int:
        """How many events an overflow episode dropped, once nothing waits any more (else 0).

        Called by the sender before ``done()``: what it publishes about the
        episode is queued before the outbox can look idle to ``flush``.
        """
        if self._items or not self._episode_drops:
            return 0
        log.warning("bus outbox drained; %d events were dropped by overflow", self._episode_drops)
        drops, self._episode_drops = self._episode_drops, 0
        return drops

    def done(self) -> None:
        """The item from ``get`` is finished (delivered or given up)."""
        self._inflight = False
        if not self._items:
            self._idle.set()

    @property
    def idle(self) -> bool:
        return not self._items and not self._inflight

    async def wait_idle(self) -> None:
        """Return once nothing waits and nothing is in flight."""
        await self._idle.wait()
