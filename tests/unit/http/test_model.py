"""The http service's state model: newest by timestamp, whatever order snapshot and live events come in."""

from __future__ import annotations

from services.http.core.model import TRANSITIONS_KEPT, Model
from shared.cli.fleet import StateEntry
from shared.events import (
    Event,
    InstanceState,
    TransitionReason,
    VrrpState,
    kv_key_for_subject,
    parse_subject,
    subject_for,
)
from tests.nats.events_sample import instance


def entry(event: Event) -> StateEntry:
    subject = subject_for(event)
    info = parse_subject(subject)
    return StateEntry(
        key=kv_key_for_subject(subject), node=info.node, kind=info.kind, names=info.names, event=event
    )


def state(node: str, ts: int, st: VrrpState, name: str = "VI_1") -> InstanceState:
    base = instance(name=name, state=st)
    fields = {f: getattr(base, f) for f in base.__struct_fields__}
    return InstanceState(**fields | {"node": node, "ts": ts, "reason": TransitionReason.PREEMPT})


def test_newest_wins_in_any_order() -> None:
    model = Model()
    assert model.apply(entry(state("a", 2, VrrpState.MASTER)))
    assert not model.apply(entry(state("a", 1, VrrpState.BACKUP)))  # the snapshot's older copy
    assert not model.apply(entry(state("a", 2, VrrpState.MASTER)))  # the same event twice
    got = model.instance("a", "VI_1")
    assert got is not None and got.state == VrrpState.MASTER
    assert model.instance("b", "VI_1") is None and model.instance("a", "VI_2") is None


def test_transitions_newest_first_and_bounded() -> None:
    model = Model()
    for ts in range(1, TRANSITIONS_KEPT + 10):
        model.apply(entry(state("a", ts, VrrpState.MASTER if ts % 2 else VrrpState.BACKUP)))
    assert len(model.transitions) == TRANSITIONS_KEPT
    assert [t["ts"] for t in model.transitions[:2]] == [TRANSITIONS_KEPT + 9, TRANSITIONS_KEPT + 8]
    assert model.transitions[0]["reason"] == "preempt" and model.transitions[0]["node"] == "a"
