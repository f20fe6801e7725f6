"""Replay VRRP scenario files against the pure machine (holo-vrrp style).

A scenario is a header of ``key = value`` parameters followed by timed lines::

    @0 start
    @0 expect remove_vips
    @0 expect state BACKUP reason=startup
    @3.609375 expect send_advert prio=100

The runner keeps a fake clock.  Before each line at time T it fires every
deadline due by T (by T + TOL for an ``expect``), collecting the actions with
the time they happened.  Each ``expect`` consumes the next action, which must
have the given kind and fields and happen within TOL of T.  An input or a
``quiet``/``inspect`` line requires every earlier action to have been
expected, and so does the end of the file: nothing unexpected slips through.
See docs/vrrp-machine.md for the full grammar.
"""

from __future__ import annotations

import ipaddress
import shlex
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, Protocol, TypeVar

import msgspec

from services.vrrp.core.machine import VrrpMachine
from services.vrrp.core.machine_events import (
    Action,
    AddVips,
    AdvertReceived,
    Input,
    LinkChanged,
    Maintenance,
    PriorityChanged,
    Reconfigure,
    RemoveVips,
    SendAdvert,
    SendGarp,
    SetPriority,
    SourceAddress,
    Start,
    StateChanged,
    Stop,
    Tick,
    TrackerChanged,
    VipRemoved,
    WantMaster,
)
from services.vrrp.core.machine_types import GarpParams, InstanceParams, TrackerSpec

TOL = 0.001
"""How far (seconds) an expected action may be from the time written in the file."""

_REQUIRED = {
    "state": {"new", "reason"},
    "send_advert": {"prio"},
    "garp": {"count", "burst"},
    "priority": {"old", "new"},
    "add_vips": set(),
    "remove_vips": set(),
    "want_master": set(),
}
_GARP_KEYS = {
    "garp_master_delay": ("master_delay", float),
    "garp_master_repeat": ("master_repeat", int),
    "garp_master_refresh": ("master_refresh", float),
    "garp_master_refresh_repeat": ("master_refresh_repeat", int),
    "garp_lower_prio_delay": ("lower_prio_delay", float),
    "garp_lower_prio_repeat": ("lower_prio_repeat", int),
    "garp_extra_if": ("extra_if", float),
}
_BOOL_KEYS = {
    "nopreempt",
    "accept",
    "dont_track_primary",
    "lower_prio_no_advert",
    "higher_prio_send_advert",
    "source_from_interface",
}
_INT_KEYS = {"vrid", "version", "priority", "down_timer_adverts"}


class ScenarioError(AssertionError):
    """A scenario failed: the message names the file, line and the trace so far."""


@dataclass
class Step:
    """One timed line: ``@time verb args``."""

    time: float
    verb: str
    args: list[str]
    lineno: int


@dataclass
class Scenario:
    path: Path
    params: InstanceParams
    steps: list[Step] = field(default_factory=list)


# --------------------------------------------------------------------------- parsing


def _bool(text: str) -> bool:
    if text.lower() in {"1", "yes", "true", "on"}:
        return True
    if text.lower() in {"0", "no", "false", "off"}:
        return False
    raise ValueError(f"not a boolean: {text!r}")


def _seconds_to_cs(text: str) -> int:
    return round(float(text) * 100)


def _tracker(text: str) -> TrackerSpec:
    """``NAME KIND [weight=N] [reverse] [init_fail]``."""
    name, kind, *rest = text.split()
    weight = 0
    reverse = init_fail = False
    for word in rest:
        if word.startswith("weight="):
            weight = int(word.removeprefix("weight="))
        elif word == "reverse":
            reverse = True
        elif word == "init_fail":
            init_fail = True
        else:
            raise ValueError(f"unknown tracker option {word!r}")
    return TrackerSpec(name=name, kind=kind, weight=weight, reverse=reverse, init_fail=init_fail)  # type: ignore[arg-type]


def _vips(value: str) -> tuple[str, ...]:
    """A comma-separated VIP list (opaque strings to the machine)."""
    return tuple(v.strip() for v in value.split(",") if v.strip())


