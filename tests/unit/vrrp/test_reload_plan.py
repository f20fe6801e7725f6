"""The reload planner: keepalived.conf before and after → untouched / in place / restart, per instance."""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path

import pytest

from services.vrrp.core.machine_types import State
from services.vrrp.core.params import InstancePlan, build_plan
from services.vrrp.core.reload_plan import Verdict, classify, plan_reload, removed_report
from shared.config.load import load
from shared.events import VrrpState

SRC = IPv4Address("10.0.0.1")


def block(name: str = "VI_1", vrid: int = 51, body: str = "", vips: str = "192.0.2.100") -> str:
    return f"""
vrrp_instance {name} {{
    state BACKUP
    interface eth0
    virtual_router_id {vrid}
    priority 100
    advert_int 1
{body}
    virtual_ipaddress {{
        {vips}
    }}
}}
"""


def plans(tmp_path: Path, text: str) -> dict[str, InstancePlan]:
    """The real parser and the real plan builder (what ``VrrpService._plans`` does, minus the kernel)."""
    path = tmp_path / "keepalived.conf"
    path.write_text(text)
    config = load(path).config
    return {
        i.name: build_plan(i, config.global_defs, config.vrrp, SRC) for i in config.vrrp.instances.values()
    }


def verdict(tmp_path: Path, old: str, new: str) -> tuple[Verdict, str]:
    change = classify(plans(tmp_path, block(body=old))["VI_1"], plans(tmp_path, block(body=new))["VI_1"])
    return change.verdict, change.why


def test_same_file_is_untouched(tmp_path: Path) -> None:
    before, after = plans(tmp_path, block()), plans(tmp_path, block())
    assert classify(before["VI_1"], after["VI_1"]).verdict is Verdict.UNTOUCHED


def test_notify_scripts_are_not_the_instance_plan(tmp_path: Path) -> None:
    """Notifies are the notifier's: changing one leaves the running instance alone."""
    assert verdict(tmp_path, "", "    notify_master /bin/true")[0] is Verdict.UNTOUCHED


@pytest.mark.parametrize(
    "new",
    [
        "    priority 120",
        "    advert_int 2",
        "    nopreempt",
        "    preempt_delay 30",
        "    garp_master_repeat 2\n    garp_master_delay 0",
        "    garp_master_refresh 60",
        "    lower_prio_no_advert",
        "    higher_prio_send_advert",
        "    dont_track_primary",
        "    authentication {\n        auth_type PASS\n        auth_pass secret\n    }",
        "    track_interface {\n        eth1 weight -20\n    }",
    ],
)
def test_in_place_changes(tmp_path: Path, new: str) -> None:
    got, why = verdict(tmp_path, "", new)
    assert (got, why) == (Verdict.RECONFIGURE, "")


def test_vip_list_changes_in_place(tmp_path: Path) -> None:
    before = plans(tmp_path, block())["VI_1"]
    after = plans(tmp_path, block(vips="192.0.2.100\n        192.0.2.101"))["VI_1"]
    change = classify(before, after)
    assert change.verdict is Verdict.RECONFIGURE
    assert "params.vips" in change.fields and "vips" in change.fields


@pytest.mark.parametrize(
    ("old", "new", "why"),
    [
        ("", "    version 3", "params.version"),
        ("", "    priority 255", "address owner (priority 255)"),
        ("", "    mcast_dst_ip 224.0.0.19", "transport.group"),
        ("    unicast_peer {\n        10.0.0.2\n    }", "", "transport.unicast"),
        ("", "    unicast_peer {\n        10.0.0.2\n    }", "transport.unicast"),
        (
            "",
            "    authentication {\n        auth_type AH\n        auth_pass secret\n    }",
            "transport.proto",
        ),
    ],
)
def test_identity_changes_restart(tmp_path: Path, old: str, new: str, why: str) -> None:
    assert verdict(tmp_path, old, new) == (Verdict.RESTART, why)


