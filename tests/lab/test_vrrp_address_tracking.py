"""Addresses deleted by hand, end to end: the service follows them through netlink as keepalived 2.2.7 does.

* A VIP deleted (``ip addr del``) from a MASTER: priority 0, every VIP removed,
  BACKUP, and MASTER again one skew time later (nobody better), every VIP back.
  A VIP whose line says ``no_track`` is left deleted and the MASTER stays.
* The interface the adverts take their source from (no ``unicast_src_ip`` /
  ``mcast_src_ip``) losing its only address: FAULT; the address back: BACKUP,
  then MASTER.  A configured source deleted changes nothing, ``track_src_ip``
  or not.

Each behaviour was first watched with the real keepalived 2.2.7 in a namespace
(docs/keepalived.md#addresses-deleted-by-hand); the ``test_keepalived_*`` tests
replay the same deletions against it (its log and the kernel).  The service's
events are read from the bus, the VIPs from the kernel.
"""

from __future__ import annotations

import shutil
import time
from functools import partial

import pytest

from shared.lab.segment import Host
from shared.lab.wait import wait_until
from tests.lab.test_vrrp_service import VIP4, VIP6, Lab, has_vip, instance, mdi, states
from tests.lab.test_vrrp_three_node import STARTUP, reported, state_events

pytestmark = [pytest.mark.root, pytest.mark.timeout(90)]

ADVERT = 0.5
PRIO = 100
UNTRACKED = "192.0.2.101"
STEADY = 3 * ADVERT
"""How long "nothing happens" is watched: several advert intervals."""


def two_vips(extra: str = "") -> str:
    """One instance, a tracked VIP and a ``no_track`` one."""
    return instance(PRIO, advert=ADVERT, vip=f"{VIP4}\n        {UNTRACKED} no_track", extra=extra)


def master(lab: Lab, host: Host, conf: str, vip: str = VIP4) -> str:
    """Start the service on ``host`` and wait until it is MASTER with ``vip``; returns its node name."""
    proc = lab.service(host, conf)
    wait_until(f"{host.name} to hold the VIP", lambda: has_vip(host, vip), STARTUP)
    wait_until(f"{proc.node} to report MASTER", partial(reported, lab, proc, 2), STARTUP)
    return proc.node


def delete(host: Host, address: str) -> None:
    host.ip("addr", "del", address, "dev", "eth0")


def test_vip_deleted_by_hand_steps_the_master_down_unless_no_track(lab: Lab) -> None:
    """no_track VIP deleted: still MASTER, VIP stays gone; tracked VIP deleted: BACKUP, MASTER, both back."""
    a = lab.hosts[0]
    node = master(lab, a, two_vips())
    assert has_vip(a, UNTRACKED)

    delete(a, f"{UNTRACKED}/32")
    assert len(state_events(lab, node, 3, timeout=STEADY)) == 2
    assert not has_vip(a, UNTRACKED) and has_vip(a, VIP4)

    delete(a, f"{VIP4}/32")
    events = state_events(lab, node, 4)
    assert states(events) == [
        ("BACKUP", "startup"),
        ("MASTER", "master_down_timer"),
        ("BACKUP", "other"),
        ("MASTER", "master_down_timer"),
    ]
    back_after = (events[3].ts - events[2].ts) / 1e9
    assert back_after < mdi(ADVERT, PRIO), "retaken after the skew time, not a full down interval"
    wait_until("both VIPs back", lambda: has_vip(a, VIP4) and has_vip(a, UNTRACKED), 5)


def test_ipv6_vip_deleted_by_hand_steps_the_master_down_once(lab: Lab) -> None:
    """IPv6 deletions carry no sender: the service's own removal on stepping down is not another one."""
    a = lab.hosts[0]
    node = master(lab, a, instance(PRIO, advert=ADVERT, vip=f"{VIP6}/64"), VIP6)

    delete(a, f"{VIP6}/64")
    wait_until("the IPv6 VIP back", lambda: has_vip(a, VIP6), 5)
    assert states(state_events(lab, node, 5, timeout=STEADY)) == [
        ("BACKUP", "startup"),
        ("MASTER", "master_down_timer"),
        ("BACKUP", "other"),
        ("MASTER", "master_down_timer"),
    ]


