"""``use_vmac`` end to end: lifeline's vrrp service makes, uses and removes the VMAC as keepalived 2.2.7 does.

A real service process in a namespace (``shared.lab.segment``: one host on a bridge,
its own nats-server, an observer capturing every frame), checked the
operator's way: ``ip -d -j link``/``addr`` and the sysctl files inside the
namespace, and the frames on the wire.  What is checked comes from
docs/keepalived.md ("VMAC") and from running keepalived 2.2.7 with the
same config in the same harness (the interop matrix's VMAC flavour).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from shared.lab.capture import adverts, garps
from shared.lab.errors import LabError
from shared.lab.netns import IFNAME
from shared.lab.segment import Host, Impl, Segment
from shared.lab.wait import wait_until

pytestmark = [pytest.mark.root, pytest.mark.timeout(60)]

VRID = 42
VMAC_DEV = f"vrrp.{VRID}"
STARTUP = 10.0  # interpreter start + 3 x 0.2 s + skew, on a busy 2-core machine


@pytest.fixture
def seg(netns_session: None) -> Iterator[Segment]:
    with Segment(["a"]) as segment:
        yield segment


def config(seg: Segment, *, ipv6: bool = False) -> str:
    vip = f"fd00:{seg.net:x}::100/64" if ipv6 else f"{seg.address(100)}/32"
    return (
        "vrrp_instance VI_1 {\n    state BACKUP\n    interface eth0\n"
        f"    virtual_router_id {VRID}\n    priority 200\n    version 3\n    advert_int 0.2\n"
        f"    use_vmac\n    virtual_ipaddress {{\n        {vip}\n    }}\n}}\n"
    )


def vip_of(seg: Segment, *, ipv6: bool = False) -> str:
    return f"fd00:{seg.net:x}::100" if ipv6 else seg.address(100)


def link(node: Host, dev: str = VMAC_DEV) -> dict[str, Any] | None:
    data = json.loads(node.ip("-d", "-j", "link", "show"))
    return next((entry for entry in data if entry["ifname"] == dev), None)


def sysctl(node: Host, path: str) -> int:
    return int(node.ns.run(["cat", f"/proc/sys/net/{path}"], check=True).stdout.strip())


def on_vmac(node: Host, dev: str = VMAC_DEV) -> set[str]:
    """Addresses on the VMAC; none while it does not exist (it may vanish between two commands)."""
    try:
        return node.addresses(dev)
    except LabError:
        return set()


def holds_on_vmac(node: Host, vip: str) -> bool:
    return vip in on_vmac(node)


def daemon_log(node: Host) -> Callable[[], str]:
    """For ``explain``: the end of ``node``'s daemon log when a wait times out."""
    return lambda: node.daemon.tail(30) if node.daemon is not None else "(no daemon)"


@pytest.mark.parametrize("ipv6", [False, True], ids=["ipv4", "ipv6"])
def test_vmac_created_used_and_removed(seg: Segment, ipv6: bool) -> None:
    """Private macvlan, VRRP MAC; sysctls set, then restored; VIP, adverts, GARPs on it; gone on SIGTERM."""
    (a,) = seg.hosts
    a_log = daemon_log(a)
    vip = vip_of(seg, ipv6=ipv6)
    mac = f"00:00:5e:00:0{2 if ipv6 else 1}:{VRID:02x}"
    rp_filter_on = ["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=1"]  # exercise keepalived's rp_filter move
    a.ns.run(rp_filter_on, check=True)
    before = {p: sysctl(a, p) for p in SYSCTLS_RESTORED}
    with seg.capture() as cap:
        a.start("lifeline", config(seg, ipv6=ipv6))
        wait_until(f"the VIP on {VMAC_DEV}", lambda: holds_on_vmac(a, vip), STARTUP, explain=a_log)
        time.sleep(0.5)
        frames = cap.drain()
    vmac = link(a)
    assert vmac is not None
    kind = vmac["linkinfo"]
    assert (kind["info_kind"], kind["info_data"]["mode"]) == ("macvlan", "private"), vmac
    assert (vmac["address"], vmac["link"]) == (mac, IFNAME) and "UP" in vmac["flags"], vmac
    assert vip not in a.addresses(IFNAME)
    seen = [(p, x) for p in frames if (x := next(adverts([p]), None)) is not None and x.vrid == VRID]
    assert seen and {p.data[6:12].hex(":") for p, _ in seen} == {mac}, "adverts not from the VMAC"
    if ipv6:
        assert {x.src for _, x in seen} == {str(a.link_local)}  # the base's link-local, copied onto the VMAC
        assert str(a.link_local) in a.addresses(VMAC_DEV)
        assert sysctl(a, f"ipv6/conf/{VMAC_DEV}/addr_gen_mode") == 1
    else:
        assert {x.src for _, x in seen} == {str(a.ipv4)}  # the base's address: the VMAC has none
        assert {g.mac for g in garps(frames) if g.vip == vip} == {mac}
        assert_ipv4_sysctls(a)
    a.stop()
    assert link(a) is None, "VMAC left behind after SIGTERM"
    assert {p: sysctl(a, p) for p in SYSCTLS_RESTORED} == before


