"""Config → InstancePlan mapping (services/vrrp/core/params.py): which value wins, without root."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_interface
from pathlib import Path

import msgspec
import pytest

from services.vrrp.core.machine_types import TrackerSpec
from services.vrrp.core.params import (
    InstancePlan,
    Pacing,
    PlanError,
    advert_int_cs,
    build_plan,
    garp_params,
    notify_priority_changes,
    tracker_specs,
    vip_of,
)
from services.vrrp.packet import VRRP_GROUP_V4, VRRP_GROUP_V6, AuthType
from shared.config.context import Context
from shared.config.host import FakeHost
from shared.config.lexer import read_tree
from shared.config.model_global import GlobalDefs
from shared.config.model_vrrp import (
    Authentication,
    GarpGroup,
    SyncGroup,
    TrackedInterface,
    TrackFile,
    TrackRef,
    UnicastPeer,
    VirtualAddress,
    VrrpConfig,
    VrrpInstance,
    VrrpScript,
)
from shared.config.parse import build

SRC = IPv4Address("10.0.0.1")


def inst(**kw: object) -> VrrpInstance:
    base: dict[str, object] = {
        "name": "VI_1",
        "interface": "eth0",
        "vrid": 51,
        "family": 4,
        "vips": [VirtualAddress(address=ip_interface("192.0.2.100/32"))],
    }
    base.update(kw)
    return VrrpInstance(**base)  # type: ignore[arg-type]


def test_advert_interval_units() -> None:
    assert advert_int_cs(inst(advert_int=1.0), 2) == 100
    assert advert_int_cs(inst(advert_int=3.0), 2) == 300
    assert advert_int_cs(inst(advert_int=0.25), 3) == 25
    plan = build_plan(inst(advert_int=0.1, version=3), GlobalDefs(), VrrpConfig(), SRC)
    assert (plan.params.version, plan.params.advert_int_cs, plan.rx.interval_cs) == (3, 10, 10)


def test_version_from_global_and_ipv6_forces_v3() -> None:
    assert build_plan(inst(), GlobalDefs(vrrp_version=3), VrrpConfig(), SRC).params.version == 3
    six = inst(family=6, version=2, vips=[VirtualAddress(address=ip_interface("2001:db8::1/128"))])
    plan = build_plan(six, GlobalDefs(), VrrpConfig(), IPv6Address("fe80::1"))
    assert plan.params.version == 3
    assert plan.transport.dsts == (VRRP_GROUP_V6,)
    assert plan.vips[0].preferred_lft == 0  # /128 deprecated as keepalived does
    assert plan.vips[0].nodad


def test_garp_from_globals_instance_overrides_and_min_garp() -> None:
    g = GlobalDefs(vrrp_garp_master_delay=7, vrrp_garp_master_repeat=3)
    p = garp_params(inst(), g)
    assert (p.master_delay, p.master_repeat, p.lower_prio_delay, p.lower_prio_repeat) == (7, 3, 7, 3)
    p = garp_params(inst(garp_master_repeat=9), g)
    assert p.master_repeat == 9
    p = garp_params(inst(), GlobalDefs(vrrp_min_garp=True))
    assert (p.master_repeat, p.master_delay) == (1, 0)


def test_tracker_weights_instance_beats_script() -> None:
    vrrp = VrrpConfig(
        scripts={"chk": VrrpScript(name="chk", weight=-20, weight_reverse=True, init_fail=True)},
        track_files={"f": TrackFile(name="f", weight=3)},
    )
    i = inst(
        track_scripts=[TrackRef(name="chk"), TrackRef(name="chk", weight=-60, reverse=False)],
        track_files=[TrackRef(name="f")],
        track_interfaces=[TrackedInterface(name="eth1", weight=-10)],
    )
    assert tracker_specs(i, vrrp) == (
        TrackerSpec(name="eth1", kind="interface", weight=-10),
        TrackerSpec(name="chk", kind="script", weight=-20, reverse=True, init_fail=True),
        TrackerSpec(name="chk", kind="script", weight=-60, reverse=False, init_fail=True),
        TrackerSpec(name="f", kind="file", weight=3),
    )


def test_sync_group_forces_weights_to_zero_unless_tracking_weight() -> None:
    vrrp = VrrpConfig(
        scripts={"chk": VrrpScript(name="chk", weight=-20)},
        sync_groups={
            "G": SyncGroup(name="G", members=["VI_1"], track_interfaces=[TrackedInterface(name="eth2")])
        },
    )
    i = inst(sync_group="G", track_scripts=[TrackRef(name="chk")])
    assert [(s.name, s.weight) for s in tracker_specs(i, vrrp)] == [("chk", 0), ("eth2", 0)]
    vrrp.sync_groups["G"].sync_group_tracking_weight = True
    assert [(s.name, s.weight) for s in tracker_specs(i, vrrp)] == [("chk", -20), ("eth2", 0)]
    vrrp.sync_groups["G"].sync_group_tracking_weight = False
    vrrp.sync_groups["G"].global_tracking = True  # keepalived 2.2.7: deprecated, same effect
    assert [(s.name, s.weight) for s in tracker_specs(i, vrrp)] == [("chk", -20), ("eth2", 0)]


def test_notify_priority_changes_instance_then_group_then_global() -> None:
    vrrp = VrrpConfig(sync_groups={"G": SyncGroup(name="G", members=["VI_1"], notify_priority_changes=False)})
    g = GlobalDefs(vrrp_notify_priority_changes=True)
    assert notify_priority_changes(inst(), vrrp, g) is True
    assert notify_priority_changes(inst(sync_group="G"), vrrp, g) is False
    assert notify_priority_changes(inst(sync_group="G", notify_priority_changes=True), vrrp, g) is True


def test_skip_check_adv_addr_and_peer_ttl_ranges_reach_the_receive_policy() -> None:
    peers = [
        UnicastPeer(address=IPv4Address("10.0.0.2"), min_ttl=250),
        UnicastPeer(address=IPv4Address("10.0.0.3")),
    ]
    rx = build_plan(
        inst(unicast_peers=peers), GlobalDefs(vrrp_skip_check_adv_addr=True), VrrpConfig(), SRC
    ).rx
    assert rx.skip_check_adv_addr and rx.peer_ttls == ((IPv4Address("10.0.0.2"), 250, 255),)
    off = build_plan(
        inst(skip_check_adv_addr=False), GlobalDefs(vrrp_skip_check_adv_addr=True), VrrpConfig(), SRC
    )
    assert not off.rx.skip_check_adv_addr


def test_vips_excluded_vips_and_advert_addresses() -> None:
    i = inst(
        vips=[VirtualAddress(address=ip_interface("192.0.2.100/24"), broadcast="+", label="eth0:1")],
        excluded_vips=[VirtualAddress(address=ip_interface("2001:db8::5/64"), dev="eth1")],
    )
    plan = build_plan(i, GlobalDefs(), VrrpConfig(), SRC)
    assert plan.advert_addresses == (IPv4Address("192.0.2.100"),)
    assert plan.rx.addresses == plan.advert_addresses
    assert plan.vips[0].brd == IPv4Address("192.0.2.255")
    assert [str(v.address) for v in plan.all_vips] == ["192.0.2.100/24", "2001:db8::5/64"]
    assert plan.params.vips == plan.all_vips
    assert vip_of(VirtualAddress(address=ip_interface("10.1.1.1/8"), broadcast="-")).brd == IPv4Address(
        "10.0.0.0"
    )


def test_no_track_vips_and_the_interface_as_source() -> None:
    """no_track lines (VIP or excluded) are the untracked VIPs; only an unset source is the interface's."""
    i = inst(
        vips=[
            VirtualAddress(address=ip_interface("192.0.2.100/32")),
            VirtualAddress(address=ip_interface("192.0.2.101/32"), no_track=True),
        ],
        excluded_vips=[VirtualAddress(address=ip_interface("192.0.2.110/32"), no_track=True)],
    )
    plan = build_plan(i, GlobalDefs(), VrrpConfig(), SRC)
    assert [str(v.address) for v in plan.params.untracked_vips] == ["192.0.2.101/32", "192.0.2.110/32"]
    assert set(plan.params.untracked_vips) <= set(plan.params.vips)
    assert plan.params.source_from_interface
    own = IPv4Address("10.0.0.9")
    for configured in (inst(mcast_src_ip=own), inst(unicast_src_ip=own)):
        assert not build_plan(configured, GlobalDefs(), VrrpConfig(), SRC).params.source_from_interface


