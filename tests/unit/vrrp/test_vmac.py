"""VMAC, no root: names, MACs, the plan's interfaces and the sysctl journal (services/vrrp/kernel/vmac.py)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_interface
from pathlib import Path

import pytest

from services.vrrp.core.params import build_plan
from services.vrrp.kernel.vmac import (
    SysctlJournal,
    Vmac,
    address_vmacs,
    is_vrrp_mac,
    rp_filter_sysctls,
    virtual_mac,
    vmac_of,
    vmac_sysctls,
)
from shared.config.model_global import GlobalDefs
from shared.config.model_vrrp import UnicastPeer, VirtualAddress, VrrpConfig, VrrpInstance

SRC = IPv4Address("10.0.0.1")


def inst(**kw: object) -> VrrpInstance:
    base: dict[str, object] = {
        "name": "VI_1",
        "interface": "eth0",
        "vrid": 42,
        "family": 4,
        "use_vmac": True,
        "vips": [VirtualAddress(address=ip_interface("192.0.2.100/32"))],
    }
    base.update(kw)
    return VrrpInstance(**base)  # type: ignore[arg-type]


def test_rfc5798_mac_per_family() -> None:
    assert virtual_mac(42, 4) == "00:00:5e:00:01:2a"
    assert virtual_mac(255, 6) == "00:00:5e:00:02:ff"


def test_configured_mac_five_octets_get_the_vrid() -> None:
    assert virtual_mac(7, 4, "02:00:00:00:01") == "02:00:00:00:01:07"
    assert virtual_mac(7, 4, "02:00:00:00:01:09") == "02:00:00:00:01:09"


def test_is_vrrp_mac() -> None:
    assert is_vrrp_mac("00:00:5E:00:01:2a") and is_vrrp_mac("00:00:5e:00:02:01")
    assert not is_vrrp_mac("00:00:5e:00:03:01") and not is_vrrp_mac("02:00:00:00:01:2a")


def test_default_name_is_prefix_dot_vrid() -> None:
    vmac = vmac_of(inst(), GlobalDefs())
    assert vmac == Vmac(name="vrrp.42", base="eth0", mac="00:00:5e:00:01:2a", family=4)
    assert vmac_of(inst(), GlobalDefs(vmac_prefix="vr")) == Vmac(
        name="vr.42", base="eth0", mac="00:00:5e:00:01:2a", family=4
    )


def test_given_name_and_no_vmac() -> None:
    vmac = vmac_of(inst(vmac_name="vm1", family=6), GlobalDefs())
    assert vmac is not None and (vmac.name, vmac.mac, vmac.family) == ("vm1", "00:00:5e:00:02:2a", 6)
    assert vmac_of(inst(use_vmac=False), GlobalDefs()) is None


def test_plan_puts_vips_and_adverts_on_the_vmac() -> None:
    extra = VirtualAddress(address=ip_interface("192.0.2.7/32"), dev="eth1")
    vips = [VirtualAddress(address=ip_interface("192.0.2.100/32")), extra]
    plan = build_plan(inst(vips=vips), GlobalDefs(), VrrpConfig(), SRC)
    assert plan.transport.interface == "vrrp.42"
    assert plan.params.interface == "eth0"  # link tracking watches the base
    assert [v.dev for v in plan.vips] == ["vrrp.42", "eth1"]
    assert [getattr(v, "dev", None) for v in plan.params.vips] == ["vrrp.42", "eth1"]
    assert plan.transport.src == SRC and "eth0" in plan.tracked_interfaces


def test_no_track_vips_move_to_the_vmac_with_the_others() -> None:
    """The machine finds a deleted no_track VIP among its untracked ones: both lists name the VMAC."""
    vips = [VirtualAddress(address=ip_interface("192.0.2.100/32"), no_track=True)]
    plan = build_plan(inst(vips=vips), GlobalDefs(), VrrpConfig(), SRC)
    assert plan.params.untracked_vips == plan.params.vips == plan.vips
    assert [getattr(v, "dev", None) for v in plan.params.untracked_vips] == ["vrrp.42"]


def test_xmit_base_keeps_adverts_on_the_base() -> None:
    plan = build_plan(inst(vmac_xmit_base=True), GlobalDefs(), VrrpConfig(), SRC)
    assert plan.transport.interface == "eth0"
    assert plan.vips[0].dev == "vrrp.42"


def test_unicast_vmac_plan() -> None:
    peers = [UnicastPeer(address=IPv4Address("10.0.0.2"))]
    plan = build_plan(inst(unicast_peers=peers, vmac_xmit_base=True), GlobalDefs(), VrrpConfig(), SRC)
    assert plan.transport.interface == "eth0" and plan.transport.unicast


def test_sysctls_as_keepalived_sets_them() -> None:
    v4 = Vmac(name="vrrp.42", base="eth0", mac="00:00:5e:00:01:2a", family=4)
    assert vmac_sysctls(v4) == [
        ("ipv4/conf/vrrp.42/arp_ignore", 1),
        ("ipv4/conf/vrrp.42/accept_local", 1),
        ("ipv4/conf/vrrp.42/rp_filter", 0),
        ("ipv4/conf/vrrp.42/promote_secondaries", 1),
        ("ipv6/conf/vrrp.42/disable_ipv6", 1),
        ("ipv4/conf/eth0/arp_ignore", 1),
        ("ipv4/conf/eth0/arp_filter", 1),
    ]
    v6 = Vmac(name="vrrp.42", base="eth0", mac="00:00:5e:00:02:2a", family=6)
    assert ("ipv6/conf/vrrp.42/addr_gen_mode", 1) in vmac_sysctls(v6)
    assert not any(p.startswith("ipv4/conf/eth0") for p, _ in vmac_sysctls(v6))
    keep = Vmac(name="v", base="eth0", mac="00:00:5e:00:01:01", family=4, keep_ipv6=True)
    assert not any("disable_ipv6" in p for p, _ in vmac_sysctls(keep))


def test_rp_filter_moves_from_all_to_the_interfaces() -> None:
    current = {"all": 2, "default": 0, "eth0": 0, "lo": 2, "vrrp.42": 0}
    assert rp_filter_sysctls(2, current, ["vrrp.42"]) == [
        ("ipv4/conf/default/rp_filter", 2),
        ("ipv4/conf/eth0/rp_filter", 2),
        ("ipv4/conf/all/rp_filter", 0),
    ]
    assert rp_filter_sysctls(0, current, ["vrrp.42"]) == []


@pytest.fixture
def proc(tmp_path: Path) -> Path:
    for name, rp in (("all", 1), ("default", 0), ("eth0", 0), ("vrrp.42", 1)):
        conf = tmp_path / "ipv4/conf" / name
        conf.mkdir(parents=True)
        (conf / "rp_filter").write_text(f"{rp}\n")
        (conf / "arp_ignore").write_text("0\n")
    return tmp_path


def test_journal_restores_first_values(proc: Path) -> None:
    journal = SysctlJournal(proc)
    journal.write("ipv4/conf/eth0/arp_ignore", 1)
    journal.write("ipv4/conf/eth0/arp_ignore", 2)
    journal.write("ipv4/conf/all/rp_filter", 1)  # unchanged: nothing to remember
    assert journal.read("ipv4/conf/eth0/arp_ignore") == 2
    assert journal.saved == {"ipv4/conf/eth0/arp_ignore": 0}
    assert journal.interfaces() == {"all": 1, "default": 0, "eth0": 0, "vrrp.42": 1}
    journal.restore()
    assert journal.read("ipv4/conf/eth0/arp_ignore") == 0 and journal.saved == {}


def test_journal_skips_vanished_files_and_refuses_missing_ones(proc: Path) -> None:
    journal = SysctlJournal(proc)
    journal.write("ipv4/conf/vrrp.42/rp_filter", 0)
    for entry in (proc / "ipv4/conf/vrrp.42").iterdir():  # the VMAC was deleted
        entry.unlink()
    (proc / "ipv4/conf/vrrp.42").rmdir()
    journal.restore()
    assert journal.saved == {}
    with pytest.raises(OSError):
        journal.write("ipv4/conf/nope/rp_filter", 0)


def test_ipv6_source_is_not_a_vmac_concern_of_the_plan() -> None:
    ll = IPv6Address("fe80::1")
    v6 = [VirtualAddress(address=ip_interface("fd00::100/64"))]
    plan = build_plan(inst(family=6, vips=v6), GlobalDefs(), VrrpConfig(), ll)
    assert plan.transport.src == ll and plan.transport.interface == "vrrp.42"
    assert isinstance(plan.vmac, Vmac) and plan.vmac.mac == "00:00:5e:00:02:2a"


# --------------------------------------------------------------------------- per-address use_vmac


def va(text: str, dev: str | None = None) -> VirtualAddress:
    return VirtualAddress(address=ip_interface(text), dev=dev, use_vmac=True)


def names(inst_: VrrpInstance, g: GlobalDefs) -> dict[tuple[str, int], tuple[str, str]]:
    """(interface, family) -> (VMAC name, MAC), from build_plan's view of the VMACs."""
    return {k: (v.name, v.mac) for k, v in address_vmacs(inst_, g, vmac_of(inst_, g)).items()}