SYSCTLS_RESTORED = (
    "ipv4/conf/all/rp_filter",
    "ipv4/conf/default/rp_filter",
    "ipv4/conf/eth0/rp_filter",
    "ipv4/conf/eth0/arp_ignore",
    "ipv4/conf/eth0/arp_filter",
)


def assert_ipv4_sysctls(a: Host) -> None:
    """§2.10 on the VMAC and the base; a global rp_filter moved onto the other interfaces."""
    own = f"ipv4/conf/{VMAC_DEV}"
    got = {
        f"{own}/arp_ignore": 1,
        f"{own}/accept_local": 1,
        f"{own}/rp_filter": 0,
        f"{own}/promote_secondaries": 1,
        f"ipv6/conf/{VMAC_DEV}/disable_ipv6": 1,
        "ipv4/conf/eth0/arp_ignore": 1,
        "ipv4/conf/eth0/arp_filter": 1,
        "ipv4/conf/eth0/rp_filter": 1,
        "ipv4/conf/default/rp_filter": 1,
        "ipv4/conf/all/rp_filter": 0,
    }
    assert {p: sysctl(a, p) for p in got} == got


def test_stale_vmac_from_a_crash_is_replaced(seg: Segment) -> None:
    """kill -9 leaves the VMAC (and its VIP); the next start deletes it and makes a fresh one."""
    (a,) = seg.hosts
    a_log = daemon_log(a)
    vip = vip_of(seg)
    a.start("lifeline", config(seg))
    wait_until(f"the VIP on {VMAC_DEV}", lambda: holds_on_vmac(a, vip), STARTUP, explain=a_log)
    a.kill()
    stale = link(a)
    assert stale is not None and holds_on_vmac(a, vip), "kill -9 should leave the VMAC and its VIP"
    a.ip("addr", "add", f"{seg.address(77)}/32", "dev", VMAC_DEV)  # something only a stale one has
    log = seg.workdir / "a" / "lifeline.log"  # shared with the killed run: read only what follows
    mark = len(log.read_text())
    daemon = a.start("lifeline", config(seg))

    def second_run() -> str:
        return daemon.log.read_text()[mark:]

    wait_until(
        "the second run to be MASTER on a fresh VMAC",
        lambda: "Entering MASTER STATE" in second_run() and holds_on_vmac(a, vip),
        STARTUP,
        explain=second_run,
    )
    assert seg.address(77) not in on_vmac(a), "the stale VMAC was reused"
    assert "removing stale VMAC interface vrrp.42" in second_run()
    names = [e["ifname"] for e in json.loads(a.ip("-j", "link", "show"))]
    assert [n for n in names if n.startswith("vrrp")] == [VMAC_DEV]  # replaced, not a second one beside it
    a.stop()
    assert link(a) is None


