"""Three vrrp services on one bridge: who takes over is decided by priority, not by luck.

With two nodes any failover has one possible winner; with three, a lost
master must be replaced by the *next-highest* backup, and the lowest must
stay quiet.  Priorities 200/120/20 on hosts a/b/c: each backup's skew is
(256 - p) x advert / 256, so b's down timer fires 0.39 advert intervals
before c's and b's first advert resets c's timer.  Adverts every 0.5 s keep
that gap (195 ms) far above process scheduling noise on a busy two-core
machine; with 0.1 s adverts it would be 39 ms.

"Exactly one master" is checked the operator's way: every host's ``ip addr``
is sampled over a window after each convergence (:func:`sole_holder_throughout`),
and every node's state events on the bus must be exactly the expected ones,
so a backup that took the VIP for a moment and gave it back still fails the
test.  A node killed with ``kill -9`` keeps its VIP on its interface (that is
what a crash leaves behind); it is left out of the sampled hosts until it is
restarted, which removes the stale VIP first.

Reuses the single-instance harness of ``test_vrrp_service``; the ``lab3``
fixture runs it on the ``trio`` segment.
"""

from __future__ import annotations

import signal
import time
from functools import partial

import pytest

from shared.events import InstanceState
from shared.lab.segment import Host
from shared.lab.wait import wait_until
from tests.lab.test_vrrp_service import (
    VIP4,
    Lab,
    VrrpProc,
    has_vip,
    instance,
    mdi,
    only_holder,
    states,
)

pytestmark = [pytest.mark.root, pytest.mark.timeout(120)]

ADVERT = 0.5
HIGH, MIDDLE, LOW = 200, 120, 20
WINDOW = 1.0
"""Seconds of sampling after a convergence: two advert intervals."""
STARTUP = 20.0
"""Bound for a service process to start (Python imports, ``ip netns exec``) on a busy machine."""
KERNEL = 10.0
"""Bound for seeing a VIP move with ``ip addr`` (protocol times are asserted on event timestamps)."""


def sole_holder_throughout(hosts: list[Host], vip: str, holder: Host, seconds: float) -> int:
    """Sample every host's addresses for ``seconds``: each sample must show ``vip`` on ``holder`` only.

    Never two masters and never none: one sample with the VIP on two hosts,
    or on none, fails.  Returns the number of samples (for the report).
    """
    deadline = time.monotonic() + seconds
    samples = 0
    while True:
        got = only_holder(hosts, vip)
        assert got == [holder.name], f"sample {samples}: {vip} on {got}, want only {holder.name}"
        samples += 1
        if time.monotonic() >= deadline:
            return samples
        time.sleep(0.02)


def state_events(lab: Lab, node: str, want: int, timeout: float = 10.0) -> list[InstanceState]:
    """``node``'s first ``want`` InstanceState events, in stream order (fewer if ``timeout`` passes).

    Unlike ``Lab.events``' default it reads ``vrrp.state.>`` only (other vrrp
    events may share the stream).
    """
    return lab.events(node, want, timeout, subjects="vrrp.state.>")


def reported(lab: Lab, proc: VrrpProc, count: int = 1) -> bool:
    """Has ``proc`` published ``count`` state events?  (Looks for half a second at most.)"""
    return len(state_events(lab, proc.node, count, 0.5)) == count


def started_in_order(lab: Lab, confs: list[str]) -> list[VrrpProc]:
    """Start the first host and wait for its VIP, then each other host until it reports BACKUP.

    Deterministic roles: with all started at once, whichever process is up
    first is master for a moment, and the event lists would differ run to run.
    """
    first, *rest = lab.hosts
    procs = [lab.service(first, confs[0])]
    wait_until(f"{first.name} to hold the VIP", lambda: has_vip(first, VIP4), STARTUP)
    for host, conf in zip(rest, confs[1:], strict=True):
        proc = lab.service(host, conf)
        wait_until(f"{proc.node} to report BACKUP", partial(reported, lab, proc), STARTUP)
        procs.append(proc)
    return procs


