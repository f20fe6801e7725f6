"""The reconciler's diff against a table recorded from the kernel: minimal, ordered, never a flush."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from services.lvs.core.desired import (
    DestAttrs,
    DestKey,
    ServiceAttrs,
    ServiceEntry,
    ServiceKey,
    Table,
    build_plans,
    plan_table,
)
from services.lvs.core.pool import Pool
from services.lvs.core.reconcile import OpKind, apply_to, diff
from shared.config.load import load

HERE = Path(__file__).parent
EXAMPLE = HERE.parents[2] / "docs" / "examples" / "archwiki-3-lvs-host-a.conf"
KEY_A = ServiceKey(socket.AF_INET, socket.IPPROTO_TCP, "172.16.0.100", 80, 0)
FOREIGN = ServiceKey(socket.AF_INET, socket.IPPROTO_TCP, "192.0.2.1", 443, 0)


def recorded() -> Table:
    data = json.loads((HERE / "kernel_table.json").read_text())
    table: Table = {}
    for svc in data["services"]:
        entry = ServiceEntry(ServiceAttrs(svc["sched"], svc["flags"], svc["timeout"], svc["netmask"]))
        for addr, port, fwd, weight in svc["dests"]:
            entry.dests[DestKey(addr, port)] = DestAttrs(fwd=fwd, weight=weight)
        table[ServiceKey(*svc["key"])] = entry
    return table


def desired(path: Path = EXAMPLE, down: tuple[str, ...] = ()) -> Table:
    table: Table = {}
    for plan in build_plans(load(path).config.lvs).values():
        pool = Pool(plan)
        for real in down:
            pool.health(real, False)
        table.update(plan_table(plan, pool.members()))
    return table


def test_matching_kernel_needs_no_operation_despite_hashed_flag() -> None:
    assert diff(recorded(), desired(), owned={KEY_A}) == []


def test_empty_kernel_gets_service_then_dests() -> None:
    ops = diff({}, desired())
    assert [op.kind for op in ops] == [OpKind.ADD_SERVICE] + [OpKind.ADD_DEST] * 4
    assert ops[0].service_attrs is not None and ops[0].service_attrs.sched == "rr"


def test_a_down_real_server_is_one_delete() -> None:
    ops = diff(recorded(), desired(down=("172.16.1.21:80",)), owned={KEY_A})
    assert [(op.kind, str(op.dest)) for op in ops] == [(OpKind.DEL_DEST, "172.16.1.21:80")]


def test_foreign_services_are_never_touched_even_when_not_desired() -> None:
    ops = diff(recorded(), {}, owned={KEY_A})
    assert [(op.kind, op.service) for op in ops] == [(OpKind.DEL_SERVICE, KEY_A)]


def test_changed_scheduler_is_a_set_not_a_delete() -> None:
    want = desired()
    want[KEY_A].attrs = ServiceAttrs(sched="wlc")
    ops = diff(recorded(), want, owned={KEY_A})
    assert [op.kind for op in ops] == [OpKind.SET_SERVICE]


def test_weight_and_forwarding_changes_are_sets() -> None:
    want = desired()
    want[KEY_A].dests[DestKey("172.16.1.22", 80)] = DestAttrs(fwd=3, weight=5)
    ops = diff(recorded(), want, owned={KEY_A})
    assert [(op.kind, str(op.dest)) for op in ops] == [(OpKind.SET_DEST, "172.16.1.22:80")]


def test_apply_to_replays_ops_onto_the_cache() -> None:
    cache = {KEY_A: recorded()[KEY_A]}
    want = desired(down=("172.16.1.20:80", "172.16.1.23:80"))
    apply_to(cache, diff(cache, want))
    assert diff(cache, want) == []