def test_vrid_change_restarts(tmp_path: Path) -> None:
    before = plans(tmp_path, block())["VI_1"]
    after = plans(tmp_path, block(vrid=52))["VI_1"]
    assert classify(before, after).why == "params.vrid"


def test_unicast_peer_list_change_is_in_place(tmp_path: Path) -> None:
    one = "    unicast_peer {\n        10.0.0.2\n    }"
    two = "    unicast_peer {\n        10.0.0.2\n        10.0.0.3\n    }"
    assert verdict(tmp_path, one, two) == (Verdict.RECONFIGURE, "")


GROUP = """
vrrp_sync_group G1 {
    group {
        VI_1
        VI_2
    }
}
"""


def test_whole_plan_and_sync_groups(tmp_path: Path) -> None:
    """In place inside a group keeps the group; a restarted or added member restarts its group."""
    base = block() + block("VI_2", 52, vips="192.0.2.102") + block("VI_3", 53, vips="192.0.2.103") + GROUP
    old = plans(tmp_path, base)
    groups = {"VI_1": "G1", "VI_2": "G1", "VI_3": None}

    prio = plans(tmp_path, base.replace("priority 100", "priority 110", 1))
    diff = plan_reload(old, prio, old_groups=groups, new_groups=groups)
    assert (diff.reconfigure, diff.restart, diff.untouched) == (["VI_1"], [], ["VI_2", "VI_3"])
    assert diff.summary() == "reconfigured VI_1"

    vrid = plans(tmp_path, base.replace("virtual_router_id 51", "virtual_router_id 61"))
    diff = plan_reload(old, vrid, old_groups=groups, new_groups=groups)
    assert (diff.restart, diff.untouched) == (["VI_1", "VI_2"], ["VI_3"])
    assert diff.changes["VI_2"].why == "sync group G1 restarts"

    regroup = {**groups, "VI_3": "G1"}
    diff = plan_reload(old, old, old_groups=groups, new_groups=regroup)
    assert diff.restart == ["VI_1", "VI_2", "VI_3"]

    gone = {k: v for k, v in old.items() if k != "VI_3"}
    diff = plan_reload(old, gone, old_groups=groups, new_groups=groups)
    assert (diff.removed, diff.untouched, diff.summary()) == (["VI_3"], ["VI_1", "VI_2"], "removed VI_3")

    added = plans(tmp_path, base + block("VI_4", 54, vips="192.0.2.104"))
    diff = plan_reload(old, added, old_groups=groups, new_groups={**groups, "VI_4": None})
    assert (diff.added, diff.restart) == (["VI_4"], [])


def test_unchanged_is_untouched_even_in_a_group(tmp_path: Path) -> None:
    base = block() + block("VI_2", 52, vips="192.0.2.102") + GROUP
    old = plans(tmp_path, base)
    groups = {"VI_1": "G1", "VI_2": "G1"}
    diff = plan_reload(old, plans(tmp_path, base), old_groups=groups, new_groups=groups)
    assert diff.summary() == "nothing changed" and diff.untouched == ["VI_1", "VI_2"]


@pytest.mark.parametrize(
    ("state", "notify_deleted", "report"),
    [
        (State.MASTER, True, VrrpState.DELETED),
        (State.BACKUP, True, VrrpState.DELETED),
        (State.FAULT, True, VrrpState.DELETED),
        (State.MASTER, False, VrrpState.FAULT),
        (State.BACKUP, False, VrrpState.FAULT),
        (State.FAULT, False, None),
        (State.INIT, True, None),
    ],
)
def test_a_removed_instance_reports_what_keepalived_notifies(
    state: State, notify_deleted: bool, report: VrrpState | None
) -> None:
    """keepalived 2.2.7's clear_diff_vrrp: DELETED with notify_deleted, else FAULT unless already in FAULT."""
    assert removed_report(state, notify_deleted) is report
