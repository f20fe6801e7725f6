"""The sans-IO ``vrrp_sync_group`` coordinator (keepalived 2.2.7, reference section 2.13).

Why a coordinator over the member machines rather than a bigger machine: each
member still runs its own VRRP protocol (its own VRID, adverts and timers), and
only three decisions are the group's.  So every input for a member goes through
``SyncGroup.handle``, which feeds the member's machine and reacts to what it
did, feeding the other members the group's decisions:

* **MASTER only together.** A member's down timer fires as ``WantMaster`` (the
  member is built ``gated``, stays BACKUP and re-arms its down timer); when
  every member is MASTER or wants it, each waiting member gets ``GroupGo``.
* **BACKUP pulls.** A member going MASTER -> BACKUP sends ``GroupBackup`` to
  every other MASTER member (they hand over with a priority-0 advert).
* **FAULT spreads.** While any member has a fault of its own (link, tracker),
  every other member is held in FAULT (``GroupFault``); when none has, all
  are released to BACKUP together.

Tracker weights (ignored unless ``sync_group_tracking_weight``) and the group's
own ``track_*`` are resolved into each member's parameters by ``params.py``.
Like the machines, the coordinator owns no clock: the shell passes ``now``.
"""

from __future__ import annotations

from collections import deque

import msgspec

from services.vrrp.core.machine import VrrpMachine
from services.vrrp.core.machine_events import (
    Action,
    GroupBackup,
    GroupFault,
    GroupGo,
    Input,
    StateChanged,
    WantMaster,
)
from services.vrrp.core.machine_types import State


class MemberAction(msgspec.Struct, frozen=True):
    """An action of one member's machine, for that member's shell to perform."""

    member: str
    action: Action


class GroupChanged(msgspec.Struct, frozen=True, kw_only=True):
    """The group's state moved; ``member``/``reason`` say which member transition moved it."""

    old: State
    new: State
    member: str
    reason: str


GroupOutput = MemberAction | GroupChanged


def group_state(states: list[State]) -> State:
    """FAULT if any member is; MASTER if all are; INIT/STOPPED if all are; else BACKUP."""
    running = [s for s in states if s is not State.STOPPED]
    if not running:
        return State.STOPPED
    if State.FAULT in running:
        return State.FAULT
    if all(s is State.MASTER for s in running):
        return State.MASTER
    if all(s is State.INIT for s in running):
        return State.INIT
    return State.BACKUP


class SyncGroup:
    """One ``vrrp_sync_group``: routes each member's inputs and applies the group rules."""

    def __init__(self, name: str, members: dict[str, VrrpMachine]) -> None:
        """``members`` in configuration order; each machine must be built ``gated=True``."""
        self.name = name
        self.members = members
        self._state = State.INIT

    @property
    def state(self) -> State:
        """The group's state as ``GroupState`` events report it."""
        return self._state

    def next_deadline(self) -> float | None:
        """The earliest deadline of any member (a single-loop shell sleeps until then)."""
        deadlines = [d for m in self.members.values() if (d := m.next_deadline()) is not None]
        return min(deadlines, default=None)

    def handle(self, now: float, member: str, event: Input) -> list[GroupOutput]:
        """Feed ``event`` to ``member``, then whatever the group rules feed the others, in order."""
        out: list[GroupOutput] = []
        queue: deque[tuple[str, Input]] = deque([(member, event)])
        while queue:
            name, item = queue.popleft()
            for action in self.members[name].handle(now, item):
                out.append(MemberAction(name, action))
                self._react(name, action, queue)
            self._spread_fault(queue)
            self._update_state(name, out)
        return out

    # ------------------------------------------------------------------ rules

    def _react(self, name: str, action: Action, queue: deque[tuple[str, Input]]) -> None:
        if isinstance(action, WantMaster) and self._all_want_master():
            queue.extend((m, GroupGo()) for m, machine in self.members.items() if machine.wants_master)
        elif isinstance(action, StateChanged) and action.old is State.MASTER and action.new is State.BACKUP:
            queue.extend(
                (m, GroupBackup(member=name))
                for m, machine in self.members.items()
                if m != name and machine.state is State.MASTER
            )

    def _all_want_master(self) -> bool:
        return all(m.state is State.MASTER or m.wants_master for m in self.members.values())

    def _faulted_member(self, exclude: str) -> str | None:
        """The first member (config order) other than ``exclude`` with a fault of its own."""
        for name, machine in self.members.items():
            if name != exclude and machine.state is not State.STOPPED and machine.own_fault_cause():
                return name
        return None

    def _spread_fault(self, queue: deque[tuple[str, Input]]) -> None:
        """Hold (or release) every member whose group-fault holder changed."""
        for name, machine in self.members.items():
            holder = self._faulted_member(name)
            if holder != machine.group_fault and all(q != (name, GroupFault(member=holder)) for q in queue):
                queue.append((name, GroupFault(member=holder)))

    def _update_state(self, member: str, out: list[GroupOutput]) -> None:
        new = group_state([m.state for m in self.members.values()])
        if new is self._state:
            return
        changes = [
            (o.member, o.action)
            for o in out
            if isinstance(o, MemberAction) and isinstance(o.action, StateChanged)
        ]
        first = next((c for c in changes if c[1].new is new), changes[0] if changes else None)
        name, reason = (first[0], first[1].reason) if first is not None else (member, "")
        out.append(GroupChanged(old=self._state, new=new, member=name, reason=reason))
        self._state = new
