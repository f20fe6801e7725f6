"""Interop: lifeline's vrrp service and the real keepalived 2.2.7 on one segment.

Every scenario runs in three pairings, (node a's implementation, node b's):

* ``ours-master``: lifeline on a (the master), keepalived on b;
* ``ours-backup``: keepalived on a, lifeline on b;
* ``reference``: keepalived on both: the reference behaviour the other two
  must match (and the proof that the harness itself is right).

Scenarios: v2 + PASS, v2 + AH, v3 IPv4, v3 IPv6, unicast, VMAC (v3 IPv4 with
``use_vmac``), ``nopreempt``, and the priority-0 handover on a graceful stop.
The verdict comes from the kernel's addresses (exactly one node holds the VIP,
sampled over a window after convergence: never two masters, never none) and,
where the observer can see them, from the adverts on the wire; VMAC adds the
interface itself (private macvlan, 00:00:5e:00:01:VRID, VIP on it) and the
Ethernet source of adverts and GARPs.  v3 runs at 0.2 s so the whole file
stays well under two minutes; v2 is whole seconds by definition.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator

import pytest

from services.vrrp.core.timers import skew_time
from shared.lab.capture import adverts
from shared.lab.segment import Impl, Segment
from tests.interop.vrrp_peers import (
    BACKUP_PRIORITY,
    MASTER_PRIORITY,
    UNICAST,
    V2_AH,
    V2_PASS,
    V3_IPV4,
    V3_IPV6,
    VMAC,
    VMAC_MAC,
    VRID,
    Flavour,
    assert_only_advertiser,
    assert_sole_holder,
    assert_vmac,
    converge,
    instance_config,
    start,
)

pytestmark = [
    pytest.mark.root,
    pytest.mark.interop,
    pytest.mark.timeout(60),
    pytest.mark.skipif(shutil.which("keepalived") is None, reason="keepalived is not installed"),
]

Pairing = tuple[Impl, Impl]
PAIRINGS = [
    pytest.param(("lifeline", "keepalived"), id="ours-master"),
    pytest.param(("keepalived", "lifeline"), id="ours-backup"),
    pytest.param(("keepalived", "keepalived"), id="reference"),
]
FLAVOURS = [pytest.param(f, id=f.name) for f in (V2_PASS, V2_AH, V3_IPV4, V3_IPV6, UNICAST, VMAC)]


@pytest.fixture
def seg(netns_session: None) -> Iterator[Segment]:
    """Nodes a and b (and the observer) on one bridge; daemons and namespaces always removed."""
    with Segment(["a", "b"]) as segment:
        yield segment


def startup_timeout(flavour: Flavour) -> float:
    """An election from cold, possibly with one preemption, plus a slow interpreter start."""
    return 2 * flavour.master_down(1) + 5


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("pairing", PAIRINGS)
def test_election_one_master(seg: Segment, pairing: Pairing, flavour: Flavour) -> None:
    """The higher priority wins whichever implementation it runs, and stays the only master."""
    master_impl, backup_impl = pairing
    a, b = seg.hosts
    vip = flavour.vip(seg)
    with seg.capture() as cap:
        start(a, master_impl, instance_config(flavour, seg, a, MASTER_PRIORITY))
        start(b, backup_impl, instance_config(flavour, seg, b, BACKUP_PRIORITY))
        converge(seg, vip, "a", startup_timeout(flavour), flavour.vip_dev)
        time.sleep(flavour.interval)  # a transient master's last advert is behind us
        early = cap.drain()
        if flavour.vmac:
            assert_vmac(seg, early, a, vip)
        assert_sole_holder(seg, vip, "a", max(1.5, 2.5 * flavour.interval), flavour.vip_dev)
        if not flavour.unicast:  # unicast adverts are switched past the observer
            mac = VMAC_MAC if flavour.vmac else None
            assert_only_advertiser(cap.drain(), a, ipv6=flavour.ipv6, mac=mac)


@pytest.mark.parametrize("pairing", PAIRINGS)
def test_nopreempt_keeps_the_incumbent(seg: Segment, pairing: Pairing) -> None:
    """A higher-priority node with ``nopreempt`` joins and stays backup; it takes over only on a goodbye.

    Here a is the incumbent (priority 100) and b the challenger (200, nopreempt).
    The final graceful stop of a proves b was alive and listening all along.
    """
    incumbent_impl, challenger_impl = pairing
    flavour = V3_IPV4
    a, b = seg.hosts
    vip = flavour.vip(seg)
    start(a, incumbent_impl, instance_config(flavour, seg, a, BACKUP_PRIORITY))
    converge(seg, vip, "a", startup_timeout(flavour))
    start(b, challenger_impl, instance_config(flavour, seg, b, MASTER_PRIORITY, nopreempt=True))
    assert_sole_holder(seg, vip, "a", 1.5 + 3 * flavour.master_down(MASTER_PRIORITY))
    a.stop()
    converge(seg, vip, "b", flavour.master_down(MASTER_PRIORITY) + 1)


@pytest.mark.parametrize("pairing", PAIRINGS)
def test_priority0_handover(seg: Segment, pairing: Pairing) -> None:
    """SIGTERM on the master: a priority-0 advert, and the backup is master after its skew time.

    Measured on the wire: goodbye to the backup's first advert must be about
    Skew_Time (0.122 s here), far below Master_Down_Interval (0.722 s).
    """
    master_impl, backup_impl = pairing
    flavour = V3_IPV4
    a, b = seg.hosts
    vip = flavour.vip(seg)
    start(a, master_impl, instance_config(flavour, seg, a, MASTER_PRIORITY))
    start(b, backup_impl, instance_config(flavour, seg, b, BACKUP_PRIORITY))
    converge(seg, vip, "a", startup_timeout(flavour))
    time.sleep(2 * flavour.interval)
    with seg.capture() as cap:
        a.stop()
        converge(seg, vip, "b", flavour.master_down(BACKUP_PRIORITY) + 1)
        time.sleep(0.1)
        seen = [x for x in adverts(cap.drain()) if x.vrid == VRID]
    goodbye = next((x for x in seen if x.src == str(a.ipv4) and x.priority == 0), None)
    assert goodbye is not None, f"no priority-0 advert from a: {seen}"
    first = next((x for x in seen if x.src == str(b.ipv4) and x.ts_ns > goodbye.ts_ns), None)
    assert first is not None, "b became master without advertising"
    gap = (first.ts_ns - goodbye.ts_ns) / 1e9
    skew = skew_time(flavour.version, BACKUP_PRIORITY, flavour.interval_cs)
    assert skew - 0.005 <= gap <= skew + 0.1, f"handover {gap:.3f} s, skew {skew:.3f} s"
    assert_sole_holder(seg, vip, "b", 1.0)
