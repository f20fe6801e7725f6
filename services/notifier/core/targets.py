"""Which scripts to run for an event: resolved per object, independent of the config model.

Why resolved inputs: the vrrp and lvs config models name their keywords
(``notify_master``, ``notify_up``, ``quorum_up``...) in their own structs; the
script sink should not know those structs.  Whoever builds the notifier turns
the config into one ``NotifyTarget`` per instance, group, real server and
virtual server, and the sink asks a ``TargetResolver`` for the event's target.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import msgspec

from services.notifier.core.formats import group_generic_argv, instance_generic_argv, notified_state
from services.notifier.core.real_servers import notified_states
from shared.config.script import Script
from shared.events import (
    Event,
    GroupState,
    InstanceEvent,
    InstanceEventKind,
    InstanceState,
    PoolEvent,
    PoolEventKind,
    RealServerHealth,
    TransitionReason,
    is_omega_removal,
)


class NotifyTarget(msgspec.Struct, frozen=True, kw_only=True):
    """The scripts of one object.

    ``scripts`` maps a state to its specific script: ``MASTER``, ``BACKUP``,
    ``FAULT``, ``STOP``, ``DELETED`` for instances and groups (``notify_<state>``),
    ``MASTER_RX_LOWER_PRI`` for instances (``notify_master_rx_lower_pri``),
    ``UP`` and ``DOWN`` for real servers (``notify_up/down``) and virtual
    servers (``quorum_up/down``).  ``generic`` is ``notify`` (instances and
    groups only).  ``report_deleted`` is true when the instance has the
    ``notify_deleted`` keyword (with or without a script): without it a deleted
    instance is reported as FAULT and runs ``notify_fault``.
    """

    scripts: dict[str, Script] = msgspec.field(default_factory=dict)
    generic: Script | None = None
    report_deleted: bool = False


class ScriptRun(msgspec.Struct, frozen=True):
    """One script to run: the configured script (for its user/group) and the final argv."""

    script: Script
    argv: list[str]


REMOVED = TransitionReason.REMOVED

TargetResolver = Callable[[Event], NotifyTarget | None]
"""Returns the target of an event's object, None when it has no scripts."""


class NotifyTargets:
    """A ``TargetResolver`` over plain mappings, keyed by the names on the bus."""

    def __init__(
        self,
        *,
        instances: Mapping[str, NotifyTarget] | None = None,
        groups: Mapping[str, NotifyTarget] | None = None,
        real_servers: Mapping[tuple[str, str], NotifyTarget] | None = None,
        virtual_servers: Mapping[str, NotifyTarget] | None = None,
    ) -> None:
        self.instances = dict(instances or {})
        self.groups = dict(groups or {})
        self.real_servers = dict(real_servers or {})
        self.virtual_servers = dict(virtual_servers or {})
        self.retired: dict[str, NotifyTarget] = {}
        """Instances a reload removed: their scripts still run for the removal (``retire``)."""

    def retire(self, previous: NotifyTargets) -> None:
        """Keep the scripts of the instances ``previous`` had and these targets lack.

        keepalived notifies a removed instance (``notify_deleted``, or FAULT)
        with its old scripts.  Here the notifier may reload before the vrrp
        service publishes that event, so the new targets answer it with the
        scripts the instance had, and only for that event (reason ``removed``).
        """
        for name, target in {**previous.retired, **previous.instances}.items():
            if name not in self.instances:
                self.retired[name] = target

    def __call__(self, event: Event) -> NotifyTarget | None:
        match event:
            case InstanceState() if event.instance not in self.instances and event.reason is REMOVED:
                return self.retired.get(event.instance)
            case InstanceState() | InstanceEvent():
                return self.instances.get(event.instance)
            case GroupState():
                return self.groups.get(event.group)
            case RealServerHealth():
                return self.real_servers.get((event.virtual, event.real))
            case PoolEvent() if is_omega_removal(event):
                return self.real_servers.get((event.virtual, event.real or ""))
            case PoolEvent():
                return self.virtual_servers.get(event.virtual)
        return None


ScriptDefinition = tuple[tuple[str, ...], str | None, str | None]


def _script_definition(script: Script | None) -> ScriptDefinition | None:
    return None if script is None else (tuple(script.argv), script.user, script.group)


def _target_definition(target: NotifyTarget) -> object:
    scripts = {state: _script_definition(s) for state, s in target.scripts.items()}
    return (scripts, _script_definition(target.generic), target.report_deleted)


def targets_definition(targets: NotifyTargets) -> object:
    """What the targets run (argv, user, group per object and state), comparable with ``==``.

    Without where each script was configured (file, line): a reload of a file
    where only comments or the order of blocks changed changes no script.
    """
    return tuple(
        {key: _target_definition(t) for key, t in mapping.items()}
        for mapping in (targets.instances, targets.groups, targets.real_servers, targets.virtual_servers)
    )


def script_runs(event: Event, target: NotifyTarget, *, rs_init_notifies: bool = False) -> list[ScriptRun]:
    """The scripts keepalived runs for ``event``, in its order: ``notify_<state>``, then ``notify``.

    A real server's first verdict may run two (its start with ``rs_init_notifies``,
    then its transition) or none (``core/real_servers.py``).
    """
    runs: list[ScriptRun] = []
    match event:
        case InstanceState():
            state = notified_state(event.state, report_deleted=target.report_deleted)
            if state is None:
                return []
            if (specific := target.scripts.get(state.value)) is not None:
                runs.append(ScriptRun(specific, list(specific.argv)))
            if target.generic is not None:
                argv = instance_generic_argv(target.generic.argv, event, report_deleted=target.report_deleted)
                if argv is not None:
                    runs.append(ScriptRun(target.generic, argv))
        case GroupState():
            gstate = notified_state(event.state)
            if gstate is None:
                return []
            if (specific := target.scripts.get(gstate.value)) is not None:
                runs.append(ScriptRun(specific, list(specific.argv)))
            if target.generic is not None and (argv := group_generic_argv(target.generic.argv, event)):
                runs.append(ScriptRun(target.generic, argv))
        case InstanceEvent() if event.kind is InstanceEventKind.MASTER_RX_LOWER_PRI:
            if (script := target.scripts.get("MASTER_RX_LOWER_PRI")) is not None:
                runs.append(ScriptRun(script, list(script.argv)))  # its own words only, as keepalived
        case RealServerHealth():
            states = notified_states(event, rs_init_notifies=rs_init_notifies)
            runs.extend(run for up in states for run in _updown(target, up))
        case PoolEvent() if event.kind in (PoolEventKind.QUORUM_UP, PoolEventKind.QUORUM_DOWN):
            _append_updown(runs, target, event.kind is PoolEventKind.QUORUM_UP)
        case PoolEvent() if is_omega_removal(event):
            _append_updown(runs, target, False)
    return runs


def _updown(target: NotifyTarget, up: bool) -> list[ScriptRun]:
    script = target.scripts.get("UP" if up else "DOWN")
    return [] if script is None else [ScriptRun(script, list(script.argv))]


def _append_updown(runs: list[ScriptRun], target: NotifyTarget, up: bool) -> None:
    runs.extend(_updown(target, up))