def test_multicast_source_and_group() -> None:
    plan = build_plan(inst(), GlobalDefs(), VrrpConfig(), SRC)
    t = plan.transport
    assert (t.src, t.dsts, t.unicast, t.ttl, t.proto) == (SRC, (VRRP_GROUP_V4,), False, 255, 112)
    own = build_plan(inst(mcast_src_ip=IPv4Address("10.0.0.9")), GlobalDefs(), VrrpConfig(), SRC)
    assert own.transport.src == own.params.address == IPv4Address("10.0.0.9")
    group = IPv4Address("224.0.0.19")
    assert build_plan(inst(), GlobalDefs(vrrp_mcast_group4=group), VrrpConfig(), SRC).transport.dsts == (
        group,
    )
    with pytest.raises(PlanError):
        build_plan(inst(), GlobalDefs(), VrrpConfig(), None)


def test_unicast_peers() -> None:
    peers = [UnicastPeer(address=IPv4Address("10.0.0.2")), UnicastPeer(address=IPv4Address("10.0.0.3"))]
    i = inst(
        unicast_peers=peers, unicast_src_ip=IPv4Address("10.0.0.1"), unicast_ttl=64, check_unicast_src=True
    )
    plan = build_plan(i, GlobalDefs(), VrrpConfig(), None)
    assert plan.transport.unicast and plan.transport.dsts == (
        IPv4Address("10.0.0.2"),
        IPv4Address("10.0.0.3"),
    )
    assert plan.transport.ttl == 64
    assert plan.rx.unicast and plan.rx.check_unicast_src
    assert plan.rx.unicast_peers == frozenset(p.address for p in peers)