def _params(header: dict[str, str], trackers: list[TrackerSpec]) -> InstanceParams:
    """Build InstanceParams from header keys, with small defaults for readability."""
    kw: dict[str, object] = {
        "name": header.pop("name", "VI_1"),
        "vrid": 51,
        "address": ipaddress.ip_address(header.pop("address", "10.0.0.1")),
        "interface": header.pop("interface", "eth0"),
        "vips": _vips(header.pop("vips", "10.0.0.100/24")),
        "trackers": tuple(trackers),
    }
    garp: dict[str, object] = {}
    for key, value in header.items():
        if key in _GARP_KEYS:
            attr, conv = _GARP_KEYS[key]
            garp[attr] = conv(value)
        elif key in _BOOL_KEYS:
            kw[key] = _bool(value)
        elif key in _INT_KEYS:
            kw[key] = int(value)
        elif key == "advert_int":
            kw["advert_int_cs"] = _seconds_to_cs(value)
        elif key == "extra_if_vips":
            kw[key] = _vips(value)
        elif key == "state":
            kw["initial_state"] = value
        elif key == "preempt_delay":
            kw["preempt_delay"] = float(value)
        elif key == "no_track_vips":
            kw["untracked_vips"] = tuple(v.strip() for v in value.split(",") if v.strip())
        elif key != "description":
            raise ValueError(f"unknown header key {key!r}")
    kw["garp"] = GarpParams(**garp)  # type: ignore[arg-type]
    return InstanceParams(**kw)  # type: ignore[arg-type]


def _header_line(line: str, header: dict[str, str], trackers: list[TrackerSpec]) -> None:
    """One ``key = value`` header line: a ``tracker`` or a parameter."""
    key, _, value = (part.strip() for part in line.partition("="))
    if key == "tracker":
        trackers.append(_tracker(value))
    else:
        header[key] = value


def _read_lines(path: Path, on_header: Callable[[str], None]) -> list[Step]:
    """The timed lines of a scenario file; each header line before them goes to ``on_header``."""
    steps: list[Step] = []
    for lineno, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            if line.startswith("@"):
                when, verb, *args = shlex.split(line)
                steps.append(Step(float(when[1:]), verb, args, lineno))
            elif steps:
                raise ValueError("header line after the first timed line")
            else:
                on_header(line)
        except ValueError as exc:
            raise ScenarioError(f"{path.name}:{lineno}: {exc}") from exc
    return steps


def parse(path: Path) -> Scenario:
    """Read a scenario file; errors name the offending line."""
    header: dict[str, str] = {}
    trackers: list[TrackerSpec] = []
    steps = _read_lines(path, lambda line: _header_line(line, header, trackers))
    try:
        params = _params(header, trackers)
    except (ValueError, TypeError) as exc:
        raise ScenarioError(f"{path.name}: bad header: {exc}") from exc
    return Scenario(path, params, steps)


def _kv(args: list[str]) -> tuple[list[str], dict[str, str]]:
    positional = [a for a in args if "=" not in a]
    pairs = dict(a.split("=", 1) for a in args if "=" in a)
    return positional, pairs


def _input(step: Step) -> Input:
    """Turn an input line into a machine input."""
    positional, kv = _kv(step.args)
    if step.verb == "start":  # start [delay=SECONDS]: vrrp_startup_delay from this line's time
        return Start(hold_until=step.time + float(kv["delay"]) if "delay" in kv else None)
    if step.verb == "stop":
        return Stop()
    if step.verb == "tick":
        return Tick()
    if step.verb == "recv":
        interval = _seconds_to_cs(kv["int"]) if "int" in kv else 100
        return AdvertReceived(
            src=ipaddress.ip_address(kv["src"]), priority=int(kv["prio"]), interval_cs=interval
        )
    if step.verb == "tracker":
        value = int(kv["value"]) if "value" in kv else None
        ok = positional[1] == "ok" if len(positional) > 1 else value == 0
        return TrackerChanged(name=positional[0], ok=ok, value=value)
    if step.verb == "link":
        return LinkChanged(interface=positional[0], up=positional[1] == "up")
    if step.verb == "source":  # source present|missing: the interface's addresses of the family
        return SourceAddress(present=positional[0] == "present")
    if step.verb == "vip_removed":  # vip_removed VIP: deleted by someone else
        return VipRemoved(vip=positional[0])
    if step.verb == "set_priority":
        return SetPriority(priority=None if positional[0] == "none" else int(positional[0]))
    if step.verb == "maintenance":
        return Maintenance(until=None if positional and positional[0] == "clear" else float(kv["until"]))
    raise ValueError(f"unknown verb {step.verb!r}")


