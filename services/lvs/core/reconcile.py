"""The pure diff between the kernel's IPVS table and the desired one: the minimal list of operations.

Why a reconciler and never a flush: live connections are tied to kernel
entries; a flush (or delete-and-re-add) on start, restart or reload would drop
them.  Reading the table and changing only what differs makes start after a
crash, start after ``--keep`` and reload the same code path, and the number of
operations is exactly what a test can count.

Ownership: only services listed in ``owned`` (what this config manages, plus
what a previous run created) are ever deleted, so a service another tool put
into IPVS is left alone.  Inside an owned service every real server is ours.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from services.lvs.core.desired import (
    SVC_FLAGS_MASK,
    DestAttrs,
    DestKey,
    ServiceAttrs,
    ServiceEntry,
    ServiceKey,
)


class OpKind(StrEnum):
    ADD_SERVICE = "add_service"
    SET_SERVICE = "set_service"
    DEL_SERVICE = "del_service"
    ADD_DEST = "add_dest"
    SET_DEST = "set_dest"
    DEL_DEST = "del_dest"


@dataclass(frozen=True)
class Op:
    """One netlink command; ``attrs`` is the full new state (``None`` for deletions)."""

    kind: OpKind
    service: ServiceKey
    service_attrs: ServiceAttrs | None = None
    dest: DestKey | None = None
    dest_attrs: DestAttrs | None = None

    def __str__(self) -> str:
        target = f"{self.service}" + (f" -> {self.dest}" if self.dest else "")
        return f"{self.kind} {target}"


def same_service(kernel: ServiceAttrs, want: ServiceAttrs) -> bool:
    """Equal up to what the kernel adds on its own (the HASHED flag)."""
    return (
        kernel.sched == want.sched
        and (kernel.flags & SVC_FLAGS_MASK) == (want.flags & SVC_FLAGS_MASK)
        and kernel.timeout == want.timeout
        and kernel.netmask == want.netmask
        and kernel.pe_name == want.pe_name
    )


def diff(
    kernel: Mapping[ServiceKey, ServiceEntry],
    desired: Mapping[ServiceKey, ServiceEntry],
    owned: Iterable[ServiceKey] = (),
) -> list[Op]:
    """Operations that turn ``kernel`` into ``desired`` for the services we manage.

    Order matters to the kernel and to connections: new services first, then
    per service dest deletions before additions (a dest moving between
    forwarding methods is a SET, never a delete/add), and owned services that
    left the configuration last.
    """
    ops: list[Op] = []
    for key, want in desired.items():
        have = kernel.get(key)
        if have is None:
            ops.append(Op(OpKind.ADD_SERVICE, key, service_attrs=want.attrs))
            ops.extend(
                Op(OpKind.ADD_DEST, key, dest=d, dest_attrs=a, service_attrs=want.attrs)
                for d, a in want.dests.items()
            )
            continue
        if not same_service(have.attrs, want.attrs):
            ops.append(Op(OpKind.SET_SERVICE, key, service_attrs=want.attrs))
        ops.extend(diff_dests(key, have.dests, want.dests))
    stale = [k for k in dict.fromkeys(owned) if k in kernel and k not in desired]
    ops.extend(Op(OpKind.DEL_SERVICE, k) for k in stale)
    return ops


def diff_dests(
    key: ServiceKey, have: Mapping[DestKey, DestAttrs], want: Mapping[DestKey, DestAttrs]
) -> list[Op]:
    """Real-server operations inside one existing service."""
    ops = [Op(OpKind.DEL_DEST, key, dest=d) for d in have if d not in want]
    for dest, attrs in want.items():
        current = have.get(dest)
        if current is None:
            ops.append(Op(OpKind.ADD_DEST, key, dest=dest, dest_attrs=attrs))
        elif current != attrs:
            ops.append(Op(OpKind.SET_DEST, key, dest=dest, dest_attrs=attrs))
    return ops


def apply_to(table: dict[ServiceKey, ServiceEntry], ops: Iterable[Op]) -> None:
    """Play operations onto an in-memory table: the service's cached view of the kernel."""
    for op in ops:
        match op.kind:
            case OpKind.ADD_SERVICE | OpKind.SET_SERVICE:
                assert op.service_attrs is not None
                entry = table.get(op.service)
                if entry is None:
                    table[op.service] = ServiceEntry(op.service_attrs)
                else:
                    entry.attrs = op.service_attrs
            case OpKind.DEL_SERVICE:
                table.pop(op.service, None)
            case OpKind.ADD_DEST | OpKind.SET_DEST:
                assert op.dest is not None and op.dest_attrs is not None
                table.setdefault(op.service, ServiceEntry(ServiceAttrs())).dests[op.dest] = op.dest_attrs
            case OpKind.DEL_DEST:
                assert op.dest is not None
                if op.service in table:
                    table[op.service].dests.pop(op.dest, None)
