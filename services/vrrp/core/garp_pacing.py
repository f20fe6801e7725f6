"""GARP/NA pacing as keepalived 2.2.7 does it: a rate limit per line, late announcements coalesced.

A *line* is what one pause protects: an interface, or every interface of one
``garp_group`` (their switch), and GARPs and NAs have a line each.  Seen on
the wire (docs/keepalived.md#gratuitous-arp-and-unsolicited-na):

* an announcement whose line is free leaves at once, and the line is busy for
  the interval after it;
* one that finds the line busy waits, and a VIP waits at most once: the
  repeats of a burst that find it already waiting add nothing (so a paced
  burst of 5 is 2 frames per VIP, the first one now and one later);
* waiting announcements leave in the instance's VIP order (not the order they
  came in), one per line each time the line frees.

Pure and clock-free (the shell passes ``now`` and sleeps until
:meth:`PacingQueue.next_due`); an interval of 0 is no pacing at all, which
the shell sends without asking.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class PacingQueue(Generic[T]):
    """Lines with the time each is next free, and the announcements waiting for them."""

    def __init__(self) -> None:
        self._free_at: dict[Hashable, float] = {}
        self._interval: dict[Hashable, float] = {}
        self._waiting: dict[tuple[Hashable, Hashable], tuple[int, T]] = {}
        """(line, identity) -> (order, item)."""

    def offer(
        self, now: float, line: Hashable, interval: float, *, ident: Hashable, item: T, order: int = 0
    ) -> bool:
        """True: send ``item`` now (the line is busy for ``interval`` after it); False: it waits.

        ``ident`` says which announcements are the same (owner, interface,
        address): one already waiting absorbs this one.  ``order`` (the VIP's
        place in its instance) decides which waiting one goes first.
        """
        self._interval[line] = interval
        if now >= self._free_at.get(line, now) and not self._has_waiting(line):
            self._free_at[line] = now + interval
            return True
        self._waiting.setdefault((line, ident), (order, item))
        return False

    def due(self, now: float) -> list[T]:
        """The waiting announcements to send now: the first (by order) of each free line."""
        out: list[T] = []
        served: set[Hashable] = set()
        for key in sorted(self._waiting, key=lambda k: self._waiting[k][0]):
            line = key[0]
            if line in served or now < self._free_at.get(line, now):
                continue
            served.add(line)
            out.append(self._waiting.pop(key)[1])
            self._free_at[line] = now + self._interval[line]
        return out

    def next_due(self) -> float | None:
        """When a waiting announcement's line is next free (None: nothing waits)."""
        lines = {line for line, _ in self._waiting}
        return min((self._free_at[line] for line in lines), default=None)

    def drop(self, unwanted: Callable[[Hashable], bool]) -> int:
        """Forget the waiting announcements whose identity is ``unwanted`` (their VIPs went); how many."""
        gone = [key for key in self._waiting if unwanted(key[1])]
        for key in gone:
            del self._waiting[key]
        return len(gone)

    def _has_waiting(self, line: Hashable) -> bool:
        return any(key[0] == line for key in self._waiting)