def _reconfigure(params: InstanceParams, step: Step) -> Reconfigure:
    """``reconfigure KEY=VALUE ...``: header keys over the running parameters.

    ``trackers="NAME KIND [weight=N];..."`` replaces the trackers (``none``: no tracker),
    ``known=NAME:ok|fail,...`` and ``links=IFACE:up|down,...`` are the facts the shell passes along.
    """
    _, kv = _kv(step.args)
    facts = [f.split(":") for f in kv.pop("known", "").split(",") if f]
    links = [f.split(":") for f in kv.pop("links", "").split(",") if f]
    trackers = kv.pop("trackers", None)
    garp = {_GARP_KEYS[k][0]: _GARP_KEYS[k][1](kv.pop(k)) for k in list(kv) if k in _GARP_KEYS}
    updates: dict[str, object] = {"garp": msgspec.structs.replace(params.garp, **garp)}
    if trackers is not None:
        specs = [] if trackers == "none" else [_tracker(t) for t in trackers.split(";")]
        updates["trackers"] = tuple(specs)
    for key, value in kv.items():
        if key in _BOOL_KEYS:
            updates[key] = _bool(value)
        elif key in _INT_KEYS:
            updates[key] = int(value)
        elif key == "advert_int":
            updates["advert_int_cs"] = _seconds_to_cs(value)
        elif key in ("vips", "extra_if_vips"):
            updates[key] = _vips(value)
        elif key == "state":
            updates["initial_state"] = value
        elif key in ("preempt_delay",):
            updates[key] = float(value)
        else:
            raise ValueError(f"unknown reconfigure key {key!r}")
    return Reconfigure(
        params=msgspec.structs.replace(params, **updates),
        trackers=tuple(TrackerChanged(name=n, ok=v == "ok") for n, v in facts),
        links=tuple(LinkChanged(interface=i, up=v == "up") for i, v in links),
    )


# --------------------------------------------------------------------------- rendering


def render(action: Action) -> tuple[str, dict[str, str]]:
    """An action as (kind, fields) in the scenario vocabulary."""
    if isinstance(action, SendAdvert):
        return "send_advert", {"prio": str(action.priority)}
    if isinstance(action, AddVips | RemoveVips):
        kind = "add_vips" if isinstance(action, AddVips) else "remove_vips"
        return kind, {"vips": ",".join(str(v) for v in action.vips)}
    if isinstance(action, SendGarp):
        only = {} if action.vips is None else {"vips": ",".join(str(v) for v in action.vips)}
        return "garp", {"count": str(action.count), "burst": action.burst.value, **only}
    if isinstance(action, PriorityChanged):
        return "priority", {"old": str(action.old), "new": str(action.new)}
    if isinstance(action, WantMaster):
        return "want_master", {"reason": action.reason}
    assert isinstance(action, StateChanged)
    master = "none" if action.master_address is None else str(action.master_address)
    fields = {"new": action.new.value, "from": action.old.value, "reason": action.reason}
    fields |= {"prio": str(action.effective_priority), "master": master}
    return "state", fields


def show(action: Action) -> str:
    kind, fields = render(action)
    return " ".join([kind, *(f"{k}={v}" for k, v in fields.items())])


# --------------------------------------------------------------------------- replay


class _Replayable(Protocol):
    path: Path
    steps: list[Step]


T = TypeVar("T")


