"""Tracker bookkeeping (``services/vrrp/core/priority.py``): where each kind of tracker starts."""

from __future__ import annotations

import pytest

from services.vrrp.core.machine_types import TrackerSpec
from services.vrrp.core.params import tracker_specs
from services.vrrp.core.priority import Tracking
from shared.config.model_vrrp import BfdInstance, TrackRef, VrrpConfig, VrrpInstance


@pytest.mark.parametrize(
    ("weight", "reverse", "fault", "adjustment"),
    [
        (0, False, True, 0),  # keepalived: bfd_up (false) == weight_reverse (false) -> FAULT
        (0, True, False, 0),  # reverse: a session that is down is the good case
        (-20, False, False, -20),  # down: a negative weight counts at once
        (-20, True, False, 20),  # reverse negates it
        (30, False, False, 0),  # a positive weight is added only while up
    ],
)
def test_bfd_trackers_start_down_as_keepalived_sessions_do(
    weight: int, reverse: bool, fault: bool, adjustment: int
) -> None:
    """keepalived 2.2.7 (``initialise_track_bfd_state``): a session starts Down until its peer answers."""
    tracking = Tracking((TrackerSpec(name="peer", kind="bfd", weight=weight, reverse=reverse),))
    assert (tracking.fault() == "peer") is fault
    assert tracking.adjustment() == adjustment
    tracking.report("peer", ok=True, value=None)  # the session comes up
    assert tracking.fault() == ("peer" if reverse and weight == 0 else None)


def test_bfd_weight_comes_from_the_bfd_instance_unless_the_track_line_says() -> None:
    vrrp = VrrpConfig(bfd_instances={"peer": BfdInstance(name="peer", weight=-15, weight_reverse=True)})
    inst = VrrpInstance(name="VI_1", track_bfds=[TrackRef(name="peer"), TrackRef(name="peer", weight=-5)])
    assert tracker_specs(inst, vrrp) == (
        TrackerSpec(name="peer", kind="bfd", weight=-15, reverse=True),
        TrackerSpec(name="peer", kind="bfd", weight=-5, reverse=True),
    )


def test_scripts_processes_and_files_still_start_unknown() -> None:
    specs = tuple(TrackerSpec(name=k, kind=k, weight=-10) for k in ("script", "process", "file"))  # type: ignore[arg-type]
    assert Tracking(specs).adjustment() == 0
