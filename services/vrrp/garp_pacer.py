"""The service's one GARP/NA pacer: the thin asyncio shell of ``core/garp_pacing.py``.

Pacing is per interface (or per ``garp_group``) for the whole service, as in
keepalived 2.2.7, not per instance: two instances announcing on one paced
interface share its pauses.  An announcement whose line is free goes out in
the caller's tick (a new master's first GARP never waits for the event loop);
the waiting ones go from a loop timer set to the moment a line frees.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from services.vrrp.core.garp_pacing import PacingQueue
from services.vrrp.kernel.announce import Announcer
from shared.addresses import IPAddress


@dataclass(frozen=True)
class _Waiting:
    announcer: Announcer
    ip: IPAddress
    on_sent: Callable[[int], None]


class GarpPacer:
    """Sends paced announcements now or when their line frees; forgets those whose VIPs went."""

    def __init__(self) -> None:
        self._queue: PacingQueue[_Waiting] = PacingQueue()
        self._timer: asyncio.TimerHandle | None = None

    def announce(
        self,
        line: Hashable,
        interval: float,
        *,
        owner: str,
        dev: str,
        announcer: Announcer,
        ip: IPAddress,
        order: int,
        on_sent: Callable[[int], None],
    ) -> None:
        """One GARP/NA of ``owner``'s VIP ``ip`` on ``dev``; ``on_sent(frames)`` counts it when it leaves."""
        loop = asyncio.get_running_loop()
        waiting = _Waiting(announcer, ip, on_sent)
        if self._queue.offer(loop.time(), line, interval, ident=(owner, dev, ip), item=waiting, order=order):
            on_sent(announcer.announce(ip))
        self._rearm(loop)

    def forget(self, owner: str, ips: set[IPAddress]) -> None:
        """``owner`` removed these VIPs (left MASTER, or a reload dropped them): their waiting ones go too."""
        if self._queue.drop(lambda ident: isinstance(ident, tuple) and ident[0] == owner and ident[2] in ips):
            self._rearm(asyncio.get_running_loop())

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _rearm(self, loop: asyncio.AbstractEventLoop) -> None:
        self.close()
        at = self._queue.next_due()
        if at is not None:
            self._timer = loop.call_at(at, self._flush, loop)

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        for waiting in self._queue.due(loop.time()):
            waiting.on_sent(waiting.announcer.announce(waiting.ip))
        self._rearm(loop)
