"""keepalived's notify FIFO rules (``core.fifos``): same-path FIFOs, reader argv, the reload lines."""

from __future__ import annotations

from pathlib import Path

from services.notifier.core.fifos import fifo_plan, reload_lines
from shared.config.load import load
from shared.events import GroupState, InstanceState, VrrpState


def plan_of(tmp_path: Path, global_defs: str) -> tuple[dict[str, tuple[str, ...] | None], tuple[str, ...]]:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(f"global_defs {{\n  script_user root\n{global_defs}}}\n")
    plan = fifo_plan(load(conf).config.global_defs)
    return {s.keyword: s.reader_argv for s in plan.specs}, plan.notes


def test_each_fifo_script_gets_its_fifo_path_last(tmp_path: Path) -> None:
    specs, notes = plan_of(
        tmp_path,
        '  notify_fifo /run/all.fifo\n  notify_fifo_script "/bin/true a b"\n'
        "  vrrp_notify_fifo /run/vrrp.fifo\n  vrrp_notify_fifo_script /bin/true\n"
        "  lvs_notify_fifo /run/lvs.fifo\n",
    )
    assert specs == {
        "notify_fifo": ("/bin/true", "a", "b", "/run/all.fifo"),
        "vrrp_notify_fifo": ("/bin/true", "/run/vrrp.fifo"),
        "lvs_notify_fifo": None,
    }
    assert notes == ()


def test_a_script_without_its_fifo_is_not_run(tmp_path: Path) -> None:
    specs, _ = plan_of(tmp_path, "  vrrp_notify_fifo_script /bin/true\n")
    assert specs == {}


def test_fifos_at_the_global_fifos_path_are_ignored_with_their_scripts(tmp_path: Path) -> None:
    specs, notes = plan_of(
        tmp_path,
        "  notify_fifo /run/k.fifo\n  vrrp_notify_fifo /run/k.fifo\n  vrrp_notify_fifo_script /bin/true\n"
        "  lvs_notify_fifo /run/k.fifo\n  lvs_notify_fifo_script /bin/true\n",
    )
    assert specs == {"notify_fifo": None}  # one writer of each line: no line twice in the FIFO
    assert notes == (
        "notify FIFO /run/k.fifo has been specified for global and vrrp FIFO - ignoring vrrp FIFO",
        "notify FIFO /run/k.fifo has been specified for global and LVS FIFO - ignoring LVS FIFO",
    )


def test_vrrp_and_lvs_fifo_at_one_path_keep_the_vrrp_script_only(tmp_path: Path) -> None:
    specs, notes = plan_of(
        tmp_path,
        '  vrrp_notify_fifo /run/k.fifo\n  vrrp_notify_fifo_script "/bin/true v"\n'
        '  lvs_notify_fifo /run/k.fifo\n  lvs_notify_fifo_script "/bin/true l"\n',
    )
    assert specs == {"vrrp_notify_fifo": ("/bin/true", "v", "/run/k.fifo"), "lvs_notify_fifo": None}
    assert notes == (
        "LVS notify FIFO and vrrp FIFO are the same both with scripts - ignoring LVS FIFO script",
    )


def instance(name: str, state: VrrpState, priority: int) -> InstanceState:
    return InstanceState(
        instance=name, vrid=1, interface="eth0", state=state, base_priority=100, effective_priority=priority
    )


def test_reload_lines_are_groups_then_backup_and_fault_instances_as_keepalived_writes_them() -> None:
    """Seen with keepalived 2.2.7 (docs/keepalived.md, "Notify FIFO"): a MASTER instance gets no line."""
    groups = [GroupState(group="G1", state=VrrpState.MASTER), GroupState(group="G2", state=VrrpState.FAULT)]
    instances = [
        instance("VI_1", VrrpState.MASTER, 100),
        instance("VI_2", VrrpState.FAULT, 100),
        instance("VI_3", VrrpState.BACKUP, 90),
        instance("VI_4", VrrpState.STOP, 100),
    ]
    assert reload_lines(groups, instances) == [
        'GROUP "G1" MASTER 0\n',
        'GROUP "G2" FAULT 0\n',
        'INSTANCE "VI_2" FAULT 100\n',
        'INSTANCE "VI_3" BACKUP 90\n',
    ]