def test_address_vmacs_are_named_as_keepalived_names_them() -> None:
    """The five configurations keepalived 2.2.7 was run with, and the VMACs it made."""
    v4, v6 = "00:00:5e:00:01:2a", "00:00:5e:00:02:2a"
    q1 = inst(
        use_vmac=False,
        vips=[va("10.0.0.100/32"), va("10.1.0.100/32", "eth1")],
        excluded_vips=[va("fd00::1/64")],
    )
    assert names(q1, GlobalDefs()) == {
        ("eth0", 4): ("vrrp.42", v4),
        ("eth1", 4): ("vrrp1.42", v4),
        ("eth0", 6): ("vrrp6.42", v6),
    }
    q3 = inst(
        use_vmac=False,
        vips=[va("10.1.0.100/32", "eth1")],
        excluded_vips=[va("fd00::1/64"), va("fd00:1::1/64", "eth1"), va("10.0.0.105/32")],
    )
    assert names(q3, GlobalDefs()) == {
        ("eth1", 4): ("vrrp.42", v4),
        ("eth0", 6): ("vrrp6.42", v6),
        ("eth1", 6): ("vrrp1.42", v6),
        ("eth0", 4): ("vrrp2.42", v4),
    }
    q4 = inst(
        use_vmac=False,
        family=6,
        vips=[va("fd00::1/64")],
        excluded_vips=[va("10.0.0.100/32"), va("10.1.0.100/32", "eth1")],
    )
    assert names(q4, GlobalDefs(vmac_prefix="vp")) == {
        ("eth0", 6): ("vp.42", v6),
        ("eth0", 4): ("vp1.42", v4),
        ("eth1", 4): ("vp2.42", v4),
    }
    lone6 = inst(use_vmac=False, excluded_vips=[va("fd00::1/64")])  # PREFIX6 only when PREFIX is taken
    assert names(lone6, GlobalDefs()) == {("eth0", 6): ("vrrp.42", v6)}
    q2 = inst(vips=[va("10.0.0.100/32"), va("10.1.0.100/32", "eth1")])  # the instance has its own VMAC
    assert names(q2, GlobalDefs(vmac_addr_prefix="vx")) == {
        ("eth0", 4): ("vrrp.42", v4),
        ("eth1", 4): ("vx.42", v4),
    }


def test_plan_puts_use_vmac_addresses_on_their_vmac_and_adverts_on_the_base() -> None:
    plain = VirtualAddress(address=ip_interface("10.0.0.102/32"))
    cfg = inst(use_vmac=False, vips=[va("10.0.0.100/32"), va("10.1.0.100/32", "eth1"), plain])
    plan = build_plan(cfg, GlobalDefs(vmac_addr_prefix="vx"), VrrpConfig(), SRC)
    assert [v.dev for v in plan.vips] == ["vx.42", "vx1.42", None]
    assert [getattr(v, "dev", None) for v in plan.params.vips] == ["vx.42", "vx1.42", None]
    assert plan.transport.interface == "eth0" and plan.vmac is None
    assert [(v.name, v.base, v.family) for v in plan.address_vmacs] == [
        ("vx.42", "eth0", 4),
        ("vx1.42", "eth1", 4),
    ]
    own = build_plan(inst(vips=[va("10.0.0.100/32")]), GlobalDefs(), VrrpConfig(), SRC)
    assert own.address_vmacs == () and own.vips[0].dev == "vrrp.42"  # the instance's VMAC carries it
