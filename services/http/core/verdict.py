"""The health verdict a load balancer reads: 200 when this node is what was asked, 503 otherwise.

Patroni's convention (``/primary`` 200 on the leader, 503 elsewhere): a
health check needs nothing but the status code.  The verdict fails safe: it
is 200 only when the state is known *and* current: the bus is connected and
the node's vrrp service answers discovery.  Without that the last state in the
bucket may be the state of a process that died as MASTER, and two nodes would
both answer 200.  ``/health/<instance>/backup`` is 200 only in BACKUP: a node
in FAULT (or INIT, STOP) can take nothing over, so it is healthy for neither.
404 is for an instance neither the node's keepalived.conf nor the bucket knows:
a typo in a health-check URL must not look like a mere "not master".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.events import InstanceState, VrrpState

OK = 200
UNAVAILABLE = 503
UNKNOWN = 404


@dataclass(frozen=True)
class Verdict:
    status: int
    reason: str
    state: str | None = None

    def body(self, node: str, instance: str, want: VrrpState, event: InstanceState | None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "node": node,
            "instance": instance,
            "want": str(want),
            "state": self.state,
            "healthy": self.status == OK,
            "reason": self.reason,
        }
        if event is not None:
            out |= {
                "effective_priority": event.effective_priority,
                "base_priority": event.base_priority,
                "vips": list(event.vips),
                "since": event.ts,
            }
        return out


def verdict(
    event: InstanceState | None, *, configured: bool, backup: bool, bus_up: bool, vrrp_live: bool
) -> Verdict:
    """The answer for one instance on this node (``backup``: the ``/backup`` form)."""
    if event is None and not configured:
        return Verdict(UNKNOWN, "no such instance on this node")
    if not bus_up:
        return Verdict(UNAVAILABLE, "not connected to the bus: the state is unknown")
    if event is None:
        return Verdict(UNAVAILABLE, "no state published yet")
    state = str(event.state)
    if not vrrp_live:
        return Verdict(UNAVAILABLE, "the vrrp service of this node does not answer", state)
    want = VrrpState.BACKUP if backup else VrrpState.MASTER
    if event.state == want:
        return Verdict(OK, f"{state} since {event.reason}", state)
    return Verdict(UNAVAILABLE, f"{state}, not {want}", state)
