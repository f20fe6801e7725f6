"""``lvs_timeouts``: the kernel's IPVS connection timeouts while we run, its own values back at stop.

keepalived 2.2.7 (``ipvs_set_timeout`` in ``libipvs.c``), observed on Debian's
kernel: the first time it sets them it reads the kernel's values and keeps them
as the originals; a keyword left out (or 0) is sent as its original; a reload
without ``lvs_timeouts`` sends the originals back; and at stop (even with
``-I``, which only keeps the table) the originals go back.  The timeouts are
global to the network namespace, not per service, which is why they are put
back: another IPVS user on the host should not inherit ours.

Sans-IO: the caller reads the kernel (``current``) only when asked and sends
what ``on_config``/``on_stop`` return.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shared.config.model_global import LvsTimeouts


@dataclass(frozen=True)
class Timeouts:
    """Seconds, as ``ipvsadm -L --timeout`` shows them (tcp, tcpfin, udp)."""

    tcp: int
    tcpfin: int
    udp: int

    def __str__(self) -> str:
        return f"tcp {self.tcp} tcpfin {self.tcpfin} udp {self.udp}"


class TimeoutKeeper:
    """Remembers the kernel's own values from the first change on; says what to send and when."""

    def __init__(self) -> None:
        self.original: Timeouts | None = None
        self.current: Timeouts | None = None
        """What we last sent (None: the kernel has its own values)."""

    def on_config(self, wanted: LvsTimeouts | None, read: Callable[[], Timeouts]) -> Timeouts | None:
        """At start and at every reload: the values to send, or None to send nothing."""
        if wanted is None or not (wanted.tcp or wanted.tcpfin or wanted.udp):
            return self._restore()
        if self.original is None:
            self.original = read()
        base = self.original
        self.current = Timeouts(wanted.tcp or base.tcp, wanted.tcpfin or base.tcpfin, wanted.udp or base.udp)
        return self.current

    def on_stop(self) -> Timeouts | None:
        """At stop: the originals, if we ever changed them."""
        return self._restore()

    def _restore(self) -> Timeouts | None:
        if self.current is None or self.original is None:
            return None
        self.current = None
        return self.original
