"""Lab: a BFD session going down moves a VIP through ``track_bfd`` (lifeline vrrp + bfd on one node).

Node a runs lifeline's vrrp and bfd services on its own bus, priority 150,
tracking ``bfd1`` (a session to node c, where keepalived 2.2.7's BFD child
answers); node b runs keepalived's VRRP at priority 100.  While the session
is Up a holds the VIP (it starts Down, so a waits for it: keepalived's
``track_bfd`` starts down too).  c killed with SIGKILL: a's session goes
Down after its detection time, and then

* ``weight -100``: a's priority falls to 50, b takes the VIP over;
* ``weight 0``: a enters FAULT at once and drops the VIP, b takes it over;
* ``track_bfd`` in a sync group around VI_1 and VI_2: the group enters FAULT.

The delay from c's last packet to a's session Down, and from that to a's
VRRP transition, both come from a's own log lines and are printed.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from shared.lab.segment import Segment
from shared.lab.wait import wait_until
from tests.interop.bfd_peers import Timers, bfd_config, start_keepalived, start_lifeline_bfd, wait_log

pytestmark = pytest.mark.usefixtures("netns_session")

BFD = Timers(min_tx=20, min_rx=20, multiplier=3)
"""Detection time 60 ms on both sides."""


def _instance(seg: Segment, name: str, vrid: int, priority: int, tracking: str) -> list[str]:
    return [
        f"vrrp_instance {name} {{",
        "    state BACKUP",
        "    interface eth0",
        f"    virtual_router_id {vrid}",
        f"    priority {priority}",
        "    advert_int 0.2",
        *([tracking] if tracking else []),
        "    virtual_ipaddress {",
        f"        {seg.address(58 + vrid)}/32",
        "    }",
        "}",
    ]


def _vrrp(seg: Segment, priority: int, track: str = "", *, group: bool = False) -> str:
    """VI_1 (VIP .100) tracking ``track``; with ``group``, VI_1 and VI_2 (.101) in a group tracking it."""
    tracking = f"    track_bfd {{\n        {track}\n    }}" if track else ""
    lines = ["global_defs {", "    vrrp_version 3", "}"]
    if group:
        lines += [
            "vrrp_sync_group G1 {",
            "    group {",
            "        VI_1",
            "        VI_2",
            "    }",
            tracking,
            "}",
        ]
        lines += _instance(seg, "VI_2", 43, priority, "")
    lines += _instance(seg, "VI_1", 42, priority, "" if group else tracking)
    return "\n".join(lines) + "\n"


def _stamp(line_start: str) -> datetime:
    return datetime.strptime(line_start, "%Y-%m-%d %H:%M:%S,%f")


@pytest.mark.parametrize(
    ("track", "group", "reacts", "a_after"),
    [
        ("bfd1 weight -100", False, r"Changing effective priority from 150 to 50", "BACKUP"),
        ("bfd1 weight 0", False, r"Entering FAULT STATE \(tracker_failed:bfd1\)", "FAULT"),
        ("bfd1", True, r"Entering FAULT STATE \((tracker_failed:bfd1|sync_group:VI_2)\)", "FAULT"),
    ],
    ids=["weight", "weight-0", "sync-group"],
)
def test_bfd_down_moves_the_vip(track: str, group: bool, reacts: str, a_after: str) -> None:
    with Segment(("a", "b", "c")) as seg:
        a, b, c = seg.host("a"), seg.host("b"), seg.host("c")
        vip = seg.address(100)
        config_a = bfd_config(seg, 1, 3, BFD, _vrrp(seg, 150, track, group=group))
        peer = start_keepalived(c, bfd_config(seg, 3, 1, BFD))
        b.start("keepalived", _vrrp(seg, 100, group=group))
        vrrp = a.start("lifeline", config_a)
        bfd = start_lifeline_bfd(a, config_a)

        def logs() -> str:
            return f"--- a vrrp\n{vrrp.tail(20)}\n--- a bfd\n{bfd.tail(20)}\n--- c\n{peer.tail(10)}"

        wait_log(bfd, r"bfd1: transmit every 20 ms, detection time 60 ms", 20.0)
        wait_until("a alone to hold the VIP", lambda: seg.holders(vip), 20.0, expect=["a"], explain=logs)

        mark_bfd, mark_vrrp = len(bfd.output()), len(vrrp.output())
        peer.kill()
        down = wait_log(bfd, r"(\S+ \S+) \S+ INFO bfd1: UP -> DOWN .*?, ([\d.]+) ms after", 5.0, mark_bfd)
        reacted = wait_log(vrrp, rf"(\S+ \S+) \S+ INFO \(VI_1\) {reacts}", 10.0, mark_vrrp)
        moved = wait_log(vrrp, rf"(\S+ \S+) \S+ INFO \(VI_1\) Entering {a_after} STATE", 10.0, mark_vrrp)
        wait_until("b alone to hold the VIP", lambda: seg.holders(vip), 10.0, expect=["b"], explain=logs)

        silent_ms = float(down.group(2))
        to_react_ms = (_stamp(reacted.group(1)) - _stamp(down.group(1))).total_seconds() * 1000
        to_vrrp_ms = (_stamp(moved.group(1)) - _stamp(down.group(1))).total_seconds() * 1000
        print(
            f"\n{track}: last packet -> session Down {silent_ms:.1f} ms (detection 60 ms), "
            f"-> vrrp reacts {to_react_ms:.0f} ms later, {a_after} {to_vrrp_ms:.0f} ms later"
        )
        assert 60.0 <= silent_ms <= 160.0
