"""Sync groups, runtime control and split-brain, end to end: two nodes, real adverts, VIPs and NATS.

Reuses the single-instance lab harness (``test_vrrp_service``): each host runs
``python -m services.vrrp`` in its namespace; VIPs are checked with ``ip``;
control and split-brain events are read from the event stream.  VRRPv3 at 0.1 s adverts; bounds are generous
protocol-level ones and the measured times are printed (``pytest -s``).
"""

from __future__ import annotations

import asyncio
import json
import time

import nats
import pytest
from nats.js.api import DeliverPolicy

from shared.events import InstanceControl, SplitBrain, decode
from shared.lab.segment import Host
from shared.lab.wait import wait_until
from tests.lab.test_vrrp_service import VIP4, Lab, has_vip, instance, mdi

pytestmark = [pytest.mark.root, pytest.mark.timeout(90)]

VIP_B = "198.51.100.100"


def eth1_vip(host: Host) -> bool:
    return host.holds(VIP_B, "eth1")


def group_conf(priority: int) -> str:
    """VI_1 on eth0, VI_2 on eth1, one sync group."""
    vi2 = instance(priority, name="VI_2", vrid=52, vip=VIP_B).replace("interface eth0", "interface eth1")
    return (
        instance(priority)
        + vi2
        + """
vrrp_sync_group G1 {
    group {
        VI_1
        VI_2
    }
}
"""
    )


class Notices:
    """Collect ``InstanceControl``/``SplitBrain`` events from the stream (``lifeline.<node>.vrrp.>``)."""

    def __init__(self, lab: Lab, *nodes: str) -> None:
        self.lab, self.nodes = lab, nodes

    def collect(self, action: object, seconds: float) -> list[InstanceControl | SplitBrain]:
        """Subscribe (new events only), run ``action()`` (a callable), read on ``seconds``; those seen."""

        async def run() -> list[InstanceControl | SplitBrain]:
            nc = await nats.connect(self.lab.server.url)
            got: list[InstanceControl | SplitBrain] = []
            try:
                subs = [
                    await nc.jetstream().subscribe(
                        f"lifeline.{node}.vrrp.>", ordered_consumer=True, deliver_policy=DeliverPolicy.NEW
                    )
                    for node in self.nodes
                ]
                await asyncio.to_thread(action)  # type: ignore[arg-type]
                deadline = time.monotonic() + seconds
                while time.monotonic() < deadline:
                    for sub in subs:
                        try:
                            msg = await sub.next_msg(timeout=0.1)
                        except nats.errors.TimeoutError:
                            continue
                        event = decode(msg.data)
                        if isinstance(event, InstanceControl | SplitBrain):
                            got.append(event)
            finally:
                await nc.close()
            return got

        return asyncio.run(run())


def control(lab: Lab, node: str, endpoint: str, body: dict[str, object]) -> dict[str, object]:
    async def ask() -> dict[str, object]:
        nc = await nats.connect(lab.server.url)
        try:
            reply = await nc.request(
                f"lifeline.{node}.ctl.vrrp.{endpoint}", json.dumps(body).encode(), timeout=2
            )
            return dict(json.loads(reply.data))
        finally:
            await nc.close()

    return asyncio.run(ask())


def group_state(lab: Lab, node: str) -> str | None:
    try:
        groups = lab.status(node).get("sync_groups")
    except Exception:
        return None  # not on the bus yet
    return groups.get("G1", {}).get("state") if isinstance(groups, dict) else None


# --------------------------------------------------------------------------- tests


def test_sync_group_moves_together(lab: Lab) -> None:
    """Cutting only VI_2's link on the master faults the group there: BOTH instances move to b."""
    a, b = lab.hosts
    a.segment.add_link()  # an eth1 on every host, on a second bridge: one member's link can be cut alone
    pa = lab.service(a, group_conf(150))
    wait_until("a to hold both VIPs", lambda: has_vip(a, VIP4) and eth1_vip(a), 5)
    pb = lab.service(b, group_conf(100))
    wait_until("b's group to report BACKUP", lambda: group_state(lab, pb.node) == "BACKUP", 5, step=0.1)
    time.sleep(0.5)
    assert not has_vip(b, VIP4) and not eth1_vip(b)

    a.ip("link", "set", "eth1", "down")
    took = wait_until("b to hold both VIPs", lambda: has_vip(b, VIP4) and eth1_vip(b), 5)
    bound = mdi(0.1, 100)
    print(
        f"\nsync group: one link cut -> both on b in {took:.3f} s (b's VI_2 hears nothing: MDI {bound:.3f} s)"
    )
    assert not has_vip(a, VIP4), "a's VI_1 (link still up) must have followed the group to FAULT"
    st = lab.status(pa.node)
    assert st["sync_groups"] == {"G1": {"state": "FAULT", "members": {"VI_1": "FAULT", "VI_2": "FAULT"}}}
    assert lab.status(pb.node)["sync_groups"]["G1"]["state"] == "MASTER"  # type: ignore[index]

    a.ip("link", "set", "eth1", "up")
    back = wait_until(
        "a to preempt both back", lambda: has_vip(a, VIP4) and eth1_vip(a) and not has_vip(b, VIP4), 5
    )
    print(f"sync group: link up -> both back on a in {back:.3f} s (MDI {mdi(0.1, 150):.3f} s)")


