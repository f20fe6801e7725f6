"""Interop: lifeline's bfd service against FRR's bfdd (8.4 in Debian 12), on one segment.

The same proofs as against keepalived: Up in both directions, the timers in
force follow the slower side, a peer killed with SIGKILL is detected within
the detection time plus a bound (measured from its last packet, printed),
and a passive lifeline session comes Up once bfdd speaks.
"""

from __future__ import annotations

import pytest

from shared.lab.segment import Segment
from tests.interop.bfd_peers import BFDD, Timers, bfd_config, start_frr_bfdd, start_lifeline_bfd, wait_log

pytestmark = [
    pytest.mark.usefixtures("netns_session"),
    pytest.mark.skipif(not BFDD.exists(), reason="FRR is not installed (the test task installs frr)"),
]

UP_WITHIN = 15.0
DETECTION_BOUND_MS = 100.0
FRR = Timers(min_tx=50, min_rx=50, multiplier=3)
OURS = Timers(min_tx=10, min_rx=40, multiplier=4)
"""Ours: tx max(10, 50) = 50 ms, detection 3 x max(40, 50) = 150 ms; bfdd's: 4 x max(50, 10) = 200 ms."""


@pytest.mark.parametrize("killed", ["bfdd", "lifeline"])
def test_up_slower_side_and_a_killed_peer(killed: str) -> None:
    with Segment(("a", "b")) as seg:
        a, b = seg.host("a"), seg.host("b")
        frr = start_frr_bfdd(a, seg.address(2), seg.address(1), FRR)
        ours = start_lifeline_bfd(b, bfd_config(seg, 2, 1, OURS))
        wait_log(ours, r"bfd1: (DOWN|INIT) -> UP", UP_WITHIN)
        wait_log(frr, r"state-change: \[.*\] (down|init) -> up", UP_WITHIN)
        wait_log(ours, r"bfd1: transmit every 50 ms, detection time 150 ms", 5.0)
        if killed == "bfdd":
            mark = len(ours.output())
            frr.kill()
            found = wait_log(
                ours, r"bfd1: UP -> DOWN \(diag detection_time_expired\), ([\d.]+) ms", 5.0, mark
            )
            silent_ms = float(found.group(1))
            print(f"\nlifeline: bfdd silent -> Down after {silent_ms:.1f} ms (detection time 150 ms)")
            assert 150.0 <= silent_ms <= 150.0 + DETECTION_BOUND_MS
        else:
            mark = len(frr.output())
            ours.kill()
            wait_log(frr, r"state-change: \[.*\] up -> down", 5.0, mark)


def test_passive_comes_up_when_bfdd_speaks() -> None:
    with Segment(("a", "b")) as seg:
        a, b = seg.host("a"), seg.host("b")
        ours = start_lifeline_bfd(b, bfd_config(seg, 2, 1, Timers(passive=True)))
        wait_log(ours, r"lifeline-bfd ready", 15.0)
        frr = start_frr_bfdd(a, seg.address(2), seg.address(1), FRR)
        wait_log(ours, r"bfd1: (DOWN|INIT) -> UP", UP_WITHIN)
        wait_log(frr, r"state-change: \[.*\] (down|init) -> up", UP_WITHIN)
