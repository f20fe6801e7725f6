"""Configs and checks for the VRRP interop tests (lifeline against the real keepalived 2.2.7).

Both implementations read the same keepalived.conf text, so a test builds
one config per node from a :class:`Flavour` and hands it to whichever
implementation plays that node (:mod:`shared.lab.segment` starts either).  The
verdict always comes from the kernel: which node carries the VIP (on
``eth0``, or on any interface for VMAC, whose VIPs live on ``vrrp.<VRID>``),
sampled over a window, because that is what an operator (and traffic) sees;
for multicast flavours the wire is checked too, since a node that wrongly
became master between two samples still sends adverts.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from services.vrrp.core.timers import CS, master_down_interval
from shared.lab.capture import Packet, garps, parse_advert
from shared.lab.netns import IFNAME
from shared.lab.segment import Host, Impl, Segment
from shared.lab.wait import wait_until

MASTER_PRIORITY = 200
BACKUP_PRIORITY = 100
VRID = 42
VMAC_DEV = f"vrrp.{VRID}"
VMAC_MAC = f"00:00:5e:00:01:{VRID:02x}"


@dataclass(frozen=True)
class Flavour:
    """One way of running an instance: version, interval, family, auth, transport."""

    name: str
    version: int = 3
    interval: float = 0.2
    ipv6: bool = False
    auth_pass: str | None = None
    auth_type: str = "PASS"
    unicast: bool = False
    vmac: bool = False

    @property
    def vip_dev(self) -> str | None:
        """Where the VIP must be looked for: ``eth0``, or anywhere (None) with VMAC."""
        return None if self.vmac else IFNAME

    def vip(self, seg: Segment) -> str:
        return f"fd00:{seg.net:x}::100" if self.ipv6 else seg.address(100)

    @property
    def interval_cs(self) -> int:
        return round(self.interval * CS)

    def master_down(self, priority: int) -> float:
        """Master_Down_Interval of a backup at ``priority`` (the core's arithmetic, keepalived's formulas)."""
        return master_down_interval(self.version, priority, self.interval_cs, 3)


V2_PASS = Flavour("v2-pass", version=2, interval=1.0, auth_pass="secret12")
V2_AH = Flavour("v2-ah", version=2, interval=1.0, auth_pass="secret12", auth_type="AH")
V3_IPV4 = Flavour("v3-ipv4")
V3_IPV6 = Flavour("v3-ipv6", ipv6=True)
UNICAST = Flavour("unicast", unicast=True)
VMAC = Flavour("vmac", vmac=True)


def instance_config(
    flavour: Flavour, seg: Segment, node: Host, priority: int, *, nopreempt: bool = False
) -> str:
    """keepalived.conf text for ``node`` (every option written out, nothing left to defaults)."""
    vip = flavour.vip(seg)
    lines = [
        "global_defs {",
        f"    router_id {node.role}",
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
        lines += ["    authentication {", f"        auth_type {flavour.auth_type}"]
        lines.append(f"        auth_pass {flavour.auth_pass}")
        lines.append("    }")
    if flavour.unicast:
        peers = [str(n.ipv4) for n in seg.hosts if n is not node]
        lines += [f"    unicast_src_ip {node.ipv4}", "    unicast_peer {"]
        lines += [f"        {peer}" for peer in peers] + ["    }"]
    if flavour.vmac:
        lines.append("    use_vmac")
    lines += ["    virtual_ipaddress {", f"        {vip}/{64 if flavour.ipv6 else 32}", "    }", "}"]
    return "\n".join(lines) + "\n"


def start(node: Host, impl: Impl, config: str) -> None:
    node.start(impl, config)


def converge(seg: Segment, vip: str, expected: str, timeout: float, dev: str | None = IFNAME) -> None:
    """Wait until ``expected`` alone holds ``vip``; fail with the holders and both logs if it never does."""
    what = f"{expected} alone to hold {vip}"
    wait_until(what, lambda: seg.holders(vip, dev), timeout, expect=[expected], explain=lambda: logs(seg))


def assert_sole_holder(
    seg: Segment, vip: str, expected: str, seconds: float, dev: str | None = IFNAME
) -> None:
    """Sample the kernel's addresses for ``seconds``: exactly ``expected`` every time (never 2, never 0)."""
    end = time.monotonic() + seconds
    samples = 0
    while time.monotonic() < end:
        holders_now = seg.holders(vip, dev)
        assert holders_now == [expected], f"sample {samples}: VIP {vip} held by {holders_now}\n{logs(seg)}"
        samples += 1
        time.sleep(0.05)
    assert samples >= 5


def assert_only_advertiser(packets: list[Packet], node: Host, *, ipv6: bool, mac: str | None = None) -> None:
    """Every advert of our VRID in ``packets`` came from ``node`` (one master on the wire).

    ``mac``: every one of them must also carry this Ethernet source (the VMAC).
    """
    src = str(node.link_local if ipv6 else node.ipv4)
    seen = [(p, a) for p in packets if (a := parse_advert(p)) is not None and a.vrid == VRID]
    assert seen, "no adverts on the wire"
    others = {a.src for _, a in seen if a.src != src}
    assert not others, f"adverts from {others} too: two masters on the wire"
    if mac is not None:
        macs = {p.data[6:12].hex(":") for p, _ in seen}
        assert macs == {mac}, f"adverts from MAC {macs}, want the VMAC {mac}"


def assert_vmac(seg: Segment, packets: list[Packet], master: Host, vip: str) -> None:
    """Kernel and wire agree with keepalived's VMAC (docs/keepalived.md#vmac) on ``master``.

    Kernel: on every node ``vrrp.<VRID>`` is a private-mode macvlan on eth0
    with MAC 00:00:5e:00:01:VRID, up (in BACKUP too); the master's carries the
    VIP (its eth0 does not).  Wire:
    the master's GARPs for the VIP come from the VMAC.
    """
    for node in seg.hosts:  # the backup has its VMAC too, up, without the VIP
        link = json.loads(node.ip("-d", "-j", "link", "show", "dev", VMAC_DEV))[0]
        info = link.get("linkinfo", {})
        assert (info.get("info_kind"), info.get("info_data", {}).get("mode")) == ("macvlan", "private"), link
        assert link["address"] == VMAC_MAC and link["link"] == IFNAME and "UP" in link["flags"], link
    assert vip in master.addresses(VMAC_DEV) and vip not in master.addresses(IFNAME)
    announced = {g.mac for g in garps(packets) if g.vip == vip}
    assert announced == {VMAC_MAC}, f"GARPs for {vip} from {announced}, want {VMAC_MAC}"


def logs(seg: Segment) -> str:
    parts = []
    for node in seg.hosts:
        if node.daemon is not None:
            parts.append(f"--- {node.role} ({node.impl}) ---\n{node.daemon.tail(25)}")
    return "\n".join(parts)
