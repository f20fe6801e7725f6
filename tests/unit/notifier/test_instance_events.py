"""``InstanceEvent`` and instance removal in the notifier, as keepalived 2.2.7 notifies them.

The FIFO words and numbers come from 2.2.7's ``notify_fifo`` (``MASTER_PRIORITY``,
``BACKUP_PRIORITY``, ``MASTER_RX_LOWER_PRI``, the effective priority); its
``send_event_notify`` runs ``notify_master_rx_lower_pri`` with its own words only.
"""

from __future__ import annotations

import pytest

from services.notifier.core.formats import fifo_line, is_vrrp_event, mail_for
from services.notifier.core.targets import NotifyTarget, NotifyTargets, script_runs
from services.notifier.sinks.script import ScriptSink
from shared.config.script import Script
from shared.events import InstanceEvent, InstanceEventKind, InstanceState, TransitionReason, VrrpState


def sc(*argv: str) -> Script:
    return Script(command=" ".join(argv), argv=list(argv))


def event(kind: InstanceEventKind, state: VrrpState, prio: int = 90) -> InstanceEvent:
    return InstanceEvent(
        instance="VI_1", vrid=51, interface="eth0", kind=kind, state=state, effective_priority=prio
    )


@pytest.mark.parametrize(
    ("kind", "state", "line"),
    [
        (InstanceEventKind.PRIORITY_CHANGED, VrrpState.MASTER, 'INSTANCE "VI_1" MASTER_PRIORITY 90\n'),
        (InstanceEventKind.PRIORITY_CHANGED, VrrpState.BACKUP, 'INSTANCE "VI_1" BACKUP_PRIORITY 90\n'),
        (InstanceEventKind.PRIORITY_CHANGED, VrrpState.FAULT, 'INSTANCE "VI_1" BACKUP_PRIORITY 90\n'),
        (InstanceEventKind.MASTER_RX_LOWER_PRI, VrrpState.MASTER, 'INSTANCE "VI_1" MASTER_RX_LOWER_PRI 90\n'),
    ],
)
def test_fifo_lines_of_instance_events(kind: InstanceEventKind, state: VrrpState, line: str) -> None:
    e = event(kind, state)
    assert fifo_line(e) == line and is_vrrp_event(e) and mail_for(e, "lab") is None


def test_a_resumed_master_is_no_keepalived_event_no_line_no_mail_no_script() -> None:
    """vrrp's hitless restart (``resumed``) has no keepalived counterpart: the notifier stays silent."""
    e = event(InstanceEventKind.RESUMED, VrrpState.MASTER)
    target = NotifyTarget(scripts={"MASTER_RX_LOWER_PRI": sc("/x.sh")}, generic=sc("/g.sh"))
    assert fifo_line(e) is None and mail_for(e, "lab") is None and script_runs(e, target) == []


def test_master_rx_lower_pri_runs_its_script_with_its_own_words_only() -> None:
    script = sc("/x.sh", "lower")
    target = NotifyTarget(scripts={"MASTER_RX_LOWER_PRI": script}, generic=sc("/g.sh"))
    runs = script_runs(event(InstanceEventKind.MASTER_RX_LOWER_PRI, VrrpState.MASTER), target)
    assert [(r.script, r.argv) for r in runs] == [(script, ["/x.sh", "lower"])]
    assert script_runs(event(InstanceEventKind.PRIORITY_CHANGED, VrrpState.MASTER), target) == []


def removed(name: str, reason: TransitionReason = TransitionReason.REMOVED) -> InstanceState:
    return InstanceState(
        instance=name,
        vrid=51,
        interface="eth0",
        state=VrrpState.DELETED,
        previous=VrrpState.MASTER,
        base_priority=100,
        effective_priority=100,
        reason=reason,
    )


def test_a_reloaded_script_sink_still_runs_the_removed_instances_scripts_for_their_removal() -> None:
    """The notifier may reload before vrrp publishes the removal: the old scripts still answer it."""
    deleted = sc("/deleted.sh")
    old = ScriptSink(
        NotifyTargets(instances={"VI_1": NotifyTarget(scripts={"DELETED": deleted}, report_deleted=True)})
    )
    new_targets = NotifyTargets(instances={"VI_2": NotifyTarget(scripts={"MASTER": sc("/m.sh")})})
    new = ScriptSink(new_targets)
    new.take_over(old)
    target = new_targets(removed("VI_1"))
    assert target is not None and [r.argv for r in script_runs(removed("VI_1"), target)] == [["/deleted.sh"]]
    assert new_targets(removed("VI_1", TransitionReason.RELOAD)) is None  # only the removal itself
    newer = NotifyTargets()
    newer.retire(new_targets)
    assert newer(removed("VI_1")) is not None and newer(removed("VI_2")) is not None