class ReplayBase(ABC, Generic[T]):
    """What single-instance and sync-group replays share: the fake clock, the trace, the run loop.

    ``show`` says how an output reads in the trace; ``trace_tail`` is how many trace lines a failure shows.
    """

    scenario: _Replayable

    def __init__(self, show: Callable[[T], str], trace_tail: int) -> None:
        self.show, self.trace_tail = show, trace_tail
        self.now = 0.0
        self.pending: deque[tuple[float, T]] = deque()
        self.trace: list[str] = []

    @abstractmethod
    def advance(self, horizon: float) -> None: ...

    @abstractmethod
    def expect(self, step: Step) -> None: ...

    @abstractmethod
    def inspect(self, step: Step) -> None: ...

    @abstractmethod
    def apply(self, step: Step) -> None:
        """Feed one input line (the clock is already at its time)."""

    def fail(self, step: Step | None, message: str) -> ScenarioError:
        where = f"{self.scenario.path.name}:{step.lineno}" if step else self.scenario.path.name
        trace = "\n  ".join(self.trace[-self.trace_tail :])
        return ScenarioError(f"{where}: {message}\n trace:\n  {trace}")

    def check_expectation(self, step: Step, kind: str, rest: list[str]) -> dict[str, str]:
        positional, wanted = _kv(rest)
        if kind == "state" and positional:
            wanted["new"] = positional[0]
        missing = _REQUIRED.get(kind, set()) - wanted.keys()
        if kind not in _REQUIRED or missing:
            raise self.fail(step, f"bad expectation {kind!r} (missing {sorted(missing)})")
        return wanted

    def note_input(self, step: Step) -> None:
        self.trace.append(f"@{self.now:.6f} << {step.verb} {' '.join(step.args)}")

    def require_idle(self, step: Step) -> None:
        if self.pending:
            when, item = self.pending[0]
            raise self.fail(step, f"unexpected action @{when:.6f}: {self.show(item)}")

    def run(self) -> None:
        last = 0.0
        for step in self.scenario.steps:
            if step.time < last:
                raise self.fail(step, "time goes backwards")
            last = step.time
            self.advance(step.time + (TOL if step.verb == "expect" else 1e-9))
            if step.verb == "expect":
                self.expect(step)
                continue
            self.require_idle(step)
            if step.verb == "quiet":
                continue
            if step.verb == "inspect":
                self.inspect(step)
                continue
            self.now = max(self.now, step.time)
            self.apply(step)
        if self.pending:
            when, item = self.pending[0]
            raise self.fail(None, f"unexpected action at end @{when:.6f}: {self.show(item)}")


class Replay(ReplayBase[Action]):
    """Drive one machine through one scenario with a fake clock."""

    def __init__(self, scenario: Scenario) -> None:
        super().__init__(show, trace_tail=25)
        self.scenario = scenario
        self.machine = VrrpMachine(scenario.params)

    def _record(self, when: float, actions: list[Action]) -> None:
        for action in actions:
            self.pending.append((when, action))
            self.trace.append(f"@{when:.6f} {show(action)}")

    def advance(self, horizon: float) -> None:
        """Fire every deadline up to ``horizon``, one Tick at each deadline."""
        while (deadline := self.machine.next_deadline()) is not None and deadline <= horizon:
            if deadline < self.now - 1e-9:
                raise self.fail(None, f"deadline {deadline} is in the past (now {self.now})")
            self.now = max(self.now, deadline)
            self._record(self.now, self.machine.handle(self.now, Tick()))

    def expect(self, step: Step) -> None:
        if not step.args:
            raise self.fail(step, "expect needs an action kind")
        kind, *rest = step.args
        wanted = self.check_expectation(step, kind, rest)
        if not self.pending:
            raise self.fail(step, f"expected {' '.join(step.args)}, nothing happened")
        when, action = self.pending.popleft()
        got_kind, got = render(action)
        wrong = {k: got.get(k) for k, v in wanted.items() if got.get(k) != v}
        if got_kind != kind or wrong or abs(when - step.time) > TOL:
            raise self.fail(
                step, f"expected @{step.time} {' '.join(step.args)}\n got @{when:.6f} {show(action)}"
            )

    def inspect(self, step: Step) -> None:
        """``inspect state=... prio=... master=... interval=... deadline=...``."""
        _, wanted = _kv(step.args)
        m = self.machine
        deadline = m.next_deadline()
        got = {
            "state": m.state.value,
            "prio": str(m.effective_priority),
            "master": "none" if m.master_address is None else str(m.master_address),
            "interval": f"{m.master_adver_int_cs / 100:g}",
        }
        for key, value in wanted.items():
            if key == "deadline":
                ok = (
                    (deadline is None)
                    if value == "none"
                    else (deadline is not None and abs(deadline - float(value)) <= TOL)
                )
                if not ok:
                    raise self.fail(step, f"deadline {deadline}, expected {value}")
            elif got.get(key) != value:
                raise self.fail(step, f"{key} is {got.get(key)}, expected {value}")

    def apply(self, step: Step) -> None:
        self.note_input(step)
        if step.verb == "reconfigure":
            event: Input = _reconfigure(self.machine.params, step)
        else:
            event = _input(step)
        self._record(self.now, self.machine.handle(self.now, event))


def replay(path: Path) -> None:
    """Parse and replay one scenario file, raising ScenarioError on any mismatch."""
    Replay(parse(path)).run()
