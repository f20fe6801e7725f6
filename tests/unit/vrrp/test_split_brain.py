"""The split-brain definition and its rate limit."""

from __future__ import annotations

from ipaddress import ip_address

from services.vrrp.core.machine_types import State
from services.vrrp.core.split_brain import SplitBrainDetector

OWN = ip_address("10.0.0.1")
PEER = ip_address("10.0.0.2")


def test_only_a_master_hearing_another_node_counts() -> None:
    d = SplitBrainDetector(OWN)
    assert d.observe(0.0, State.BACKUP, PEER, 100, 100) is None
    assert d.observe(0.0, State.MASTER, PEER, 0, 100) is None  # a master leaving
    assert d.observe(0.0, State.MASTER, OWN, 100, 100) is None  # our own echo
    assert d.count == 0
    occ = d.observe(1.0, State.MASTER, PEER, 90, 100)
    assert occ is not None and occ.count == 1 and occ.peer == PEER and occ.suppressed == 0


def test_events_are_rate_limited_but_every_occurrence_counts() -> None:
    d = SplitBrainDetector(OWN, min_interval=10.0)
    assert d.observe(0.0, State.MASTER, PEER, 150, 100) is not None
    for t in range(1, 10):
        assert d.observe(float(t), State.MASTER, PEER, 150, 100) is None
    occ = d.observe(10.0, State.MASTER, PEER, 150, 100)
    assert occ is not None and occ.count == 11 and occ.suppressed == 9
    assert d.count == 11 and d.last_peer == PEER and d.last_at == 10.0
