"""Property tests for the VRRP machine: invariants under arbitrary input sequences.

The scenarios pin exact behaviour; these check that no sequence of inputs can
break the invariants the IO shell relies on (VIPs only with MASTER, deadlines
never in the past, only legal transitions) and that a simulated LAN of
machines converges on the single highest (priority, address) master.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from hypothesis import given, settings
from hypothesis import strategies as st

from services.vrrp.core.machine import TRANSITIONS, VrrpMachine
from services.vrrp.core.machine_events import (
    Action,
    AddVips,
    AdvertReceived,
    Input,
    LinkChanged,
    RemoveVips,
    SendAdvert,
    Start,
    StateChanged,
    Stop,
    Tick,
    TrackerChanged,
)
from services.vrrp.core.machine_types import GarpParams, InstanceParams, State, TrackerSpec

ADDRESSES = [ipaddress.IPv4Address(f"10.0.0.{n}") for n in (1, 2, 3)]
NAMES = ["t0", "t1", "t2"]

trackers = st.lists(
    st.builds(
        TrackerSpec,
        name=st.sampled_from(NAMES),
        kind=st.sampled_from(["script", "process", "file", "interface"]),
        weight=st.integers(-254, 254) | st.just(0),
        reverse=st.booleans(),
        init_fail=st.booleans(),
    ),
    max_size=3,
)


@st.composite
def params(draw: st.DrawFn) -> InstanceParams:
    version: Literal[2, 3] = draw(st.sampled_from([2, 3]))
    interval = 100 * draw(st.integers(1, 3)) if version == 2 else draw(st.integers(10, 300))
    return InstanceParams(
        name="VI_1",
        vrid=1,
        address=ADDRESSES[0],
        interface="eth0",
        version=version,
        priority=draw(st.sampled_from([1, 50, 100, 200, 254, 255])),
        advert_int_cs=interval,
        initial_state=draw(st.sampled_from(["MASTER", "BACKUP"])),
        nopreempt=draw(st.booleans()),
        preempt_delay=draw(st.sampled_from([0.0, 2.0])),
        vips=("10.0.0.100/24",),
        trackers=tuple(draw(trackers)),
        dont_track_primary=draw(st.booleans()),
        garp=GarpParams(master_refresh=draw(st.sampled_from([0.0, 1.5])), lower_prio_delay=2.0),
        lower_prio_no_advert=draw(st.booleans()),
        higher_prio_send_advert=draw(st.booleans()),
    )


inputs: st.SearchStrategy[Input] = st.one_of(
    st.just(Tick()),
    st.just(Start()),
    st.builds(
        AdvertReceived,
        src=st.sampled_from(ADDRESSES),
        priority=st.sampled_from([0, 1, 50, 100, 150, 254, 255]),
        interval_cs=st.sampled_from([10, 50, 100, 200]),
    ),
    st.builds(
        TrackerChanged, name=st.sampled_from(NAMES), ok=st.booleans(), value=st.none() | st.integers(-5, 5)
    ),
    st.builds(LinkChanged, interface=st.sampled_from(["eth0", "t0", "t1"]), up=st.booleans()),
)
timeline = st.lists(st.tuples(st.floats(0, 4, allow_nan=False), inputs), max_size=40)


class Checker:
    """Replays actions and asserts the shell-facing invariants after every call."""

    def __init__(self, machine: VrrpMachine) -> None:
        self.machine = machine
        self.state = machine.state
        self.vips_held = False
        self.last_call = 0.0

    def call(self, now: float, event: Input) -> list[Action]:
        assert now >= self.last_call
        self.last_call = now
        actions = self.machine.handle(now, event)
        self.check(now, actions)
        return actions

    def check(self, now: float, actions: list[Action]) -> None:
        changes = [a for a in actions if isinstance(a, StateChanged)]
        for change in changes:
            assert change.old is self.state, "StateChanged.old must be the previous state"
            assert (change.old, change.new) in TRANSITIONS
            self.state = change.new
        assert self.state is self.machine.state
        for action in actions:
            if isinstance(action, AddVips):
                assert not self.vips_held
                assert any(c.new is State.MASTER for c in changes), "AddVips without a StateChanged to MASTER"
                self.vips_held = True
            elif isinstance(action, RemoveVips):
                self.vips_held = False
            elif isinstance(action, SendAdvert) and action.priority == 0:
                assert any(c.old is State.MASTER for c in changes)
        assert self.vips_held == (self.state is State.MASTER)
        deadline = self.machine.next_deadline()
        assert deadline is None or deadline > now, "a due deadline was left unfired"
        if self.state in (State.MASTER, State.BACKUP):
            assert deadline is not None, "MASTER and BACKUP always have a timer armed"
        if self.state in (State.FAULT, State.STOPPED, State.INIT):
            assert deadline is None
        prio = self.machine.effective_priority
        base = self.machine.params.priority
        assert prio == 255 if base == 255 else 1 <= prio <= 254


@settings(max_examples=150, deadline=None)
@given(params(), timeline, st.booleans())
def test_invariants_hold_for_any_input_sequence(
    p: InstanceParams, steps: list[tuple[float, Input]], stop: bool
) -> None:
    machine = VrrpMachine(p)
    checker = Checker(machine)
    now = 0.0
    checker.call(now, Start())
    for delta, event in steps:
        horizon = now + delta
        while (deadline := machine.next_deadline()) is not None and deadline <= horizon:
            now = deadline
            checker.call(now, Tick())
        now = horizon
        checker.call(now, event)
    if stop:
        checker.call(now, Stop())
        assert machine.state is State.STOPPED and not checker.vips_held
        assert machine.next_deadline() is None


def _lan(priorities: list[int], version: int, until: float) -> list[VrrpMachine]:
    """Run machines on a lossless zero-delay segment: every advert reaches every other machine."""
    machines = [
        VrrpMachine(
            InstanceParams(
                name="VI_1",
                vrid=1,
                address=ADDRESSES[i],
                version=version,  # type: ignore[arg-type]
                priority=prio,
                advert_int_cs=100,
                initial_state="MASTER" if prio == 255 else "BACKUP",
            )
        )
        for i, prio in enumerate(priorities)
    ]
    queue: list[tuple[float, int, Input]] = [(0.0, i, Start()) for i in range(len(machines))]
    now = 0.0
    while now <= until:
        if not queue:
            deadlines = [(d, i) for i, m in enumerate(machines) if (d := m.next_deadline()) is not None]
            if not deadlines:
                break
            at, idx = min(deadlines)
            queue.append((at, idx, Tick()))
        now, idx, event = queue.pop(0)
        for action in machines[idx].handle(now, event):
            if isinstance(action, SendAdvert):
                src = machines[idx].params.address
                for other in range(len(machines)):
                    if other != idx:
                        queue.append((now, other, AdvertReceived(src=src, priority=action.priority)))
    return machines


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from([50, 100, 150, 200, 254, 255]), min_size=2, max_size=3), st.sampled_from([2, 3])
)
def test_lan_converges_on_one_highest_master(priorities: list[int], version: int) -> None:
    machines = _lan(priorities, version, until=30.0)
    masters = [m for m in machines if m.state is State.MASTER]
    assert len(masters) == 1
    best = max(range(len(machines)), key=lambda i: (priorities[i], int(ADDRESSES[i])))
    assert masters[0] is machines[best]
    assert all(m.state is State.BACKUP for m in machines if m is not masters[0])
