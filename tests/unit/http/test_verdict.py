"""The health verdict: 200 only when this node is known, now, to be what was asked."""

from __future__ import annotations

import pytest

from services.http.core.verdict import OK, UNAVAILABLE, UNKNOWN, verdict
from shared.events import VrrpState
from tests.nats.events_sample import instance

LIVE = {"bus_up": True, "vrrp_live": True}


@pytest.mark.parametrize(
    ("state", "backup", "status"),
    [
        (VrrpState.MASTER, False, OK),
        (VrrpState.BACKUP, False, UNAVAILABLE),
        (VrrpState.FAULT, False, UNAVAILABLE),
        (VrrpState.BACKUP, True, OK),
        (VrrpState.MASTER, True, UNAVAILABLE),
        (VrrpState.FAULT, True, UNAVAILABLE),
        (VrrpState.INIT, True, UNAVAILABLE),
        (VrrpState.STOP, False, UNAVAILABLE),
    ],
)
def test_state_decides_when_known(state: VrrpState, backup: bool, status: int) -> None:
    v = verdict(instance(state=state), configured=True, backup=backup, **LIVE)
    assert v.status == status and v.state == str(state)


def test_unknown_instance_is_404_known_without_state_is_503() -> None:
    assert verdict(None, configured=False, backup=False, **LIVE).status == UNKNOWN
    assert verdict(None, configured=False, backup=True, **LIVE).status == UNKNOWN
    assert verdict(None, configured=True, backup=False, **LIVE).status == UNAVAILABLE
    # published by the vrrp service but gone from keepalived.conf: still answered from the state
    assert verdict(instance(), configured=False, backup=False, **LIVE).status == OK


def test_a_master_state_nobody_vouches_for_is_503() -> None:
    """The bucket keeps the state of a process that died as MASTER: never two nodes answering 200."""
    master = instance(state=VrrpState.MASTER)
    dead = verdict(master, configured=True, backup=False, bus_up=True, vrrp_live=False)
    assert dead.status == UNAVAILABLE and "does not answer" in dead.reason
    blind = verdict(master, configured=True, backup=False, bus_up=False, vrrp_live=True)
    assert blind.status == UNAVAILABLE and "bus" in blind.reason


def test_body_says_why() -> None:
    event = instance(state=VrrpState.BACKUP)
    v = verdict(event, configured=True, backup=False, **LIVE)
    body = v.body("lb1", "VI_1", VrrpState.MASTER, event)
    assert body["healthy"] is False and body["state"] == "BACKUP" and body["want"] == "MASTER"
    assert body["vips"] == list(event.vips) and body["effective_priority"] == event.effective_priority
