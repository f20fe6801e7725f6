"""Engine against an in-memory kernel: start, restart without ops, hot-path diff, reload, release."""

from __future__ import annotations

import json
import socket
import stat
from pathlib import Path

from services.lvs.core.desired import DestKey, ServiceAttrs, ServiceEntry, ServiceKey, Table
from services.lvs.core.reconcile import Op, apply_to
from services.lvs.core.suspend import SuspendChange
from services.lvs.engine import Engine
from shared.config.load import load

SCENARIO = Path(__file__).parents[2] / "kernel" / "inside" / "scenario.conf"
KEY_B = ServiceKey(socket.AF_INET, socket.IPPROTO_TCP, "172.16.0.101", 80, 0)
FOREIGN = ServiceKey(socket.AF_INET, socket.IPPROTO_TCP, "192.0.2.1", 443, 0)


class FakeKernel:
    def __init__(self) -> None:
        self.table: Table = {FOREIGN: ServiceEntry(ServiceAttrs())}
        self.ops_applied = 0
        self.log: list[Op] = []

    def read_table(self) -> Table:
        return {k: ServiceEntry(v.attrs, dict(v.dests)) for k, v in self.table.items()}

    def apply(self, ops: list[Op]) -> None:
        apply_to(self.table, ops)
        self.ops_applied += len(ops)
        self.log += ops

    def flush(self) -> int:
        count, self.table = len(self.table), {}
        return count


def test_start_restart_and_release_touch_only_our_services(tmp_path: Path) -> None:
    kernel, state = FakeKernel(), tmp_path / "owned.json"
    first = Engine(kernel, load(str(SCENARIO)).config.lvs, state)
    assert first.reconcile().ops == 22
    assert len(json.loads(state.read_text())) == 9
    second = Engine(kernel, load(str(SCENARIO)).config.lvs, state)  # a restart
    assert second.reconcile().ops == 0
    assert second.status()["in_sync"] is True
    second.release()
    assert set(kernel.table) == {FOREIGN}


def test_the_state_file_is_written_safely(tmp_path: Path) -> None:
    """0600, atomically; symlinks planted at its name or at the old temporary name write nothing elsewhere."""
    victim = tmp_path / "victim"
    victim.write_text("precious")
    run = tmp_path / "run" / "lifeline"  # made on first use, as /run/lifeline is
    run.mkdir(parents=True)
    (run / "lvs-a.json").symlink_to(victim)
    (run / "lvs-a.tmp").symlink_to(victim)  # the name the old code wrote through
    engine = Engine(FakeKernel(), load(str(SCENARIO)).config.lvs, run / "lvs-a.json")
    assert engine.reconcile().ops == 22  # the planted symlink was refused as state, not read
    state = run / "lvs-a.json"
    assert not state.is_symlink() and len(json.loads(state.read_text())) == 9
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    assert victim.read_text() == "precious"
    assert sorted(p.name for p in run.iterdir()) == ["lvs-a.json", "lvs-a.tmp"]  # no temporary file left


def test_health_change_is_one_operation() -> None:
    kernel = FakeKernel()
    engine = Engine(kernel, load(str(SCENARIO)).config.lvs)
    engine.reconcile()
    before = kernel.ops_applied
    engine.health("172.16.0.101:80/tcp", "172.16.1.24:80", False)
    assert kernel.ops_applied - before == 1
    assert DestKey("172.16.1.24", 80) not in kernel.table[KEY_B].dests


def test_service_removed_while_down_is_deleted_at_next_start(tmp_path: Path) -> None:
    kernel, state = FakeKernel(), tmp_path / "owned.json"
    Engine(kernel, load(str(SCENARIO)).config.lvs, state).reconcile()
    smaller = tmp_path / "smaller.conf"
    text = SCENARIO.read_text()
    start, end = text.index("virtual_server 172.16.0.102 53"), text.index("virtual_server fwmark 7")
    smaller.write_text(text[:start] + text[end:])
    report = Engine(kernel, load(str(smaller)).config.lvs, state).reconcile()
    assert report.kinds == {"del_service": 1}


VS_B = "172.16.0.101:80/tcp"
VS_SUSPEND = "172.16.0.103:80/tcp"
KEY_SUSPEND = ServiceKey(socket.AF_INET, socket.IPPROTO_TCP, "172.16.0.103", 80, 0)


