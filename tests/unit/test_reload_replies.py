"""One reply for a bus reload that every replica of a service did (``shared/bus/core/reload_replies.py``)."""

from __future__ import annotations

from shared.bus.core.reload_replies import combine
from shared.events import ReloadReply

SUMMARY = "1 added, 0 removed, 0 changed, 3 kept"
OTHER = "0 added, 0 removed, 0 changed, 4 kept"
BROKEN = ["k.conf:3: error: nope"]


def test_alone_the_reply_is_the_replica_own() -> None:
    own = ReloadReply(ok=True, detail=SUMMARY)
    assert combine("r1", {"r1": own}, (), 8.0) is own
    refused = ReloadReply(ok=False, errors=BROKEN)
    assert combine("r1", {"r1": refused}, (), 8.0) is refused


def test_all_applied_the_same_says_it_once_with_the_replicas() -> None:
    ok = ReloadReply(ok=True, detail=SUMMARY)
    got = combine("r2", {"r2": ok, "r1": ok}, (), 8.0)
    assert got == ReloadReply(ok=True, errors=[], detail=f"{SUMMARY} (replicas r1, r2)")


def test_replicas_that_applied_differently_are_named_each() -> None:
    replies = {"r1": ReloadReply(ok=True, detail=SUMMARY), "r2": ReloadReply(ok=True, detail=OTHER)}
    got = combine("r1", replies, (), 8.0)
    assert got.ok and not got.errors
    assert got.detail == f"r1: {SUMMARY}; r2: {OTHER}"


def test_a_refusal_refuses_the_whole_and_names_the_replica() -> None:
    ok = ReloadReply(ok=True, detail=SUMMARY)
    got = combine("r1", {"r1": ok, "r2": ReloadReply(ok=False, errors=BROKEN)}, (), 8.0)
    assert not got.ok and got.errors == ["replica r2: k.conf:3: error: nope"]
    assert got.detail == f"r1: {SUMMARY}"
    here = combine("r1", {"r1": ReloadReply(ok=False, errors=BROKEN), "r2": ok}, (), 8.0)
    assert not here.ok and here.errors == ["replica r1: k.conf:3: error: nope"]
    assert here.detail == f"r2: {SUMMARY}"
    mute = combine("r1", {"r1": ok, "r2": ReloadReply(ok=False)}, (), 8.0)  # refused without a word
    assert not mute.ok and mute.errors == ["replica r2: refused"]


def test_the_same_broken_file_everywhere_gives_its_errors_once() -> None:
    bad = ReloadReply(ok=False, errors=BROKEN)
    got = combine("r1", {"r1": bad, "r2": bad, "r3": ReloadReply(ok=False, errors=BROKEN)}, (), 8.0)
    assert got == ReloadReply(ok=False, errors=BROKEN, detail="")
    other = ReloadReply(ok=False, errors=["k.conf:9: error: else"])
    assert combine("r1", {"r1": bad, "r2": other}, (), 8.0).errors == [
        "replica r1: k.conf:3: error: nope",
        "replica r2: k.conf:9: error: else",
    ]
    mute = ReloadReply(ok=False)  # refused everywhere without a word: still a reason per replica
    assert combine("r1", {"r1": mute, "r2": mute}, (), 8.0).errors == [
        "replica r1: refused",
        "replica r2: refused",
    ]


def test_a_silent_replica_refuses_the_whole_and_says_how_long_it_was_waited_for() -> None:
    ok = ReloadReply(ok=True, detail=SUMMARY)
    got = combine("r1", {"r1": ok, "r2": ok}, ["r4", "r3"], 8.0)
    assert not got.ok
    assert got.errors == ["replica r3: no answer within 8s", "replica r4: no answer within 8s"]
    assert got.detail == f"{SUMMARY} (replicas r1, r2)"  # what the ones that answered did
    alone = combine("r1", {"r1": ok}, ["r2"], 2.5)
    assert not alone.ok and alone.errors == ["replica r2: no answer within 2.5s"]
    late = combine("r1", {"r1": ok, "r2": ok}, ["r2"], 8.0)  # listed silent, answered after all
    assert late.ok and not late.errors
