"""Engine against an in-memory kernel: start, restart without ops, hot-path diff, reload, release."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from services.lvs.desired import DestKey, ServiceAttrs, ServiceEntry, ServiceKey, Table
from services.lvs.engine import Engine
from services.lvs.reconcile import Op, apply_to
from services.lvs.service import load_lvs

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


def test_start_restart_and_release_touch_only_our_services(tmp_path: Path) -> None:
    kernel, state = FakeKernel(), tmp_path / "owned.json"
    first = Engine(kernel, load_lvs(str(SCENARIO), None), state)
    assert first.reconcile().ops == 19
    assert len(json.loads(state.read_text())) == 8
    second = Engine(kernel, load_lvs(str(SCENARIO), None), state)  # a restart
    assert second.reconcile().ops == 0
    assert second.status()["in_sync"] is True
    second.release()
    assert set(kernel.table) == {FOREIGN}


def test_health_change_is_one_operation() -> None:
    kernel = FakeKernel()
    engine = Engine(kernel, load_lvs(str(SCENARIO), None))
    engine.reconcile()
    before = kernel.ops_applied
    engine.health("172.16.0.101:80/tcp", "172.16.1.24:80", False)
    assert kernel.ops_applied - before == 1
    assert DestKey("172.16.1.24", 80) not in kernel.table[KEY_B].dests


def test_service_removed_while_down_is_deleted_at_next_start(tmp_path: Path) -> None:
    kernel, state = FakeKernel(), tmp_path / "owned.json"
    Engine(kernel, load_lvs(str(SCENARIO), None), state).reconcile()
    smaller = tmp_path / "smaller.conf"
    text = SCENARIO.read_text()
    start, end = text.index("virtual_server 172.16.0.102 53"), text.index("virtual_server fwmark 7")
    smaller.write_text(text[:start] + text[end:])
    report = Engine(kernel, load_lvs(str(smaller), None), state).reconcile()
    assert report.kinds == {"del_service": 1}