def suspend_dests(kernel: FakeKernel) -> set[str]:
    return {str(d) for d in kernel.table[KEY_SUSPEND].dests}


def test_release_returns_omega_events_in_order_for_omega_pools_only() -> None:
    kernel = FakeKernel()
    engine = Engine(kernel, load(str(SCENARIO)).config.lvs)
    engine.reconcile()
    release = engine.release()
    assert set(kernel.table) == {FOREIGN}
    assert {e.virtual for e in release.events} == {VS_B}, "only the virtual server with omega announces"
    assert [(e.kind, e.real) for e in release.events] == [
        ("rs_removed", "172.16.1.24:80"),
        ("rs_removed", "172.16.1.25:80"),
        ("quorum_down", None),  # weight_sum 1 < quorum 2
        ("rs_removed", "172.16.1.26:80"),
    ]
    before = kernel.ops_applied
    assert engine.health(VS_B, "172.16.1.24:80", True) == []
    assert kernel.ops_applied == before, "a late health fact must not re-add what stop removed"


def test_flush_on_stop_full_flushes_every_service_and_omega_announces_quorum_only() -> None:
    """``lvs_flush_on_stop``: the whole table goes (another tool's service too); no per-server notifier."""
    kernel = FakeKernel()
    engine = Engine(kernel, load(str(SCENARIO)).config.lvs)
    engine.reconcile()
    release = engine.release("full")
    assert kernel.table == {}, "keepalived flushes the whole IPVS table"
    assert release.ops == 10
    assert [(e.virtual, e.kind, e.detail) for e in release.events] == [(VS_B, "quorum_down", "omega")]


def test_flush_on_stop_vs_deletes_our_services_whole_and_omega_announces_quorum_only() -> None:
    kernel = FakeKernel()
    engine = Engine(kernel, load(str(SCENARIO)).config.lvs)
    engine.reconcile()
    kernel.log.clear()
    release = engine.release("vs")
    assert set(kernel.table) == {FOREIGN}
    assert {op.kind for op in kernel.log} == {"del_service"}, (
        "services deleted whole, no real server one by one"
    )
    assert [(e.kind, e.real) for e in release.events] == [("quorum_down", None)]


def test_ha_suspend_ignores_health_until_the_address_is_local() -> None:
    kernel = FakeKernel()
    engine = Engine(kernel, load(str(SCENARIO)).config.lvs)
    engine.reconcile()
    both = {"172.16.1.27:80", "172.16.1.28:80"}
    assert engine.addresses([(1, "127.0.0.1"), (2, "172.16.0.101")]) == [SuspendChange(VS_SUSPEND, True)]
    assert engine.health(VS_SUSPEND, "172.16.1.27:80", False) == []
    assert suspend_dests(kernel) == both, "suspended: the pool keeps its last state"
    assert engine.health(VS_B, "172.16.1.24:80", False), "other virtual servers are not affected"
    assert engine.address(2, "172.16.0.103", True) == [SuspendChange(VS_SUSPEND, False)]
    assert engine.health(VS_SUSPEND, "172.16.1.27:80", False)
    assert suspend_dests(kernel) == {"172.16.1.28:80"}
    assert engine.address(2, "172.16.0.103", False) == [SuspendChange(VS_SUSPEND, True)]
    assert engine.health(VS_SUSPEND, "172.16.1.27:80", True) == []
    assert engine.health(VS_SUSPEND, "172.16.1.28:80", False) == []
    assert suspend_dests(kernel) == {"172.16.1.28:80"}
    assert engine.ignored == 3
    pools = engine.status()["pools"]
    assert pools[VS_SUSPEND]["suspended"] is True  # type: ignore[index]
    assert "suspended" not in pools[VS_B]  # type: ignore[index]


def test_ha_suspend_before_any_address_snapshot_suspends_nothing() -> None:
    kernel = FakeKernel()
    engine = Engine(kernel, load(str(SCENARIO)).config.lvs)
    engine.reconcile()
    assert engine.health(VS_SUSPEND, "172.16.1.27:80", False)
    assert suspend_dests(kernel) == {"172.16.1.28:80"}
