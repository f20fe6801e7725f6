"""The pure parts of the trackers: rise/fall, weights, process matching, track_file values, channels."""

from __future__ import annotations

import pytest

from services.checker.core.process_match import ProcessPattern
from services.checker.core.risefall import RiseFall
from services.checker.publish import TrackerChannel
from services.checker.trackers.base import TrackerOutcome
from services.checker.trackers.file import outcome
from shared.config.model_vrrp import TrackFile, TrackProcess
from shared.events import Event, TrackerKind, TrackerResult
from shared.tracker_weights import contribution, faults


def test_risefall_starts_at_rise_minus_one_so_one_success_is_ok() -> None:
    rf = RiseFall(2, 3)
    assert not rf.ok
    assert rf.feed(True)  # counter rise-1 -> rise


def test_risefall_init_fail_needs_rise_successes_and_fall_failures_to_drop() -> None:
    rf = RiseFall(2, 2, init_fail=True)
    assert not rf.feed(True)
    assert rf.feed(True)
    assert rf.feed(True)  # counter at top (3)
    assert rf.feed(False)  # 2: still ok
    assert not rf.feed(False)  # 1 < rise


def test_risefall_baseline_starts_at_either_end() -> None:
    assert RiseFall(3, 3, baseline=True).ok
    assert not RiseFall(3, 3, baseline=False).ok


@pytest.mark.parametrize(
    ("weight", "reverse", "ok", "want"),
    [(10, False, True, 10), (10, False, False, 0), (-10, False, True, 0), (-10, False, False, -10),
     (10, True, True, 0), (10, True, False, 10), (-10, True, True, -10), (0, False, False, 0)],
)  # fmt: skip
def test_contribution(weight: int, reverse: bool, ok: bool, want: int) -> None:
    assert contribution(weight, reverse, ok) == want


def test_weight_zero_faults() -> None:
    assert faults(0, False, False) and not faults(0, False, True)
    assert faults(0, True, True) and not faults(5, False, False)


def pat(process: list[str], **kw: object) -> ProcessPattern:
    return ProcessPattern.of(TrackProcess(name="p", process=process, **kw))  # type: ignore[arg-type]


def test_process_name_is_exact_against_comm() -> None:
    p = pat(["sshd"])
    assert p.matches("sshd", None) and not p.matches("ssh", None) and not p.needs_cmdline
    assert pat(["averyveryverylongname"]).matches("averyveryveryl", None) is False
    assert pat(["averyveryverylongname"]).matches("averyveryverylo", None)


def test_process_params_exact_partial_initial() -> None:
    assert pat(["sleep", "100"]).matches("sleep", ["sleep", "100"])
    assert not pat(["sleep", "100"]).matches("sleep", ["sleep", "100", "x"])
    assert pat(["app", "-a"], param_match="partial").matches("app", ["/usr/bin/app", "-a", "-b"])
    assert pat(["app", "--conf=/e"], param_match="initial").matches("app", ["app", "--conf=/etc/x"])
    assert not pat(["app"], param_match="partial").matches("app", ["app", "x"])  # no params wanted
    assert pat(["/usr/bin/app"], full_command=True).matches("app", ["/usr/bin/app", "z"])


def test_track_file_value_times_weight_and_fault_rules() -> None:
    tf = TrackFile(name="f", file="/x", weight=3)
    assert outcome(tf, 4, "").contribution == 12
    assert outcome(TrackFile(name="f", file="/x", weight=3, weight_reverse=True), 4, "").contribution == -12
    assert outcome(tf, -100, "").faults
    zero = TrackFile(name="f", file="/x", weight=0)
    assert outcome(zero, 0, "").ok and not outcome(zero, 1, "").ok and outcome(zero, 1, "").faults


def test_channel_publishes_changes_and_heartbeats_never_before_a_real_result() -> None:
    sent: list[Event] = []
    now = [0.0]
    base = TrackerResult(tracker="t", kind=TrackerKind.SCRIPT, ok=True, weight=5, contribution=5)
    ch = TrackerChannel(sent.append, "t", TrackerKind.SCRIPT, 5, False, interval=1.0, baseline=base,
                        clock=lambda: now[0])  # fmt: skip
    assert ch.heartbeat() is None  # baseline alone says nothing
    first = ch.observe(TrackerOutcome(ok=True, detail="exit 0"))
    assert first is not None and first.changed is False  # agrees with the KV: a heartbeat, not a change
    assert ch.observe(TrackerOutcome(ok=True, detail="exit 0")) is None  # not due yet
    now[0] = 1.0
    hb = ch.heartbeat()
    assert hb is not None and not hb.changed
    down = ch.observe(TrackerOutcome(ok=False, detail="exit 1"))
    assert down is not None and down.changed and down.contribution == 0
    assert [e.changed for e in sent if isinstance(e, TrackerResult)] == [False, False, True]
