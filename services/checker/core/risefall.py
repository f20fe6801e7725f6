"""keepalived's rise/fall counter for ``vrrp_script``, sans-IO.

The counter runs from 0 to ``rise + fall - 1``; the script is OK while the
counter is at least ``rise``.  A success counts up, a failure down, so an OK
script needs ``fall`` failures in a row to go KO and a KO one ``rise`` successes
to come back.  It starts at ``rise - 1`` (one success means OK) or at 0 with
``init_fail``; a baseline from the state KV starts it at either end instead, so
a new owner agrees with what was last published.
"""

from __future__ import annotations


class RiseFall:
    def __init__(
        self, rise: int, fall: int, *, init_fail: bool = False, baseline: bool | None = None
    ) -> None:
        self.rise = max(1, rise)
        self.fall = max(1, fall)
        self.top = self.rise + self.fall - 1
        if baseline is True:
            self.counter = self.top
        elif baseline is False or init_fail:
            self.counter = 0
        else:
            self.counter = self.rise - 1

    @property
    def ok(self) -> bool:
        return self.counter >= self.rise

    def feed(self, success: bool) -> bool:
        """Apply one result; return the state after it."""
        if success:
            self.counter = min(self.top, self.counter + 1)
        else:
            self.counter = max(0, self.counter - 1)
        return self.ok
