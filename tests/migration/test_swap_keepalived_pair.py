"""The migration procedure of docs/migrate-from-keepalived.md, on a keepalived 2.2.7 pair serving HTTP.

Nodes a (priority 200, master) and b (100) run the real keepalived on one
keepalived.conf each (first a handover and a preemption between the two
keepalived, the reference for what follows); each node runs a tiny HTTP server on every address, and
a client in a third namespace asks the VIP every 20 ms.  Then, as the guide
says: swap b (stop keepalived, start lifeline's vrrp on the same file), hand
a's mastership over deliberately (keepalived's graceful stop: a priority-0
advert), swap a (lifeline on a preempts back), and roll a back to keepalived
(lifeline's graceful stop hands over, keepalived preempts back).

Printed: the requests lost at each step.  Asserted, generously: the backup's
swaps lose none and keep a the sole holder; each deliberate handover loses
no more than one failover's Master_Down_Interval of requests; never two
masters on the wire for more than one advert interval.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.lab.capture import AdvertSeen, adverts
from shared.lab.segment import Host, Impl, Segment
from shared.lab.wait import wait_until
from tests.interop.vrrp_peers import (
    BACKUP_PRIORITY,
    MASTER_PRIORITY,
    V2_PASS,
    V3_IPV4,
    VRID,
    Flavour,
    assert_sole_holder,
    instance_config,
    logs,
)
from tests.migration.masters import two_masters
from tests.migration.traffic import PERIOD, Step, Traffic

pytestmark = [
    pytest.mark.root,
    pytest.mark.interop,
    pytest.mark.timeout(180),
    pytest.mark.skipif(shutil.which("keepalived") is None, reason="keepalived is not installed"),
]

SETTLE = 1.0
"""Seconds of traffic after each step, so its last lost request (if any) belongs to it."""


@pytest.fixture
def seg(netns_session: None) -> Iterator[Segment]:
    """a and b run VRRP, c is the HTTP client; the observer captures the adverts."""
    with Segment(["a", "b", "c"]) as segment:
        yield segment


def config_file(node: Host, flavour: Flavour, seg: Segment, priority: int) -> Path:
    """The node's production file: one keepalived.conf, read by keepalived and lifeline alike."""
    path = node.workdir / "keepalived.conf"
    text = instance_config(flavour, seg, node, priority)
    path.write_text(text)
    return path


def swap_in(node: Host, impl: Impl, conf: Path, flavour: Flavour) -> None:
    """Start ``impl`` on ``conf`` and wait until it has entered its first state."""
    log = node.workdir / f"{impl}.log"
    mark = len(log.read_text(errors="replace")) if log.exists() else 0  # a second run appends to the log
    daemon = node.start(impl, conf)
    entered = "(VI_1) Entering "
    timeout = 10 + flavour.master_down(1)
    wait_until(f"{node.role}'s {impl} to start", lambda: entered in daemon.output()[mark:], timeout)


def served(traffic: Traffic, role: str, seg: Segment) -> None:
    """Wait until ``role`` holds the VIP and has answered a second's worth of requests since."""
    since = time.monotonic()
    wait_until(
        f"{role} to answer on the VIP",
        lambda: traffic.answered_since(since, role) >= SETTLE / PERIOD / 2,
        10 + SETTLE,
        explain=lambda: logs(seg),
    )


@pytest.mark.parametrize("flavour", [pytest.param(V2_PASS, id="v2"), pytest.param(V3_IPV4, id="v3")])
def test_swap_backup_then_master_then_roll_back(seg: Segment, flavour: Flavour) -> None:
    a, b, c = seg.hosts
    vip = flavour.vip(seg)
    conf = {
        a.role: config_file(a, flavour, seg, MASTER_PRIORITY),
        b.role: config_file(b, flavour, seg, BACKUP_PRIORITY),
    }
    seen: list[AdvertSeen] = []
    traffic = Traffic([a, b], c, vip)
    preempt = flavour.master_down(MASTER_PRIORITY) + 5
    with seg.capture() as cap:
        a.start("keepalived", conf["a"])
        b.start("keepalived", conf["b"])
        wait_until(
            "a to hold the VIP", lambda: seg.holders(vip), 2 * flavour.master_down(1) + 5, expect=["a"]
        )
        traffic.start()
        try:
            traffic.mark("keepalived pair")
            served(traffic, "a", seg)

            traffic.mark("reference: keepalived a stops, b takes over")  # the same work, keepalived alone
            a.stop()
            served(traffic, "b", seg)
            traffic.mark("reference: keepalived a preempts back")
            swap_in(a, "keepalived", conf["a"], flavour)
            wait_until("a to preempt", lambda: seg.holders(vip), preempt, expect=["a"])
            served(traffic, "a", seg)

            traffic.mark("swap b (backup)")
            b.stop()
            swap_in(b, "lifeline", conf["b"], flavour)
            assert_sole_holder(seg, vip, "a", 3 * flavour.interval)
            served(traffic, "a", seg)

            traffic.mark("hand over a (keepalived stops)")
            a.stop()
            served(traffic, "b", seg)

            traffic.mark("swap a (lifeline preempts)")
            swap_in(a, "lifeline", conf["a"], flavour)
            wait_until("a to preempt", lambda: seg.holders(vip), preempt, expect=["a"])
            served(traffic, "a", seg)

            traffic.mark("roll back a: hand over (lifeline stops)")
            a.stop()
            served(traffic, "b", seg)

            traffic.mark("roll back a: keepalived preempts")
            swap_in(a, "keepalived", conf["a"], flavour)
            wait_until("a to preempt", lambda: seg.holders(vip), preempt, expect=["a"])
            served(traffic, "a", seg)
            seen += adverts(cap.drain())
        finally:
            traffic.stop()
    report(flavour, traffic.steps())
    check(flavour, traffic.steps(), seen)


def report(flavour: Flavour, steps: list[Step]) -> None:
    bound = flavour.master_down(BACKUP_PRIORITY)
    every = f"a request every {PERIOD * 1000:.0f} ms"
    print(f"\nmigration, VRRPv{flavour.version} advert_int {flavour.interval:g} s, {every}")
    print(f"(bound at a handover: Master_Down_Interval {bound:.3f} s = {bound / PERIOD:.0f} requests)")
    for step in steps:
        who = " -> ".join(step.served_by) or "nobody"
        lost = f"{step.lost:4} lost ({step.outage * 1000:6.0f} ms)"
        print(f"  {step.name:42} {step.requests:5} requests, {lost}, served by {who}")


def check(flavour: Flavour, steps: list[Step], seen: list[AdvertSeen]) -> None:
    by_name = {s.name: s for s in steps}
    for name in ("keepalived pair", "swap b (backup)"):
        assert by_name[name].lost == 0, f"{name}: {by_name[name]}"
        assert by_name[name].served_by == ("a",), f"{name}: {by_name[name]}"
    bound = flavour.master_down(BACKUP_PRIORITY)
    for step in steps:
        assert step.lost * PERIOD <= bound and step.outage <= bound + PERIOD, f"{step} (bound {bound:.3f} s)"
    dual = two_masters(seen, VRID, flavour.interval)
    worst = max((overlap for _, _, overlap in dual), default=0.0)
    print(f"  two masters on the wire: {len(dual)} times, longest {worst * 1000:.0f} ms")
    assert worst <= flavour.interval, dual
