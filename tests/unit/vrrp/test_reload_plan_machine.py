"""``Reconfigure`` on the pure machine and inside a sync group (the scenario files cover the timelines)."""

from __future__ import annotations

from ipaddress import IPv4Address

import msgspec
import pytest

from services.vrrp.core.machine import VrrpMachine
from services.vrrp.core.machine_events import (
    AdvertReceived,
    PriorityChanged,
    Reconfigure,
    SetPriority,
    Start,
    StateChanged,
    Tick,
)
from services.vrrp.core.machine_types import InstanceParams, State
from services.vrrp.core.sync_group import MemberAction, SyncGroup

P = InstanceParams(name="VI_1", vrid=51, address=IPv4Address("10.0.0.1"), interface="eth0", vips=("v1",))


def master(params: InstanceParams = P, *, gated: bool = False) -> tuple[VrrpMachine, float]:
    m = VrrpMachine(params, gated=gated)
    m.handle(0.0, Start())
    now = m.next_deadline()
    assert now is not None
    m.handle(now, Tick())
    return m, now


@pytest.mark.parametrize(
    "change",
    [
        {"vrid": 52},
        {"interface": "eth1"},
        {"version": 3},
        {"address": IPv4Address("10.0.0.9")},
        {"priority": 255},
    ],
)
def test_identity_is_refused(change: dict[str, object]) -> None:
    m, now = master()
    with pytest.raises(ValueError, match="needs a restart"):
        m.handle(now, Reconfigure(params=msgspec.structs.replace(P, **change)))


def test_runtime_priority_override_survives_a_reload() -> None:
    """An operator's set_priority stays in force; the file's new priority waits for ``clear``."""
    m, now = master()
    m.handle(now, SetPriority(priority=200))
    m.handle(now + 0.1, Reconfigure(params=msgspec.structs.replace(P, priority=50)))
    assert (m.base_priority, m.effective_priority, m.state) == (200, 200, State.MASTER)
    m.handle(now + 0.2, SetPriority(priority=None))
    assert m.base_priority == 50


def test_unchanged_reconfigure_is_silent_and_keeps_the_deadline() -> None:
    m, now = master()
    deadline = m.next_deadline()
    assert m.handle(now + 0.2, Reconfigure(params=P)) == []
    assert m.next_deadline() == deadline and m.state is State.MASTER


def test_member_changed_in_place_keeps_its_group() -> None:
    """A sync-group member's priority changes under a running group: no transition anywhere."""
    p1 = msgspec.structs.replace(P, priority=150)
    p2 = msgspec.structs.replace(P, name="VI_2", vrid=52, priority=150)
    group = SyncGroup("G1", {"VI_1": VrrpMachine(p1, gated=True), "VI_2": VrrpMachine(p2, gated=True)})
    group.handle(0.0, "VI_1", Start())
    group.handle(0.0, "VI_2", Start())
    t = 0.0
    while group.state is not State.MASTER:
        t = group.next_deadline() or t + 1
        group.handle(t, "VI_1", Tick())
        group.handle(t, "VI_2", Tick())
    out = group.handle(t + 0.1, "VI_2", Reconfigure(params=msgspec.structs.replace(p2, priority=120)))
    assert out == [MemberAction("VI_2", PriorityChanged(150, 120))]
    out = group.handle(t + 0.2, "VI_2", AdvertReceived(src=IPv4Address("10.0.0.2"), priority=100))
    assert not any(isinstance(o, MemberAction) and isinstance(o.action, StateChanged) for o in out)
    assert group.state is State.MASTER
