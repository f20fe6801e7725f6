"""GARPs on the wire beyond the MASTER bursts: ``garp_extra_if`` and ``garp_group`` pacing.

A real lifeline vrrp service in a namespace with several links (``shared.lab.segment``;
the observer captures each link), checked against what keepalived 2.2.7 sends
with the same configuration in the same harness (docs/keepalived.md#gratuitous-arp-and-unsolicited-na):

* ``garp_extra_if all SECS``: every SECS (at the first advert after), one GARP
  for the first VIP of each interface other than the instance's own; none on
  the instance's interface;
* ``garp_group``: the pauses of the group, not the globals, on its interfaces,
  and one sequence of pauses for all the interfaces of an ``interfaces`` list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import pairwise

import pytest

from shared.lab.capture import GarpSeen, garps
from shared.lab.segment import Host, Impl, Segment
from shared.lab.wait import wait_until

pytestmark = [pytest.mark.root, pytest.mark.timeout(90)]

STARTUP = 12.0  # interpreter start + 3 x 1 s + skew, on a busy 2-core machine
PERIOD = 2
IMPLS = ["lifeline", "keepalived"]
"""keepalived 2.2.7 runs the same test: what lifeline must do is what it does."""


@pytest.fixture
def seg(netns_session: None) -> Iterator[Segment]:
    with Segment(["a"], links=3) as segment:
        yield segment


def instance(seg: Segment, body: str, globals_: str = "") -> str:
    """VI_1 on eth0 with a VIP there, two on eth1 and one on eth2; one GARP per burst, no second burst."""
    eth1 = [seg.link_address(1, 100), seg.link_address(1, 101)]
    vips = [
        f"{seg.address(100)}/32",
        *(f"{v}/32 dev eth1" for v in eth1),
        f"{seg.link_address(2, 100)}/32 dev eth2",
    ]
    lines = "".join(f"        {v}\n" for v in vips)
    return (
        f"{globals_}vrrp_instance VI_1 {{\n    state MASTER\n    interface eth0\n    virtual_router_id 42\n"
        f"    priority 200\n    advert_int 1\n    garp_master_delay 0\n{body}"
        f"    virtual_ipaddress {{\n{lines}    }}\n}}\n"
    )


class Wire:
    """Every GARP the observer sees on eth0..eth2, collected as the test waits."""

    def __init__(self, seg: Segment) -> None:
        self.captures = {f"eth{n}": seg.capture(f"eth{n}") for n in range(3)}
        self.seen: dict[str, list[GarpSeen]] = {name: [] for name in self.captures}

    def poll(self) -> dict[str, list[GarpSeen]]:
        for name, cap in self.captures.items():
            self.seen[name].extend(garps(cap.drain()))
        return self.seen

    def close(self) -> None:
        for cap in self.captures.values():
            cap.close()


@pytest.fixture
def wire(seg: Segment) -> Iterator[Wire]:
    w = Wire(seg)
    try:
        yield w
    finally:
        w.close()


def daemon_log(node: Host) -> Callable[[], str]:
    return lambda: node.daemon.tail(30) if node.daemon is not None else "(no daemon)"


def gaps(frames: list[GarpSeen]) -> list[float]:
    times = sorted(f.ts_ns for f in frames)
    return [(b - a) / 1e9 for a, b in pairwise(times)]


@pytest.mark.parametrize("impl", IMPLS)
def test_garp_extra_if_announces_the_first_vip_of_each_other_interface_every_period(
    seg: Segment, wire: Wire, impl: Impl
) -> None:
    """``garp_extra_if all 2``: after the burst, a GARP for eth1's first VIP and eth2's VIP every ~2 s.

    Nothing more on eth0 (the instance's own interface: its adverts keep the
    switch's cache), nothing for the second eth1 VIP (one per interface).
    """
    (a,) = seg.hosts
    first_eth1, second_eth1 = seg.link_address(1, 100), seg.link_address(1, 101)
    a.start(impl, instance(seg, f"    garp_master_repeat 1\n    garp_extra_if all {PERIOD}\n"))
    wait_until(
        "the MASTER burst on eth1", lambda: len(wire.poll()["eth1"]) >= 2, STARTUP, explain=daemon_log(a)
    )

    def extra(dev: str) -> list[GarpSeen]:
        return wire.poll()[dev][{"eth1": 2, "eth2": 1}[dev] :]  # after the one-round MASTER burst

    wait_until(
        "three periodic GARPs on eth1", lambda: len(extra("eth1")) >= 3, 4 * PERIOD + 2, explain=daemon_log(a)
    )
    wait_until(
        "two periodic GARPs on eth2", lambda: len(extra("eth2")) >= 2, 2 * PERIOD, explain=daemon_log(a)
    )
    seen = wire.poll()
    assert {g.vip for g in seen["eth1"][:2]} == {first_eth1, second_eth1}  # the burst: every VIP
    assert {g.vip for g in extra("eth1")} == {first_eth1}, "only the first VIP of an interface"
    assert {g.vip for g in extra("eth2")} == {seg.link_address(2, 100)}
    assert len(seen["eth0"]) == 1, "no periodic GARP on the instance's own interface"
    assert all(gap > PERIOD - 0.5 for gap in gaps(extra("eth1"))), gaps(
        extra("eth1")
    )  # a period, not a burst
    a.stop()


@pytest.mark.parametrize("impl", IMPLS)
def test_garp_group_paces_its_interfaces_as_one_sequence_and_the_others_keep_the_global(
    seg: Segment, wire: Wire, impl: Impl
) -> None:
    """``garp_group { garp_interval 0.6; interfaces { eth1 eth2 } }`` with no global pacing, repeat 2.

    eth0's two leave back to back (the global ``vrrp_garp_interval`` 0).  On
    eth1 and eth2 together, one sequence 0.6 s apart: eth1's first VIP at
    once, then (each VIP waiting only once, in VIP order) eth1's first again,
    its second, eth2's: keepalived's pacing, 4 frames for 3 VIPs.
    """
    (a,) = seg.hosts
    group = "garp_group {\n    garp_interval 0.6\n    interfaces {\n        eth1\n        eth2\n    }\n}\n"
    a.start(impl, instance(seg, "    garp_master_repeat 2\n", globals_=group))

    def paced() -> list[GarpSeen]:
        seen = wire.poll()
        return sorted(seen["eth1"] + seen["eth2"], key=lambda g: g.ts_ns)

    wait_until(
        "the paced burst on eth1 and eth2", lambda: len(paced()) >= 4, STARTUP + 5, explain=daemon_log(a)
    )
    seen = wire.poll()
    assert len(seen["eth0"]) == 2 and gaps(seen["eth0"])[0] < 0.3, gaps(seen["eth0"])
    first, second = seg.link_address(1, 100), seg.link_address(1, 101)
    assert [g.vip for g in paced()] == [first, first, second, seg.link_address(2, 100)]
    assert all(gap >= 0.55 for gap in gaps(paced())), gaps(paced())
    a.stop()