def test_interface_losing_the_source_address_faults_the_instance(lab: Lab) -> None:
    """No source configured: the interface's only IPv4 address deleted → FAULT; back → BACKUP, MASTER."""
    a = lab.hosts[0]
    node = master(lab, a, two_vips("    track_src_ip"))

    delete(a, str(a.prefix))
    wait_until("a to drop its VIPs", lambda: not has_vip(a, VIP4), 5)
    assert states(state_events(lab, node, 3))[2] == ("FAULT", "other")

    a.ip("addr", "add", str(a.prefix), "dev", "eth0")
    wait_until("a to hold the VIP again", lambda: has_vip(a, VIP4), STARTUP)
    assert states(state_events(lab, node, 5)) == [
        ("BACKUP", "startup"),
        ("MASTER", "master_down_timer"),
        ("FAULT", "other"),
        ("BACKUP", "other"),
        ("MASTER", "master_down_timer"),
    ]


def test_configured_source_deleted_changes_nothing(lab: Lab) -> None:
    """unicast_src_ip with track_src_ip: its address deleted at run time, the MASTER keeps advertising."""
    a, b = lab.hosts
    extra = f"    track_src_ip\n    unicast_src_ip {a.ipv4}\n    unicast_peer {{\n        {b.ipv4}\n    }}"
    node = master(lab, a, two_vips(extra))

    delete(a, str(a.prefix))
    assert len(state_events(lab, node, 3, timeout=STEADY)) == 2
    assert has_vip(a, VIP4)


@pytest.mark.interop
@pytest.mark.skipif(shutil.which("keepalived") is None, reason="keepalived is not installed")
def test_keepalived_does_the_same(pair: list[Host]) -> None:
    """The reference: keepalived 2.2.7 on the same configuration and the same deletions, seen in its log."""
    a = pair[0]
    daemon = a.start("keepalived", two_vips("    track_src_ip"))
    try:
        wait_until("keepalived to hold the VIP", lambda: has_vip(a, VIP4), STARTUP)
        delete(a, f"{UNTRACKED}/32")
        time.sleep(STEADY)  # nothing may happen: no condition to wait on
        assert daemon.output().count("Entering MASTER STATE") == 1 and not has_vip(a, UNTRACKED)

        delete(a, f"{VIP4}/32")
        wait_until("keepalived to retake", lambda: daemon.output().count("Entering MASTER STATE") == 2, 5)
        wait_until("both VIPs back", lambda: has_vip(a, VIP4) and has_vip(a, UNTRACKED), 5)
        assert "(VI_1) sent 0 priority" in daemon.output()

        delete(a, str(a.prefix))
        wait_until("keepalived in FAULT", lambda: "Entering FAULT STATE" in daemon.output(), 5)
        assert not has_vip(a, VIP4)
        a.ip("addr", "add", str(a.prefix), "dev", "eth0")
        wait_until("keepalived MASTER again", lambda: daemon.output().count("Entering MASTER STATE") == 3, 10)
    finally:
        daemon.stop()


@pytest.mark.interop
@pytest.mark.skipif(shutil.which("keepalived") is None, reason="keepalived is not installed")
def test_keepalived_ignores_a_configured_source_deleted(pair: list[Host]) -> None:
    """The reference for ``track_src_ip``: its configured unicast source deleted, keepalived stays MASTER."""
    a, b = pair
    extra = f"    track_src_ip\n    unicast_src_ip {a.ipv4}\n    unicast_peer {{\n        {b.ipv4}\n    }}"
    daemon = a.start("keepalived", two_vips(extra))
    try:
        wait_until("keepalived to hold the VIP", lambda: has_vip(a, VIP4), STARTUP)
        delete(a, str(a.prefix))
        time.sleep(STEADY)  # nothing may happen: no condition to wait on
        assert "Entering FAULT STATE" not in daemon.output() and has_vip(a, VIP4)
    finally:
        daemon.stop()
