"""``VrrpMachine.advert_again`` is ``handle(now, AdvertReceived)`` whenever it says it applies.

Why property tests: the shortcut skips the general advert path on a backup's
hot path (thousands of adverts a second at scale), so it is only correct if no input sequence can tell the
two apart.  Two machines get the same random timeline; the reference one only
ever uses ``handle``, the other tries ``advert_again`` first for every advert.
After every step both must have returned the same actions and hold the same
state, timers included.  Adverts come from a small pool of event *objects*, so
repeats of the very same object (what the shortcut takes) are frequent.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from services.vrrp.core.machine import VrrpMachine
from services.vrrp.core.machine_events import (
    Action,
    AdvertReceived,
    Input,
    LinkChanged,
    Maintenance,
    Reconfigure,
    SetPriority,
    Start,
    Tick,
    TrackerChanged,
)
from services.vrrp.core.machine_types import GarpParams, InstanceParams, State, TrackerSpec

ADDRESSES = [ipaddress.IPv4Address(f"10.0.0.{n}") for n in (1, 2, 3)]
ADVERTS = [
    AdvertReceived(src=src, priority=prio, interval_cs=interval)
    for src in ADDRESSES[1:]
    for prio in (0, 50, 100, 150, 254)
    for interval in (10, 100)
]
"""The pool: the same objects recur, as the instance hands the machine the same object for a repeat."""


@st.composite
def params(draw: st.DrawFn) -> InstanceParams:
    version: Literal[2, 3] = draw(st.sampled_from([2, 3]))
    return InstanceParams(
        name="VI_1",
        vrid=1,
        address=ADDRESSES[0],
        interface="eth0",
        version=version,
        priority=draw(st.sampled_from([100, 100, 150, 255])),
        advert_int_cs=100 if version == 2 else draw(st.sampled_from([10, 100])),
        initial_state=draw(st.sampled_from(["MASTER", "BACKUP"])),
        nopreempt=draw(st.booleans()),
        preempt_delay=draw(st.sampled_from([0.0, 0.5, 2.0])),
        vips=("10.0.0.100/24",),
        trackers=(TrackerSpec(name="t0", kind="script", weight=draw(st.sampled_from([-80, 80]))),),
        garp=GarpParams(lower_prio_delay=0.5),
        owner_ignores_adverts=draw(st.booleans()),
    )


def _others(p: InstanceParams) -> st.SearchStrategy[Input]:
    """Every other kind of input that changes what an advert does: trackers, links, priority, reload."""
    return st.one_of(
        st.just(Tick()),
        st.builds(TrackerChanged, name=st.just("t0"), ok=st.booleans()),
        st.builds(LinkChanged, interface=st.just("eth0"), up=st.booleans()),
        st.builds(SetPriority, priority=st.none() | st.sampled_from([60, 120, 200])),
        st.builds(Maintenance, until=st.none() | st.floats(0, 20, allow_nan=False)),
        st.builds(
            Reconfigure,
            params=st.builds(
                lambda prio, delay: msgspec.structs.replace(p, priority=prio, preempt_delay=delay),
                st.just(255) if p.is_owner else st.sampled_from([50, 120, 200]),
                st.sampled_from([0.0, 1.0]),
            ),
        ),
    )


def snapshot(m: VrrpMachine) -> tuple[object, ...]:
    """Everything an advert can change, and everything that decides what the next input does."""
    return (
        m.state,
        m.effective_priority,
        m.base_priority,
        m.wants_master,
        m.master_address,
        m.master_adver_int_cs,
        m.maintenance_until,
        m.next_deadline(),
        dict(m._timers._at),
        m._preempt_until,
        m._down_reason,
        m._want_reason,
        m.params,
    )


@st.composite
def timelines(draw: st.DrawFn) -> tuple[InstanceParams, list[tuple[float, Input, bool]]]:
    p = draw(params())
    spacing = st.sampled_from([0.0, 0.1, 0.35, 0.5, 1.0, 4.0]) | st.floats(0, 4, allow_nan=False)
    burst = st.tuples(st.sampled_from(ADVERTS), st.integers(1, 8), spacing, st.booleans())
    step = st.one_of(
        burst.map(lambda b: [(b[2], b[0], b[3])] * b[1]), _others(p).map(lambda i: [(0.5, i, True)])
    )
    steps = draw(st.lists(step, max_size=25))
    return p, [s for group in steps for s in group]


@settings(max_examples=400, deadline=None)
@given(timelines())
def test_advert_again_is_handle_whenever_it_applies(
    case: tuple[InstanceParams, list[tuple[float, Input, bool]]],
) -> None:
    p, steps = case
    ref, fast = VrrpMachine(p), VrrpMachine(p)
    now = 0.0
    assert ref.handle(now, Start()) == fast.handle(now, Start())
    for delta, event, tick_first in steps:
        horizon = now + delta
        while (deadline := ref.next_deadline()) is not None and deadline <= horizon and tick_first:
            now = deadline  # the shell's tick first, or (a late shell) the advert sees a due timer
            assert ref.handle(now, Tick()) == fast.handle(now, Tick())
        now = horizon
        expected = ref.handle(now, event)
        got: list[Action]
        if isinstance(event, AdvertReceived):
            before = snapshot(fast)
            taken = fast.advert_again(now, event)
            if not taken:
                assert snapshot(fast) == before, "a refused shortcut must leave the machine untouched"
            got = [] if taken else fast.handle(now, event)
        else:
            got = fast.handle(now, event)
        assert got == expected
        assert snapshot(fast) == snapshot(ref)


def _backup(**changes: object) -> VrrpMachine:
    base = InstanceParams(
        name="VI_1", vrid=1, address=ADDRESSES[0], version=3, priority=100, advert_int_cs=100
    )
    m = VrrpMachine(msgspec.structs.replace(base, **changes))
    m.handle(0.0, Start())
    assert m.state is State.BACKUP
    return m


def test_steady_state_repeats_take_the_shortcut_and_move_the_down_timer() -> None:
    m = _backup()
    advert = AdvertReceived(src=ADDRESSES[1], priority=200, interval_cs=100)
    assert not m.advert_again(0.5, advert), "nothing was accepted yet"
    assert m.handle(0.5, advert) == []
    down = m.next_deadline()
    assert down is not None
    for k in range(1, 50):
        assert m.advert_again(0.5 + k, advert)
        assert m.next_deadline() == down + k
    assert m.state is State.BACKUP and m.master_address == ADDRESSES[1]


def test_shortcut_declines_what_needs_the_general_path() -> None:
    m = _backup()
    advert = AdvertReceived(src=ADDRESSES[1], priority=200, interval_cs=100)
    m.handle(0.0, advert)
    assert not m.advert_again(0.1, AdvertReceived(src=ADDRESSES[1], priority=200, interval_cs=100)), (
        "same value, other object"
    )
    assert not m.advert_again(10.0, advert), "the down timer is due: handle must fire it first"
    m.handle(0.2, advert)
    m.handle(0.3, Tick())
    assert not m.advert_again(0.4, advert), "any input since invalidates it"
    low = AdvertReceived(src=ADDRESSES[1], priority=50, interval_cs=100)
    m = _backup(preempt_delay=5.0)
    m.handle(0.0, low)
    assert not m.advert_again(0.1, low), "acceptance of a lower advert hangs on preempt_delay's clock"
    m = _backup()
    m.handle(0.0, Maintenance(until=100.0))
    m.handle(0.1, advert)
    assert not m.advert_again(0.2, advert), "maintenance keeps the down timer off"
