"""keepalived's notify FIFOs: which FIFOs get written, which reader script each starts, the reload lines.

Pure rules from ``global_defs`` (and the state bucket's entries), as keepalived
2.2.7 applies them (docs/keepalived.md, "Notify FIFO"):

- ``notify_fifo`` takes VRRP and LVS lines, ``vrrp_notify_fifo`` VRRP lines,
  ``lvs_notify_fifo`` LVS lines.  A ``vrrp_notify_fifo`` or ``lvs_notify_fifo``
  at the path of ``notify_fifo`` is ignored with its script (the lines would
  be written twice); when the VRRP and LVS FIFOs share a path and both have a
  script, the LVS script is ignored (one reader per FIFO).
- ``*_notify_fifo_script`` runs with the FIFO's path added as its last
  argument; a script without its FIFO is never started.
- ``fifo_write_vrrp_states_on_reload``: at a reload every sync group's line
  is written, then the line of every instance in BACKUP or FAULT.  An
  instance in MASTER gets none: keepalived keeps a master through a reload
  without passing the code that writes the line (seen with 2.2.7, and so in
  its source to this day).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from services.notifier.core.formats import fifo_line
from shared.config.model_global import GlobalDefs, NotifyFifo
from shared.config.script import Script
from shared.events import GroupState, InstanceState, VrrpState

FifoScope = Literal["all", "vrrp", "lvs"]
"""``notify_fifo`` gets everything, ``vrrp_notify_fifo`` VRRP lines, ``lvs_notify_fifo`` LVS lines."""

_SAME_AS_GLOBAL = "notify FIFO {path} has been specified for global and {kind} FIFO - ignoring {kind} FIFO"
"""keepalived's log line (``global_data.c``) for a FIFO it ignores."""

RELOAD_INSTANCE_STATES = frozenset({VrrpState.BACKUP, VrrpState.FAULT})
"""The instance states keepalived writes a line for at a reload (not MASTER: see the module doc)."""


@dataclass(frozen=True)
class FifoSpec:
    """One FIFO to write: its keyword (also its sink's name), scope, path and owner, reader script."""

    keyword: str
    scope: FifoScope
    fifo: NotifyFifo
    script: Script | None = None

    @property
    def reader_argv(self) -> tuple[str, ...] | None:
        """The reader's argv: the script's, then the FIFO's path (keepalived's ``add_script_param``)."""
        return None if self.script is None else (*self.script.argv, self.fifo.path)


@dataclass(frozen=True)
class FifoPlan:
    """The FIFOs of a configuration, and what keepalived would say about those it ignores."""

    specs: tuple[FifoSpec, ...]
    notes: tuple[str, ...] = ()


def fifo_plan(gd: GlobalDefs) -> FifoPlan:
    """keepalived's FIFOs and reader scripts for ``gd``, after its same-path rules."""
    every = FifoSpec("notify_fifo", "all", gd.notify_fifo, gd.notify_fifo_script) if gd.notify_fifo else None
    vrrp = _spec("vrrp_notify_fifo", "vrrp", gd.vrrp_notify_fifo, gd.vrrp_notify_fifo_script)
    lvs = _spec("lvs_notify_fifo", "lvs", gd.lvs_notify_fifo, gd.lvs_notify_fifo_script)
    notes: list[str] = []
    if every is not None and vrrp is not None and vrrp.fifo.path == every.fifo.path:
        notes.append(_SAME_AS_GLOBAL.format(path=vrrp.fifo.path, kind="vrrp"))
        vrrp = None
    if every is not None and lvs is not None and lvs.fifo.path == every.fifo.path:
        notes.append(_SAME_AS_GLOBAL.format(path=lvs.fifo.path, kind="LVS"))
        lvs = None
    if vrrp and lvs and vrrp.fifo.path == lvs.fifo.path and vrrp.script and lvs.script:
        notes.append(
            "LVS notify FIFO and vrrp FIFO are the same both with scripts - ignoring LVS FIFO script"
        )
        lvs = FifoSpec(lvs.keyword, lvs.scope, lvs.fifo, None)
    specs = tuple(s for s in (every, vrrp, lvs) if s is not None)
    return FifoPlan(specs, tuple(notes))


def _spec(keyword: str, scope: FifoScope, fifo: NotifyFifo | None, script: Script | None) -> FifoSpec | None:
    return None if fifo is None else FifoSpec(keyword, scope, fifo, script)


def reload_lines(groups: Iterable[GroupState], instances: Iterable[InstanceState]) -> list[str]:
    """``fifo_write_vrrp_states_on_reload``: the groups' lines, then BACKUP and FAULT instances', in order."""
    lines = [line for g in groups if (line := fifo_line(g)) is not None]
    for vi in instances:
        if vi.state in RELOAD_INSTANCE_STATES and (line := fifo_line(vi)) is not None:
            lines.append(line)
    return lines