def took_since(lab: Lab, proc: VrrpProc, index: int, start_ns: int, want: tuple[str, str]) -> float:
    """Seconds from ``start_ns`` to ``proc``'s state event number ``index``, which must be ``want``.

    Measured on the service's own timestamps (stamped at the transition), not
    by polling ``ip``: while other tests create and delete namespaces an
    ``ip addr`` may wait seconds for the RTNL lock, which says nothing about VRRP.
    """
    events = state_events(lab, proc.node, index + 1)
    assert len(events) > index and states(events)[index] == want, (proc.node, index, states(events))
    return (events[index].ts - start_ns) / 1e9


def all_events(lab: Lab, proc: VrrpProc, expected: int) -> list[tuple[str, str]]:
    """``proc``'s (state, reason) events; asks for one more than expected, so an extra one shows."""
    return states(state_events(lab, proc.node, expected + 1, timeout=1.0))


def test_three_nodes_elect_the_highest_when_started_together(lab3: Lab) -> None:
    """All three at once: whoever is up first may be master for a moment; the highest ends up alone."""
    a, b, c = lab3.hosts
    procs = [
        lab3.service(host, instance(prio, advert=ADVERT))
        for host, prio in zip(lab3.hosts, (HIGH, MIDDLE, LOW), strict=True)
    ]
    took = wait_until("a alone to hold the VIP", lambda: only_holder(lab3.hosts, VIP4) == [a.name], STARTUP)
    samples = sole_holder_throughout(lab3.hosts, VIP4, a, 2 * WINDOW)
    print(f"\nthree-node election: a alone after {took:.3f} s, {samples} samples over {2 * WINDOW} s")
    for proc, host in zip(procs[1:], (b, c), strict=True):
        vi = lab3.status(proc.node)["instances"]["VI_1"]  # type: ignore[index]
        assert vi["state"] == "BACKUP", (host.name, vi)
        assert vi["master_address"] == str(a.ipv4), (host.name, vi)


def test_three_nodes_failover_goes_to_the_next_highest(lab3: Lab) -> None:
    """kill -9 → middle; its link lost → lowest; link back → middle; a restarted → a; SIGTERM → middle."""
    a, b, c = lab3.hosts
    live = [b, c]
    pa, pb, pc = started_in_order(lab3, [instance(p, advert=ADVERT) for p in (HIGH, MIDDLE, LOW)])
    sole_holder_throughout(lab3.hosts, VIP4, a, WINDOW)

    start = time.time_ns()
    pa.signal(signal.SIGKILL)
    pa.wait()
    wait_until("b to take the VIP", lambda: has_vip(b, VIP4), KERNEL)
    took = took_since(lab3, pb, 1, start, ("MASTER", "master_down_timer"))
    print(f"\nkill -9 failover to the middle: {took:.3f} s (MDI b {mdi(ADVERT, MIDDLE):.3f} s)")
    assert took < mdi(ADVERT, MIDDLE) + 1.0
    sole_holder_throughout(live, VIP4, b, WINDOW)
    assert has_vip(a, VIP4), "a crashed: its stale VIP is still on its interface"

    start = time.time_ns()
    b.ip("link", "set", "eth0", "down")
    wait_until("c to take the VIP", lambda: only_holder(live, VIP4) == [c.name], KERNEL)
    took = took_since(lab3, pc, 1, start, ("MASTER", "master_down_timer"))
    print(f"link loss of the new master, lowest takes over: {took:.3f} s (MDI c {mdi(ADVERT, LOW):.3f} s)")
    assert took < mdi(ADVERT, LOW) + 1.0
    sole_holder_throughout(live, VIP4, c, WINDOW)

    start = time.time_ns()
    b.ip("link", "set", "eth0", "up")
    wait_until("b to preempt c", lambda: only_holder(live, VIP4) == [b.name], KERNEL)
    took = took_since(lab3, pb, 4, start, ("MASTER", "preempt"))
    print(f"link back, middle preempts the lowest: {took:.3f} s")
    assert took < mdi(ADVERT, MIDDLE) + 1.0
    sole_holder_throughout(live, VIP4, b, WINDOW)

    start = time.time_ns()
    pa.start()
    wait_until("the restarted a to preempt", lambda: only_holder(lab3.hosts, VIP4) == [a.name], STARTUP)
    took = took_since(lab3, pa, 3, start, ("MASTER", "preempt"))
    print(f"restart of the highest, preempts back: {took:.3f} s (process start included)")
    assert "removed 1 stale VIP" in pa.log()
    sole_holder_throughout(lab3.hosts, VIP4, a, WINDOW)

    start = time.time_ns()
    pa.signal(signal.SIGTERM)
    wait_until("b to take the VIP", lambda: has_vip(b, VIP4), KERNEL)
    assert pa.wait() == 0
    took = took_since(lab3, pb, 6, start, ("MASTER", "priority_zero_seen"))
    skew_b, skew_c = (256 - MIDDLE) * ADVERT / 256, (256 - LOW) * ADVERT / 256
    print(f"graceful stop to the middle: {took:.3f} s (skew b {skew_b:.3f} s, c {skew_c:.3f} s)")
    assert took < mdi(ADVERT, MIDDLE) - 0.5
    sole_holder_throughout(lab3.hosts, VIP4, b, WINDOW)

    assert all_events(lab3, pa, 5) == [
        ("BACKUP", "startup"),
        ("MASTER", "master_down_timer"),
        ("BACKUP", "startup"),
        ("MASTER", "preempt"),
        ("STOP", "shutdown"),
    ]
    assert all_events(lab3, pb, 7) == [
        ("BACKUP", "startup"),
        ("MASTER", "master_down_timer"),
        ("FAULT", "interface_down"),
        ("BACKUP", "interface_up"),
        ("MASTER", "preempt"),
        ("BACKUP", "higher_priority_seen"),
        ("MASTER", "priority_zero_seen"),
    ]
    assert all_events(lab3, pc, 3) == [
        ("BACKUP", "startup"),
        ("MASTER", "master_down_timer"),
        ("BACKUP", "higher_priority_seen"),
    ]


