"""One bus scrape serves every ``/metrics`` GET that comes within a second of it.

Why: a scrape reads the whole KV state and asks every service's status
endpoint, so an endpoint that scraped per GET would let anyone who can reach it
(or two Prometheus replicas, or a dashboard's refresh) turn requests into bus
load.  Concurrent GETs share the scrape in flight, and a finished result is
served again for ``SCRAPE_CACHE_SECONDS``: far below any Prometheus scrape
interval, so a single Prometheus always sees fresh data.  A failed scrape is
not kept: the next GET tries again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

SCRAPE_CACHE_SECONDS = 1.0
"""How long a scrape result is served again (from when it was taken)."""

Scrape = Callable[[], Awaitable[str]]


class ScrapeCache:
    """Wraps a scrape: callable like it, but runs it at most once per ``ttl`` s and once at a time."""

    def __init__(
        self, scrape: Scrape, ttl: float = SCRAPE_CACHE_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.scrape = scrape
        self.ttl = ttl
        self.clock = clock
        self.scrapes = 0
        """How many times the wrapped scrape ran (the tests count them)."""
        self._result: str | None = None
        self._taken_at = 0.0
        self._in_flight: asyncio.Future[str] | None = None

    async def __call__(self) -> str:
        if self._result is not None and self.clock() - self._taken_at < self.ttl:
            return self._result
        if self._in_flight is None:
            self._in_flight = asyncio.ensure_future(self._run())
            self._in_flight.add_done_callback(_retrieve)
        # shield: one caller giving up (a client gone) must not cancel the others' scrape
        return await asyncio.shield(self._in_flight)

    async def _run(self) -> str:
        self.scrapes += 1
        try:
            text = await self.scrape()
            self._result, self._taken_at = text, self.clock()
            return text
        finally:
            self._in_flight = None


def _retrieve(future: asyncio.Future[str]) -> None:
    """Mark a failure as seen even when every waiter has gone (no "never retrieved" warning)."""
    if not future.cancelled():
        future.exception()