def test_set_priority_and_maintenance(lab: Lab) -> None:
    """set_priority moves mastership; maintenance hands over at once; clear lets it preempt back."""
    a, b = lab.hosts
    _pa, pb = lab.master_then_backup(instance(150), instance(100))

    reply = control(
        lab, pb.node, "set_priority", {"instance": "VI_1", "priority": 200, "requested_by": "alice"}
    )
    assert reply["ok"] is True and reply["base_priority"] == 200, reply
    took = wait_until(
        "b to take over after set_priority", lambda: has_vip(b, VIP4) and not has_vip(a, VIP4), 5
    )
    print(f"\nset_priority 200 on the backup -> master in {took:.3f} s (MDI {mdi(0.1, 200):.3f} s)")
    st = lab.status(pb.node)["instances"]["VI_1"]  # type: ignore[index]
    assert st["base_priority"] == 200 and st["control"]["requested_by"] == "alice", st  # type: ignore[index]
    assert (
        control(lab, pb.node, "set_priority", {"instance": "VI_1", "priority": 300, "requested_by": "x"})[
            "ok"
        ]
        is False
    )

    handover: list[float] = []

    def maintenance() -> None:
        r = control(lab, pb.node, "maintenance", {"instance": "VI_1", "duration": 600, "requested_by": "bob"})
        assert r["ok"] is True, r
        handover.append(wait_until("a to take over", lambda: has_vip(a, VIP4) and not has_vip(b, VIP4), 3))

    notices = Notices(lab, pb.node).collect(maintenance, 0.5)
    print(
        f"maintenance on the master (prio-0 handover) -> a holds the VIP {handover[0]:.3f} s after the reply"
    )
    assert any(isinstance(n, InstanceControl) and n.requested_by == "bob" for n in notices), notices
    time.sleep(1.0)  # b must not compete while in maintenance (its priority 200 beats a's 150)
    assert has_vip(a, VIP4) and not has_vip(b, VIP4)

    cleared = control(lab, pb.node, "clear", {"instance": "VI_1", "requested_by": "bob"})
    assert cleared["ok"] is True and cleared["base_priority"] == 100, cleared
    time.sleep(1.0)  # configured 100 < 150: b stays backup after clear
    assert has_vip(a, VIP4) and not has_vip(b, VIP4)
    st = lab.status(pb.node)["instances"]["VI_1"]  # type: ignore[index]
    assert st["control"] == {} and st["state"] == "BACKUP", st

    control(lab, pb.node, "set_priority", {"instance": "VI_1", "priority": 200, "requested_by": "carol"})
    control(lab, pb.node, "maintenance", {"instance": "VI_1", "duration": 1.5, "requested_by": "carol"})
    time.sleep(0.3)
    assert has_vip(a, VIP4)
    back = wait_until("b to preempt when maintenance times out", lambda: has_vip(b, VIP4), 5)
    print(
        f"maintenance 1.5 s timed out -> b (priority 200) master again {back + 0.3:.3f} s after the request"
    )


def test_split_brain_heals_to_one_master(lab: Lab) -> None:
    """Partition: both MASTER; heal: one master again within about one advert interval, split_brain event."""
    a, b = lab.hosts
    pa, pb = lab.master_then_backup(instance(150), instance(100))
    for host in lab.hosts:  # the partition: isolated bridge ports, carrier stays up (no FAULT)
        host.switch.ip("link", "set", "dev", host.port, "type", "bridge_slave", "isolated", "on")
    wait_until("b to become master too", lambda: has_vip(b, VIP4), 5)
    assert has_vip(a, VIP4)
    took: list[float] = []

    def heal() -> None:
        for host in lab.hosts:
            host.switch.ip("link", "set", "dev", host.port, "type", "bridge_slave", "isolated", "off")
        took.append(
            wait_until("one master", lambda: has_vip(a, VIP4) and not has_vip(b, VIP4), 5, step=0.005)
        )

    notices = Notices(lab, pa.node, pb.node).collect(heal, 1.0)
    print(f"\nsplit brain healed: one master {took[0]:.3f} s after the ports were joined (advert 0.1 s)")
    assert took[0] < 0.1 + 1.0, "one advert interval plus generous slack (scheduling)"
    brains = [n for n in notices if isinstance(n, SplitBrain)]
    print(f"split_brain events: {[(n.node, n.peer, n.peer_priority, n.count) for n in brains]}")
    assert brains and all(n.vrid == 51 and n.count >= 1 for n in brains), notices
    seen_a = lab.status(pa.node)["instances"]["VI_1"]["split_brain"]  # type: ignore[index]
    seen_b = lab.status(pb.node)["instances"]["VI_1"]["split_brain"]  # type: ignore[index]
    print(f"split_brain in status: a={seen_a} b={seen_b}")
    assert seen_a["count"] + seen_b["count"] >= len(brains)  # type: ignore[index]
    time.sleep(0.5)
    assert has_vip(a, VIP4) and not has_vip(b, VIP4), "still exactly one master"