def test_pass_auth_v2_only() -> None:
    auth = Authentication(type="PASS", password=b"secret12")
    plan = build_plan(inst(authentication=auth), GlobalDefs(), VrrpConfig(), SRC)
    assert (plan.rx.auth_type, plan.rx.auth_data) == (AuthType.PASS, b"secret12")
    v3 = build_plan(inst(authentication=auth, version=3), GlobalDefs(), VrrpConfig(), SRC)
    assert v3.rx.auth_type == AuthType.NONE
    ah = build_plan(
        inst(authentication=Authentication(type="AH", password=b"k")), GlobalDefs(), VrrpConfig(), SRC
    )
    assert (ah.transport.proto, ah.transport.ah_key) == (51, b"k" + bytes(7))


def test_election_flags_and_globals() -> None:
    g = GlobalDefs(vrrp_strict=True, vrrp_higher_prio_send_advert=True, vrrp_down_timer_adverts=5)
    p = build_plan(inst(nopreempt=True, preempt_delay=2.0), g, VrrpConfig(), SRC).params
    assert (p.nopreempt, p.preempt_delay, p.accept) == (True, 2.0, False)  # strict: accept only for owners
    # strict mode forces these over the globals (docs/keepalived.md#strict-mode, test_strict.py)
    assert (p.lower_prio_no_advert, p.higher_prio_send_advert, p.down_timer_adverts) == (True, False, 3)
    lax = GlobalDefs(vrrp_higher_prio_send_advert=True, vrrp_down_timer_adverts=5)
    assert build_plan(inst(), lax, VrrpConfig(), SRC).params.higher_prio_send_advert
    assert build_plan(inst(), lax, VrrpConfig(), SRC).params.down_timer_adverts == 5
    local = inst(down_timer_adverts=4, origins={"down_timer_adverts": inst().origin})
    assert build_plan(local, lax, VrrpConfig(), SRC).params.down_timer_adverts == 4
    assert build_plan(inst(), GlobalDefs(), VrrpConfig(), SRC).params.accept


def test_plans_compare_by_value() -> None:
    a = build_plan(inst(), GlobalDefs(), VrrpConfig(), SRC)
    assert a == build_plan(inst(), GlobalDefs(), VrrpConfig(), SRC)
    assert a != build_plan(inst(priority=101), GlobalDefs(), VrrpConfig(), SRC)


