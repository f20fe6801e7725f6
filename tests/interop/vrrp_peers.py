"""Configs and checks for the VRRP interop tests (lifeline against the real keepalived 2.2.7).

Both implementations read the same keepalived.conf text, so a test builds
one config per node from a :class:`Flavour` and hands it to whichever
implementation plays that node (:mod:`bench._lab` starts either).  The
verdict always comes from the kernel: which node's ``eth0`` carries the VIP,
sampled over a window, because that is what an operator (and traffic) sees;
for multicast flavours the wire is checked too, since a node that wrongly
became master between two samples still sends adverts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from bench._lab import Capture, Impl, Node, Segment, adverts, wait_for

MASTER_PRIORITY = 200
BACKUP_PRIORITY = 100
VRID = 42


@dataclass(frozen=True)
class Flavour:
    """One way of running an instance: version, interval, family, auth, transport."""

    name: str
    version: int = 3
    interval: float = 0.2
    ipv6: bool = False
    auth_pass: str | None = None
    unicast: bool = False

    def vip(self, seg: Segment) -> str:
        return f"fd00:{seg.net:x}::100" if self.ipv6 else seg.address(100)

    def master_down(self, priority: int) -> float:
        skew = (256 - priority) / 256 * (1.0 if self.version == 2 else self.interval)
        return 3 * self.interval + skew


V2_PASS = Flavour("v2-pass", version=2, interval=1.0, auth_pass="secret12")
V3_IPV4 = Flavour("v3-ipv4")
V3_IPV6 = Flavour("v3-ipv6", ipv6=True)
UNICAST = Flavour("unicast", unicast=True)


def instance_config(
    flavour: Flavour, seg: Segment, node: Node, priority: int, *, nopreempt: bool = False
) -> str:
    """keepalived.conf text for ``node`` (every option written out, nothing left to defaults)."""
    vip = flavour.vip(seg)
    lines = [
        "global_defs {",
        f"    router_id {node.name}",
        "}",
        "vrrp_instance VI_1 {",
        "    state BACKUP",
        "    interface eth0",
        f"    virtual_router_id {VRID}",
        f"    priority {priority}",
        f"    version {flavour.version}",
        f"    advert_int {flavour.interval:g}",
    ]
    if nopreempt:
        lines.append("    nopreempt")
    if flavour.auth_pass is not None:
        lines += ["    authentication {", "        auth_type PASS", f"        auth_pass {flavour.auth_pass}"]
        lines.append("    }")
    if flavour.unicast:
        peers = [str(n.ipv4) for n in seg.nodes if n is not node]
        lines += [f"    unicast_src_ip {node.ipv4}", "    unicast_peer {"]
        lines += [f"        {peer}" for peer in peers] + ["    }"]
    lines += ["    virtual_ipaddress {", f"        {vip}/{64 if flavour.ipv6 else 32}", "    }", "}"]
    return "\n".join(lines) + "\n"


def start(node: Node, impl: Impl, config: str) -> None:
    node.start(impl, config)


def converge(seg: Segment, vip: str, expected: str, timeout: float) -> None:
    """Wait until ``expected`` alone holds ``vip``; fail with both logs if it never happens."""
    if not wait_for(lambda: seg.holders(vip) == [expected], timeout):
        raise AssertionError(f"never converged to {expected} alone: holders {seg.holders(vip)}\n{logs(seg)}")


def assert_sole_holder(seg: Segment, vip: str, expected: str, seconds: float) -> None:
    """Sample the kernel's addresses for ``seconds``: exactly ``expected`` every time (never 2, never 0)."""
    end = time.monotonic() + seconds
    samples = 0
    while time.monotonic() < end:
        holders = seg.holders(vip)
        assert holders == [expected], f"sample {samples}: VIP {vip} held by {holders}\n{logs(seg)}"
        samples += 1
        time.sleep(0.05)
    assert samples >= 5


def assert_only_advertiser(cap: Capture, node: Node, *, ipv6: bool) -> None:
    """Every advert of our VRID captured since the last drain came from ``node`` (one master on the wire)."""
    src = str(node.link_local if ipv6 else node.ipv4)
    seen = [a for a in adverts(cap.drain()) if a.vrid == VRID]
    assert seen, "no adverts on the wire"
    others = {a.src for a in seen if a.src != src}
    assert not others, f"adverts from {others} too: two masters on the wire"


def logs(seg: Segment) -> str:
    parts = []
    for node in seg.nodes:
        if node.daemon is not None:
            parts.append(f"--- {node.name} ({node.impl}) ---\n{node.daemon.tail(25)}")
    return "\n".join(parts)
