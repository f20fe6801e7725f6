"""Replay BFD session scenario files against the pure session (the VRRP replays' grammar).

A scenario is a header of ``key = value`` parameters (``min_tx``, ``min_rx``,
``idle_tx`` in ms, ``multiplier``, ``passive``, ``discr``, ``jitter`` =
``high``|``low``: the end of the 6.8.7 range the fake random source returns)
followed by timed lines::

    @0 start
    @0 expect send state=Down your=0 tx=1000
    @0.5 recv state=Down my=7
    @0.5 expect state Init

The runner keeps a fake clock.  Before each line at time T it fires every
deadline due by T (by T + TOL for an ``expect``).  Each ``expect`` consumes
the next action, which must have the given kind and fields (only those
written are compared) and happen within TOL of T.  An input, ``quiet`` or
``inspect`` line requires every earlier action to have been expected, and so
does the end of the file.  Inputs: ``start``, ``recv FIELD=V..`` (``state``
``my`` ``your`` ``tx`` ``rx`` in ms ``mult`` and the flags ``poll`` ``final``),
``admin_down``, ``admin_up``, ``reconfigure min_tx=MS min_rx=MS..``.
``inspect`` compares ``state``, ``detect`` and ``interval`` (seconds),
``polling`` and ``remote`` (RemoteDiscr).
"""

from __future__ import annotations

import shlex
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from services.bfd.core.packet import ControlPacket, SessionState
from services.bfd.core.session import (
    Action,
    AdminDown,
    AdminUp,
    BfdSession,
    Dropped,
    Input,
    Received,
    Reconfigure,
    Send,
    SessionParams,
    Start,
    StateChanged,
    Tick,
)

TOL = 0.0001
"""How far (seconds) an expected action may be from the time written in the file."""

_STATES = {s.name.replace("_", "").lower(): s for s in SessionState}


class ScenarioError(AssertionError):
    """A scenario failed: the message names the file, line and the trace so far."""


@dataclass
class Step:
    time: float
    verb: str
    args: list[str]
    lineno: int


@dataclass
class Scenario:
    path: Path
    params: SessionParams
    jitter_high: bool
    steps: list[Step] = field(default_factory=list)


def _us(ms: str) -> int:
    return round(float(ms) * 1000)


def _state(text: str) -> SessionState:
    return _STATES[text.replace("_", "").lower()]


def _params(header: dict[str, str]) -> tuple[SessionParams, bool]:
    jitter = header.pop("jitter", "high")
    if jitter not in ("high", "low"):
        raise ValueError(f"jitter is high or low, not {jitter!r}")
    kw: dict[str, object] = {"name": header.pop("name", "bfd1"), "local_discr": int(header.pop("discr", "1"))}
    for key, value in header.items():
        if key in ("min_tx", "min_rx", "idle_tx"):
            kw[f"{key}_us"] = _us(value)
        elif key == "multiplier":
            kw["detect_mult"] = int(value)
        elif key == "passive":
            kw["passive"] = value.lower() in ("1", "yes", "true")
        elif key != "description":
            raise ValueError(f"unknown header key {key!r}")
    return SessionParams(**kw), jitter == "high"  # type: ignore[arg-type]


def parse(path: Path) -> Scenario:
    """Read a scenario file; errors name the offending line."""
    header: dict[str, str] = {}
    steps: list[Step] = []
    for lineno, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("@"):
            when, verb, *args = shlex.split(line)
            steps.append(Step(float(when[1:]), verb, args, lineno))
        elif steps:
            raise ScenarioError(f"{path.name}:{lineno}: header line after the first timed line")
        else:
            key, _, value = (part.strip() for part in line.partition("="))
            header[key] = value
    try:
        params, high = _params(header)
    except (ValueError, TypeError) as exc:
        raise ScenarioError(f"{path.name}: bad header: {exc}") from exc
    return Scenario(path, params, high, steps)


def _kv(args: list[str]) -> tuple[list[str], dict[str, str]]:
    return [a for a in args if "=" not in a], dict(a.split("=", 1) for a in args if "=" in a)


def _received(args: list[str]) -> Received:
    flags, kv = _kv(args)
    packet = ControlPacket(
        state=_state(kv["state"]),
        diag=int(kv.get("diag", "0")),
        poll="poll" in flags,
        final="final" in flags,
        detect_mult=int(kv.get("mult", "3")),
        my_discr=int(kv.get("my", "7")),
        your_discr=int(kv.get("your", "0")),
        desired_min_tx_us=_us(kv.get("tx", "1000")),
        required_min_rx_us=_us(kv.get("rx", "1000")),
    )
    return Received(packet)