def test_garp_pacing_and_ipv6_group_globals() -> None:
    """The other vrrp_garp_* globals, the GARP/NA pacing and the IPv6 group reach the plan."""
    g = GlobalDefs(
        vrrp_garp_master_refresh=30,
        vrrp_garp_master_refresh_repeat=2,
        vrrp_garp_lower_prio_delay=4,
        vrrp_garp_lower_prio_repeat=6,
        vrrp_garp_interval=0.01,
        vrrp_gna_interval=0.02,
        vrrp_mcast_group6=IPv6Address("ff02::99"),
    )
    p = garp_params(inst(), g)
    garp = (p.master_refresh, p.master_refresh_repeat, p.lower_prio_delay, p.lower_prio_repeat)
    assert garp == (30, 2, 4, 6)
    plan = build_plan(inst(), g, VrrpConfig(), SRC)
    assert (plan.garp_interval, plan.gna_interval) == (0.01, 0.02)
    six = inst(family=6, vips=[VirtualAddress(address=ip_interface("fe80::5/64"))])
    six_plan = build_plan(six, g, VrrpConfig(), IPv6Address("fe80::1"))
    assert six_plan.transport.dsts == (IPv6Address("ff02::99"),)


def va(address: str, dev: str | None = None) -> VirtualAddress:
    return VirtualAddress(address=ip_interface(address), dev=dev)


def extra_vips(instance: VrrpInstance, g: GlobalDefs, vrrp: VrrpConfig | None = None) -> list[str]:
    """``interface:address`` of the VIPs the plan's garp_extra_if announces."""
    plan = build_plan(instance, g, vrrp or VrrpConfig(instances={instance.name: instance}), SRC)
    return [f"{v.dev}:{v.ip}" for v in plan.params.extra_if_vips]  # type: ignore[attr-defined]


def test_garp_extra_if_period_and_the_interfaces_it_announces_on() -> None:
    """keepalived 2.2.7 on the wire: the first VIP of each interface but the instance's own.

    ``all`` takes every such interface, without it only VMACs keepalived made;
    the instance's keyword (with its own ``all``) beats the global, 0 turns it off.
    """
    vips = [va("192.0.2.100/32"), va("10.1.0.100/32", "eth1"), va("10.1.0.101/32", "eth1")]
    excluded = [va("10.2.0.1/32", "eth2"), va("10.1.0.102/32", "eth1")]
    many = inst(vips=vips, excluded_vips=excluded)
    every = GlobalDefs(vrrp_garp_extra_if=100, vrrp_garp_extra_if_all=True)
    assert build_plan(many, every, VrrpConfig(), SRC).params.garp.extra_if == 100
    assert extra_vips(many, every) == ["eth1:10.1.0.100", "eth2:10.2.0.1"]
    assert extra_vips(inst(vips=vips, garp_extra_if=5.0), every) == []  # its own, without all
    off = build_plan(inst(vips=vips, garp_extra_if=0.0, garp_extra_if_all=True), every, VrrpConfig(), SRC)
    assert (off.params.garp.extra_if, off.params.extra_if_vips) == (0.0, ())
    assert build_plan(many, GlobalDefs(), VrrpConfig(), SRC).params.garp.extra_if == 0.0
    # use_vmac: the VMAC is the instance's own interface (xmit_base or not); its base is another one
    on_base = [va("192.0.2.100/32"), va("192.0.2.101/32", "eth0")]
    for xmit_base in (False, True):
        vmac = inst(vips=on_base, use_vmac=True, vmac_xmit_base=xmit_base, garp_extra_if=2.0)
        assert extra_vips(vmac, GlobalDefs()) == []
        assert extra_vips(msgspec.structs.replace(vmac, garp_extra_if_all=True), GlobalDefs()) == [
            "eth0:192.0.2.101"
        ]
    # without all: a VIP on a VMAC this configuration makes (another instance's)
    other = inst(name="VI_2", vrid=52, use_vmac=True)
    on_vmac = inst(vips=[va("192.0.2.100/32"), va("10.1.0.100/32", "vrrp.52")], garp_extra_if=2.0)
    both = VrrpConfig(instances={"VI_1": on_vmac, "VI_2": other})
    assert extra_vips(on_vmac, GlobalDefs(), both) == ["vrrp.52:10.1.0.100"]


