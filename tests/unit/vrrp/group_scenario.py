"""Replay sync-group scenario files against the pure coordinator (``services/vrrp/core/sync_group.py``).

The single-instance format (``scenario.py``) extended minimally: the header is
split into sections.  Lines before the first ``[NAME]`` are the group's
(``group = NAME``, ``description``, ``tracker = ...`` for group-level
tracking, ``tracking_weight = yes`` for ``sync_group_tracking_weight``); each
``[NAME]`` section is one member instance with the usual keys.  Timed lines
name the member first::

    @0 start                         # every member, in order
    @0 expect VI_1 state BACKUP reason=startup
    @0 VI_1 recv src=10.0.0.2 prio=200
    @0 link eth1 down                # no member: every member (as the shell does)
    @3.609375 expect VI_1 want_master
    @3.7 expect group MASTER member=VI_2
    @4 inspect VI_2 state=MASTER

Group-level trackers are appended to every member and, as in keepalived, every
tracker's weight is forced to 0 unless ``tracking_weight`` is set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from services.vrrp.core.machine import VrrpMachine
from services.vrrp.core.machine_events import Input, Start, Stop, Tick
from services.vrrp.core.machine_types import InstanceParams, TrackerSpec
from services.vrrp.core.sync_group import GroupChanged, GroupOutput, MemberAction, SyncGroup
from tests.unit.vrrp.scenario import (
    TOL,
    ReplayBase,
    ScenarioError,
    Step,
    _bool,
    _header_line,
    _input,
    _kv,
    _params,
    _read_lines,
    render,
)

_GLOBAL_VERBS = {"start", "stop", "link", "tracker", "tick", "quiet"}


@dataclass
class GroupScenario:
    path: Path
    name: str
    members: dict[str, InstanceParams]
    steps: list[Step] = field(default_factory=list)


def _show(item: GroupOutput) -> str:
    if isinstance(item, GroupChanged):
        return f"group {item.new.value} from={item.old.value} member={item.member} reason={item.reason}"
    kind, fields = render(item.action)
    return " ".join([item.member, kind, *(f"{k}={v}" for k, v in fields.items())])


def parse_group(path: Path) -> GroupScenario:
    """Read a group scenario; errors name the offending line."""
    group: dict[str, str] = {}
    group_trackers: list[TrackerSpec] = []
    sections: dict[str, tuple[dict[str, str], list[TrackerSpec]]] = {}
    current: tuple[dict[str, str], list[TrackerSpec]] | None = None

    def on_header(line: str) -> None:
        nonlocal current
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1].strip(), ({}, []))
        else:
            _header_line(line, *(current if current is not None else (group, group_trackers)))

    steps = _read_lines(path, on_header)
    weighted = _bool(group.pop("tracking_weight", "no"))
    members: dict[str, InstanceParams] = {}
    for name, (header, trackers) in sections.items():
        specs = [*trackers, *group_trackers]
        if not weighted:
            specs = [msgspec.structs.replace(s, weight=0) for s in specs]
        header.setdefault("name", name)
        try:
            members[name] = _params(header, specs)
        except (ValueError, TypeError) as exc:
            raise ScenarioError(f"{path.name}: bad header of [{name}]: {exc}") from exc
    if len(members) < 2:
        raise ScenarioError(f"{path.name}: a sync group needs at least two [member] sections")
    return GroupScenario(path, group.get("group", "G1"), members, steps)


class GroupReplay(ReplayBase[GroupOutput]):
    """Drive one ``SyncGroup`` through one scenario with a fake clock."""

    def __init__(self, scenario: GroupScenario) -> None:
        super().__init__(_show, trace_tail=30)
        self.scenario = scenario
        machines = {n: VrrpMachine(p, gated=True) for n, p in scenario.members.items()}
        self.group = SyncGroup(scenario.name, machines)

    def _feed(self, member: str, event: Input) -> None:
        for item in self.group.handle(self.now, member, event):
            self.pending.append((self.now, item))
            self.trace.append(f"@{self.now:.6f} {_show(item)}")

    def advance(self, horizon: float) -> None:
        """Fire each member's deadlines up to ``horizon`` in time order (config order on ties)."""
        while True:
            due = [
                (d, i, n)
                for i, (n, m) in enumerate(self.group.members.items())
                if (d := m.next_deadline()) is not None and d <= horizon
            ]
            if not due:
                return
            deadline, _, name = min(due)
            self.now = max(self.now, deadline)
            self._feed(name, Tick())

    def expect(self, step: Step) -> None:
        if len(step.args) < 2:
            raise self.fail(step, "expect needs a member (or 'group') and a kind")
        who, *rest = step.args
        if not self.pending:
            raise self.fail(step, f"expected {' '.join(step.args)}, nothing happened")
        when, item = self.pending.popleft()
        if who == "group":
            positional, wanted = _kv(rest)
            ok = isinstance(item, GroupChanged) and item.new.value == positional[0]
            if ok and isinstance(item, GroupChanged):
                got = {"member": item.member, "reason": item.reason, "from": item.old.value}
                ok = all(got.get(k) == v for k, v in wanted.items())
        else:
            kind, *more = rest
            wanted = self.check_expectation(step, kind, more)
            ok = isinstance(item, MemberAction) and item.member == who
            if ok and isinstance(item, MemberAction):
                got_kind, got = render(item.action)
                ok = got_kind == kind and all(got.get(k) == v for k, v in wanted.items())
        if not ok or abs(when - step.time) > TOL:
            raise self.fail(
                step, f"expected @{step.time} {' '.join(step.args)}\n got @{when:.6f} {_show(item)}"
            )

    def inspect(self, step: Step) -> None:
        who, *rest = step.args
        _, wanted = _kv(rest)
        if who == "group":
            got = {"state": self.group.state.value}
        else:
            m = self.group.members[who]
            got = {
                "state": m.state.value,
                "prio": str(m.effective_priority),
                "master": "none" if m.master_address is None else str(m.master_address),
                "wants": "yes" if m.wants_master else "no",
                "deadline": "none" if m.next_deadline() is None else f"{m.next_deadline():g}",
            }
        for key, value in wanted.items():
            if got.get(key) != value:
                raise self.fail(step, f"{who} {key} is {got.get(key)}, expected {value}")

    def _targets(self, step: Step) -> tuple[list[str], Step]:
        """The members a timed input goes to, and the step as the single-instance parser reads it."""
        if step.verb in self.group.members:
            verb, *args = step.args
            return [step.verb], Step(step.time, verb, args, step.lineno)
        if step.verb not in _GLOBAL_VERBS:
            raise self.fail(step, f"unknown member or verb {step.verb!r}")
        return list(self.group.members), step

    def apply(self, step: Step) -> None:
        members, inner = self._targets(step)
        self.note_input(step)
        for member in members:
            event = Start() if inner.verb == "start" else Stop() if inner.verb == "stop" else _input(inner)
            self._feed(member, event)


def replay_group(path: Path) -> None:
    """Parse and replay one group scenario, raising ScenarioError on any mismatch."""
    GroupReplay(parse_group(path)).run()