def _input(params: SessionParams, step: Step) -> Input:
    if step.verb == "start":
        return Start()
    if step.verb == "recv":
        return _received(step.args)
    if step.verb == "admin_down":
        return AdminDown()
    if step.verb == "admin_up":
        return AdminUp()
    if step.verb == "reconfigure":
        _, kv = _kv(step.args)
        updates = {f"{k}_us": _us(v) for k, v in kv.items()}
        return Reconfigure(msgspec.structs.replace(params, **updates))
    raise ValueError(f"unknown verb {step.verb!r}")


def render(action: Action) -> tuple[str, dict[str, str]]:
    """An action as (kind, fields) in the scenario vocabulary."""
    if isinstance(action, Send):
        p = action.packet
        return "send", {
            "state": p.state.name.lower().replace("_", ""),
            "diag": str(p.diag),
            "your": str(p.your_discr),
            "poll": str(int(p.poll)),
            "final": str(int(p.final)),
            "tx": f"{p.desired_min_tx_us / 1000:g}",
            "rx": f"{p.required_min_rx_us / 1000:g}",
            "mult": str(p.detect_mult),
        }
    if isinstance(action, StateChanged):
        return "state", {
            "new": action.new.name.lower().replace("_", ""),
            "from": action.old.name.lower().replace("_", ""),
            "diag": str(int(action.diag)),
        }
    assert isinstance(action, Dropped)
    return "dropped", {"reason": action.reason}


def show(action: Action) -> str:
    kind, fields = render(action)
    return " ".join([kind, *(f"{k}={v}" for k, v in fields.items())])


class Replay:
    """Drive one session through one scenario with a fake clock."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.session = BfdSession(
            scenario.params,
            jitter=(lambda low, high: high) if scenario.jitter_high else (lambda low, high: low),
        )
        self.now = 0.0
        self.pending: deque[tuple[float, Action]] = deque()
        self.trace: list[str] = []

    def fail(self, step: Step | None, message: str) -> ScenarioError:
        where = f"{self.scenario.path.name}:{step.lineno}" if step else self.scenario.path.name
        trace = "\n  ".join(self.trace[-25:])
        return ScenarioError(f"{where}: {message}\n trace:\n  {trace}")

    def _record(self, when: float, actions: list[Action]) -> None:
        for action in actions:
            self.pending.append((when, action))
            self.trace.append(f"@{when:.6f} {show(action)}")

    def advance(self, horizon: float) -> None:
        while (deadline := self.session.next_deadline()) is not None and deadline <= horizon:
            self.now = max(self.now, deadline)
            self._record(self.now, self.session.handle(self.now, Tick()))

    def expect(self, step: Step) -> None:
        if not step.args:
            raise self.fail(step, "expect what?")
        kind, rest = step.args[0], step.args[1:]
        positional, wanted = _kv(rest)
        if kind == "state" and positional:
            wanted["new"] = positional[0].lower().replace("_", "")
        if not self.pending:
            raise self.fail(step, f"missing {kind} {wanted} @{step.time}")
        when, action = self.pending.popleft()
        got_kind, got = render(action)
        if abs(when - step.time) > TOL:
            raise self.fail(step, f"expected @{step.time}, got @{when:.6f}: {show(action)}")
        if got_kind != kind or any(got.get(k) != v for k, v in wanted.items()):
            raise self.fail(step, f"expected {kind} {wanted}, got {show(action)}")

    def inspect(self, step: Step) -> None:
        _, wanted = _kv(step.args)
        s = self.session
        facts = {
            "state": s.state.name.lower().replace("_", ""),
            "detect": f"{s.detection_time():g}",
            "interval": f"{s.transmit_interval():g}",
            "polling": str(int(s.polling)),
            "remote": str(s.remote_discr),
        }
        for key, value in wanted.items():
            if key not in facts:
                raise self.fail(step, f"cannot inspect {key!r}")
            if facts[key] != value:
                raise self.fail(step, f"inspect {key}: expected {value}, got {facts[key]}")

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
            if self.pending:
                when, item = self.pending[0]
                raise self.fail(step, f"unexpected action @{when:.6f}: {show(item)}")
            if step.verb == "quiet":
                continue
            if step.verb == "inspect":
                self.inspect(step)
                continue
            self.now = max(self.now, step.time)
            self.trace.append(f"@{self.now:.6f} << {step.verb} {' '.join(step.args)}")
            try:
                event = _input(self.session.params, step)
            except (KeyError, ValueError) as exc:
                raise self.fail(step, f"bad input line: {exc}") from exc
            self._record(self.now, self.session.handle(self.now, event))
        if self.pending:
            when, item = self.pending[0]
            raise self.fail(None, f"unexpected action at end @{when:.6f}: {show(item)}")


def replay(path: Path) -> None:
    """Parse and run one scenario file; raises ScenarioError on the first mismatch."""
    Replay(parse(path)).run()
