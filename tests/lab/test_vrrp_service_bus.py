"""The vrrp service and the bus: elections go on with NATS stopped; reload via SIGHUP.

Harness (namespaces, relays, processes) from ``test_vrrp_service``.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from shared.lab.nats import NatsServer
from shared.lab.segment import Host
from shared.lab.wait import wait_until
from tests.lab.test_vrrp_service import VIP4, Lab, has_vip, instance, mdi, states

pytestmark = [pytest.mark.root, pytest.mark.timeout(60)]


def test_nats_stopped_during_failover(
    pair: list[Host], tmp_path: Path, nats_server_factory: Callable[[], NatsServer]
) -> None:
    """NATS down: the VIP still moves; the events of that time reach the stream, in order, afterwards."""
    server = nats_server_factory()
    lab = Lab(pair, tmp_path, server)
    try:
        a, b = pair
        pa = lab.service(a, instance(150))
        wait_until("a to hold the VIP", lambda: has_vip(a, VIP4), 5)
        pb = lab.service(b, instance(100))
        assert states(lab.events(pa.node, 2)) == [("BACKUP", "startup"), ("MASTER", "master_down_timer")]
        assert states(lab.events(pb.node, 1)) == [("BACKUP", "startup")]

        server.stop()
        a.ip("link", "set", "eth0", "down")
        took = wait_until("b to take the VIP with NATS down", lambda: has_vip(b, VIP4), 5)
        print(f"\nfailover with NATS stopped: {took:.3f} s (MDI {mdi(0.1, 100):.3f} s)")
        assert took < mdi(0.1, 100) + 1.0
        a.ip("link", "set", "eth0", "up")
        wait_until("a to preempt back with NATS down", lambda: has_vip(a, VIP4) and not has_vip(b, VIP4), 5)
        time.sleep(0.3)

        server.start()
        got_a = lab.events(pa.node, 5, timeout=15)
        got_b = lab.events(pb.node, 3, timeout=15)
        assert states(got_a) == [
            ("BACKUP", "startup"),
            ("MASTER", "master_down_timer"),
            ("FAULT", "interface_down"),
            ("BACKUP", "interface_up"),
            ("MASTER", "preempt"),
        ]
        assert states(got_b) == [
            ("BACKUP", "startup"),
            ("MASTER", "master_down_timer"),
            ("BACKUP", "higher_priority_seen"),
        ]
        for events in (got_a, got_b):
            assert [e.seq for e in events] == sorted(e.seq for e in events)
            assert len({e.boot_id for e in events}) == 1
    except BaseException:
        print(lab.logs())
        raise
    finally:
        lab.close()


def test_sighup_reload_restarts_only_changed_instances(lab: Lab) -> None:
    """SIGHUP: a broken file is refused (running config stays); a valid one restarts only what changed."""
    a, b = lab.hosts
    vi2 = instance(150, name="VI_2", vrid=52, vip="192.0.2.200")
    pa = lab.service(a, instance(150) + vi2)
    wait_until("a to hold both VIPs", lambda: has_vip(a, VIP4) and has_vip(a, "192.0.2.200"), 5)
    lab.service(b, instance(100) + instance(100, name="VI_2", vrid=52, vip="192.0.2.200"))
    time.sleep(0.5)

    good = pa.conf.read_text()
    pa.conf.write_text(good + "vrrp_instance broken {\n    priority 300\n}\n")
    pa.signal(signal.SIGHUP)
    wait_until("the refusal in a's log", lambda: "reload refused" in pa.log(), 5)
    assert has_vip(a, VIP4) and has_vip(a, "192.0.2.200")

    pa.conf.write_text(instance(150) + instance(50, name="VI_2", vrid=52, vip="192.0.2.200"))
    pa.signal(signal.SIGHUP)
    wait_until("b to take VI_2", lambda: has_vip(b, "192.0.2.200"), 5)
    assert "reload applied: reconfigured VI_2" in pa.log()
    assert has_vip(a, VIP4) and not has_vip(b, VIP4)
    vi1 = lab.events(pa.node, 10, timeout=2)
    vi1_states = [(e.state.value, e.reason.value) for e in vi1 if e.instance == "VI_1"]
    assert vi1_states == [("BACKUP", "startup"), ("MASTER", "master_down_timer")]