def parsed_plan(tmp_path: Path, text: str) -> tuple[InstancePlan, list[str]]:
    """VI_1's plan from keepalived.conf text, and the parser's diagnostics."""
    path = tmp_path / "k.conf"
    path.write_text(text)
    ctx = Context(config_id="")
    config = build(ctx, read_tree(path, ctx), FakeHost(interfaces={"lo", "eth0", "eth1"}))
    plan = build_plan(config.vrrp.instances["VI_1"], config.global_defs, config.vrrp, SRC)
    return plan, [d.message for d in ctx.diagnostics]


@pytest.mark.parametrize(
    ("global_line", "instance_line", "period"),
    [
        ("vrrp_garp_extra_if all 3", "", 3.0),
        ("vrrp_vmac_garp_intvl all 3", "", 3.0),
        ("", "garp_extra_if all 4", 4.0),
        ("", "vmac_garp_intvl all 4", 4.0),
    ],
    ids=["global", "global_deprecated", "instance", "instance_deprecated"],
)
def test_garp_extra_if_spellings_from_keepalived_conf(
    tmp_path: Path, global_line: str, instance_line: str, period: float
) -> None:
    """Both keywords and their deprecated spellings (a warning) reach the machine's parameters."""
    text = (
        f"global_defs {{\n    {global_line}\n}}\n"
        "vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 51\n"
        f"    {instance_line}\n    virtual_ipaddress {{\n        192.0.2.100/32\n"
        "        10.1.0.100/32 dev eth1\n    }\n}\n"
    )
    plan, diagnostics = parsed_plan(tmp_path, text)
    assert plan.params.garp.extra_if == period
    assert [str(v.ip) for v in plan.params.extra_if_vips] == ["10.1.0.100"]  # type: ignore[attr-defined]
    deprecated = [m for m in diagnostics if "deprecated" in m]
    assert len(deprecated) == ("vmac_garp_intvl" in global_line + instance_line), diagnostics


def test_garp_group_paces_its_interfaces_and_the_rest_keep_the_globals() -> None:
    """garp_group intervals per interface; ``interfaces`` share one sequence; a VMAC follows its base."""
    g = GlobalDefs(vrrp_garp_interval=0.01, vrrp_gna_interval=0.02)
    groups = [
        GarpGroup(garp_interval=0.5, interfaces=["eth1"]),
        GarpGroup(gna_interval=0.3, interfaces=["eth2", "eth3"]),
        GarpGroup(garp_interval=0.7, interfaces=["eth9"]),
    ]
    vips = [va("192.0.2.100/32"), *(va(f"10.{n}.0.1/32", f"eth{n}") for n in (1, 2, 3))]
    plan = build_plan(inst(vips=vips), g, VrrpConfig(garp_groups=groups), SRC)
    assert plan.pacing_of("eth0") == (Pacing(garp=0.01, gna=0.02), "eth0")
    assert plan.pacing_of("eth1") == (Pacing(garp=0.5, gna=0.0, group=0), ("garp_group", 0))
    assert plan.pacing_of("eth2") == (Pacing(garp=0.0, gna=0.3, group=1), ("garp_group", 1))
    assert plan.pacing_of("eth3") == plan.pacing_of("eth2")
    assert set(plan.garp_groups) == {"eth1", "eth2", "eth3"}  # eth9 carries none of its VIPs
    base = VrrpConfig(garp_groups=[GarpGroup(garp_interval=0.5, interfaces=["eth0"])])
    vmac = build_plan(inst(use_vmac=True), g, base, SRC)
    assert vmac.pacing_of("vrrp.51") == (Pacing(garp=0.5, group=0), ("garp_group", 0))
    alone = build_plan(inst(use_vmac=True), g, VrrpConfig(), SRC)
    assert alone.pacing_of("vrrp.51") == (Pacing(garp=0.01, gna=0.02), "eth0")  # one line with its base


def test_mcast_dst_ip_beats_the_global_group() -> None:
    own = IPv4Address("224.0.0.99")
    g = GlobalDefs(vrrp_mcast_group4=IPv4Address("224.0.0.19"))
    assert build_plan(inst(mcast_dst_ip=own), g, VrrpConfig(), SRC).transport.dsts == (own,)