def test_three_nodes_unicast_two_peers_each(lab3: Lab) -> None:
    """Unicast only, each node listing the other two: kill -9 → middle, then SIGTERM → lowest."""
    a, b, c = lab3.hosts

    def conf(me: Host, prio: int) -> str:
        peers = "\n".join(f"        {h.ipv4}" for h in lab3.hosts if h is not me)
        extra = f"    unicast_src_ip {me.ipv4}\n    unicast_peer {{\n{peers}\n    }}"
        return instance(prio, advert=ADVERT, extra=extra)

    pa, pb, pc = started_in_order(lab3, [conf(a, HIGH), conf(b, MIDDLE), conf(c, LOW)])
    sole_holder_throughout(lab3.hosts, VIP4, a, WINDOW)
    for proc in (pb, pc):
        vi = lab3.status(proc.node)["instances"]["VI_1"]  # type: ignore[index]
        assert vi["master_address"] == str(a.ipv4), vi

    start = time.time_ns()
    pa.signal(signal.SIGKILL)
    pa.wait()
    wait_until("b to take the VIP", lambda: has_vip(b, VIP4), KERNEL)
    took = took_since(lab3, pb, 1, start, ("MASTER", "master_down_timer"))
    print(f"\nunicast three-node kill -9 to the middle: {took:.3f} s")
    assert took < mdi(ADVERT, MIDDLE) + 1.0
    sole_holder_throughout([b, c], VIP4, b, WINDOW)

    start = time.time_ns()
    pb.signal(signal.SIGTERM)
    wait_until("c to take the VIP", lambda: has_vip(c, VIP4), KERNEL)
    assert pb.wait() == 0
    took = took_since(lab3, pc, 1, start, ("MASTER", "priority_zero_seen"))
    print(f"unicast graceful stop to the lowest: {took:.3f} s")
    assert took < mdi(ADVERT, LOW) - 0.5
    sole_holder_throughout([b, c], VIP4, c, WINDOW)
    assert all_events(lab3, pc, 2) == [("BACKUP", "startup"), ("MASTER", "priority_zero_seen")]
