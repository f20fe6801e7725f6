"""Interop: lifeline's bfd service against keepalived 2.2.7's BFD child, on one segment.

What is proven, each from both daemons' logs: the session comes Up whoever
starts it; the timers in force follow the slower side (RFC 5880 6.8.2,
6.8.4) in both directions; a peer killed with SIGKILL (no AdminDown sent) is
detected within its detection time plus a bound, measured from its last
packet and printed; a ``passive`` lifeline session sends nothing before its
peer speaks and still comes Up once it does.
"""

from __future__ import annotations

import socket
import time

import pytest

from shared.lab.netns import in_namespace
from shared.lab.segment import Segment
from tests.interop.bfd_peers import Timers, bfd_config, start_keepalived, start_lifeline_bfd, wait_log

pytestmark = pytest.mark.usefixtures("netns_session")

UP_WITHIN = 15.0
"""Seconds for the three-way handshake: idle packets are 1 s apart, jittered, and start-up takes a few."""

DETECTION_BOUND_MS = 100.0
"""How much later than the detection time a lost peer may be declared down (a loaded 2-core box)."""

KEEPALIVED = Timers(min_tx=50, min_rx=20, multiplier=3)
OURS = Timers(min_tx=10, min_rx=40, multiplier=4)


def test_sessions_come_up_and_timers_follow_the_slower_side() -> None:
    """Ours: tx max(10, 20) = 20 ms, detect 3 x max(40, 50) = 150 ms; keepalived: 4 x max(20, 10) = 80 ms."""
    with Segment(("a", "b")) as seg:
        a, b = seg.host("a"), seg.host("b")
        ka = start_keepalived(a, bfd_config(seg, 1, 2, KEEPALIVED))
        ours = start_lifeline_bfd(b, bfd_config(seg, 2, 1, OURS))
        wait_log(ours, r"bfd1: (DOWN|INIT) -> UP", UP_WITHIN)
        wait_log(ka, r"\(bfd1\) Entering Up state", UP_WITHIN)
        wait_log(ours, r"bfd1: transmit every 20 ms, detection time 150 ms", 5.0)
        wait_log(ka, r"Detection time is 80000 us", 5.0)


@pytest.mark.parametrize("killed", ["keepalived", "lifeline"])
def test_a_killed_peer_is_detected_within_detection_time(killed: str) -> None:
    """SIGKILL sends no AdminDown: the survivor must see the silence within its detection time (+ bound)."""
    with Segment(("a", "b")) as seg:
        a, b = seg.host("a"), seg.host("b")
        ka = start_keepalived(a, bfd_config(seg, 1, 2, KEEPALIVED))
        ours = start_lifeline_bfd(b, bfd_config(seg, 2, 1, OURS))
        wait_log(ours, r"bfd1: transmit every 20 ms, detection time 150 ms", UP_WITHIN)
        wait_log(ka, r"Detection time is 80000 us", UP_WITHIN)
        if killed == "keepalived":
            mark = len(ours.output())
            ka.kill()
            found = wait_log(
                ours, r"bfd1: UP -> DOWN \(diag detection_time_expired\), ([\d.]+) ms", 5.0, mark
            )
            silent_ms = float(found.group(1))
            print(f"\nlifeline: peer silent -> Down after {silent_ms:.1f} ms (detection time 150 ms)")
            assert 150.0 <= silent_ms <= 150.0 + DETECTION_BOUND_MS
        else:
            mark = len(ka.output())
            killed_at = time.monotonic()
            ours.kill()
            wait_log(ka, r"\(bfd1\) Entering Down state", 5.0, mark)
            print(f"\nkeepalived: saw lifeline's silence within {time.monotonic() - killed_at:.2f} s (80 ms)")


def test_passive_sends_nothing_until_the_peer_speaks() -> None:
    """A passive lifeline session is silent to a listener on the peer port, then Up with keepalived."""
    with Segment(("a", "b")) as seg:
        a, b = seg.host("a"), seg.host("b")
        listener = in_namespace(a.name, lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        with listener:
            listener.bind((seg.address(1), 3784))
            listener.settimeout(3.0)  # an active session sends every idle_tx (1 s): two or three by now
            ours = start_lifeline_bfd(b, bfd_config(seg, 2, 1, Timers(passive=True)))
            wait_log(ours, r"lifeline-bfd ready", 15.0)
            with pytest.raises(TimeoutError):
                listener.recvfrom(1500)
        ka = start_keepalived(a, bfd_config(seg, 1, 2, KEEPALIVED))
        wait_log(ours, r"bfd1: (DOWN|INIT) -> UP", UP_WITHIN)
        wait_log(ka, r"\(bfd1\) Entering Up state", UP_WITHIN)