def test_foreign_interface_with_the_vmac_name_is_left_alone(seg: Segment) -> None:
    """An interface called ``vrrp.42`` that is not a VMAC is never deleted: the instance is refused."""
    (a,) = seg.hosts
    a.ip("link", "add", VMAC_DEV, "type", "veth", "peer", "name", "x0")
    before = link(a)
    assert before is not None
    daemon = a.start("lifeline", config(seg))
    wait_until(
        "the VMAC refusal", lambda: "cannot set up VMAC" in daemon.tail(50), STARTUP, explain=daemon.tail
    )
    after = link(a)
    assert after is not None and after["ifindex"] == before["ifindex"]
    assert after["linkinfo"]["info_kind"] == "veth"
    assert vip_of(seg) not in a.addresses(None)


def address_vmac_config(seg: Segment, link1: int) -> str:
    """No instance VMAC; VIPs with ``use_vmac`` on their line (eth0, eth1), one without, an IPv6 eVIP with."""
    return (
        "global_defs {\n    vmac_addr_prefix vx\n}\n"
        "vrrp_instance VI_1 {\n    state BACKUP\n    interface eth0\n"
        f"    virtual_router_id {VRID}\n    priority 200\n    version 3\n    advert_int 0.2\n"
        "    virtual_ipaddress {\n"
        f"        {seg.address(100)}/32 use_vmac\n"
        f"        {seg.link_address(link1, 100)}/32 dev eth{link1} use_vmac\n"
        f"        {seg.address(102)}/32\n"
        "    }\n"
        f"    virtual_ipaddress_excluded {{\n        fd00:{seg.net:x}::100/64 use_vmac\n    }}\n}}\n"
    )


@pytest.mark.parametrize("impl", ["lifeline", "keepalived"])
def test_address_use_vmac_gets_its_own_vmac_per_interface(seg: Segment, impl: Impl) -> None:
    """Per-address ``use_vmac``: vx.42 (eth0), vx1.42 (eth1), vx6.42 (IPv6); adverts stay on eth0.

    ``keepalived`` is the reference run: the same checks hold for keepalived 2.2.7.
    """
    link1 = seg.add_link()
    (a,) = seg.hosts
    vip, vip1, plain = seg.address(100), seg.link_address(link1, 100), seg.address(102)
    evip = f"fd00:{seg.net:x}::100"
    mac = f"00:00:5e:00:01:{VRID:02x}"
    eth0 = link(a, IFNAME)
    assert eth0 is not None
    with seg.capture() as cap:
        a.start(impl, address_vmac_config(seg, link1))
        wait_until("every VIP in place", lambda: vip in on_vmac(a, "vx.42") and vip1 in on_vmac(a, "vx1.42")
                   and plain in a.addresses(IFNAME) and evip in on_vmac(a, "vx6.42"),
                   STARTUP, explain=daemon_log(a))  # fmt: skip
        time.sleep(0.5)
        frames = cap.drain()
    mac6 = f"00:00:5e:00:02:{VRID:02x}"
    for dev, base, want in (("vx.42", IFNAME, mac), ("vx1.42", f"eth{link1}", mac), ("vx6.42", IFNAME, mac6)):
        vmac = link(a, dev)
        assert vmac is not None and vmac["linkinfo"]["info_kind"] == "macvlan", vmac
        assert vmac["linkinfo"]["info_data"]["mode"] == "private", vmac
        assert (vmac["address"], vmac["link"]) == (want, base) and "UP" in vmac["flags"], vmac
    assert on_vmac(a, "vx6.42") == {evip, str(a.link_local)}  # with the base's link-local
    assert sysctl(a, "ipv4/conf/eth0/arp_ignore") == 1 and sysctl(a, "ipv4/conf/vx.42/arp_ignore") == 1
    seen = [(p, x) for p in frames if (x := next(adverts([p]), None)) is not None and x.vrid == VRID]
    assert seen and {p.data[6:12].hex(":") for p, _ in seen} == {eth0["address"]}, "adverts not from eth0"
    assert {g.mac for g in garps(frames) if g.vip == vip} == {mac}
    assert {g.mac for g in garps(frames) if g.vip == plain} == {eth0["address"]}
    a.stop()
    assert [link(a, d) for d in ("vx.42", "vx1.42", "vx6.42")] == [None] * 3, (
        "VMACs left behind after SIGTERM"
    )
    if impl == "lifeline":  # keepalived 2.2.7 leaves the base's arp_ignore at 1
        assert sysctl(a, "ipv4/conf/eth0/arp_ignore") == 0
