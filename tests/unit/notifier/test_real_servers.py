"""A real server's start and its checkers, as keepalived 2.2.7 notifies them (observed with real IPVS).

The rows are what keepalived did with a virtual server of non-``alpha`` and
``alpha`` real servers whose single TCP_CHECK passed or failed at start, with
and without ``rs_init_notifies``, and with two failing checkers on one server,
with and without ``no_checker_emails`` (docs/keepalived.md#real-server-notifies).
"""

from __future__ import annotations

import pytest

from services.checker.publish import RealServerChannel
from services.notifier.core.formats import fifo_line, mail_for
from services.notifier.core.real_servers import mailed, notified_states
from services.notifier.core.targets import NotifyTarget, script_runs
from shared.config.script import Script
from shared.events import CheckerKind, Event, RealServerHealth, RealServerTransition

VS, RS = "10.0.0.1:80/tcp", "10.0.0.2:80"


def health(
    up: bool, *, initial_up: bool | None = None, changed: bool = True, checker_up: bool | None = None
) -> RealServerHealth:
    return RealServerHealth(
        virtual=VS,
        real=RS,
        up=up,
        checker=CheckerKind.TCP_CHECK,
        changed=changed,
        initial_up=initial_up,
        checker_up=checker_up,
    )


@pytest.mark.parametrize(
    ("initial_up", "up", "plain", "with_init"),
    [
        (True, True, [], [True]),  # passes at start: keepalived says nothing, rs_init_notifies says UP
        (True, False, [False], [True, False]),  # fails at start: DOWN (after the start's UP)
        (False, True, [True], [True]),  # alpha passes: a transition, UP
        (False, False, [False], [False]),  # alpha fails: DOWN all the same (no mail, below)
        (None, False, [False], [False]),  # any later transition
        (None, True, [True], [True]),
    ],
)
def test_scripts_and_fifo_follow_keepalived_start(
    initial_up: bool | None, up: bool, plain: list[bool], with_init: list[bool]
) -> None:
    moved = None if initial_up is None else (up if up != initial_up else None)
    event = health(up, initial_up=initial_up, checker_up=moved)
    assert notified_states(event, rs_init_notifies=False) == plain
    assert notified_states(event, rs_init_notifies=True) == with_init


def test_a_heartbeat_or_a_checker_move_runs_no_script() -> None:
    assert notified_states(health(True, changed=False), rs_init_notifies=True) == []
    assert notified_states(health(False, changed=False, checker_up=False), rs_init_notifies=True) == []


def test_rs_init_notifies_runs_notify_up_then_notify_down_for_a_server_failing_at_start() -> None:
    up, down = Script("/bin/up", ["/bin/up"]), Script("/bin/down", ["/bin/down"])
    target = NotifyTarget(scripts={"UP": up, "DOWN": down})
    event = health(False, initial_up=True, checker_up=False)
    assert [r.argv for r in script_runs(event, target, rs_init_notifies=True)] == [["/bin/up"], ["/bin/down"]]
    assert [r.argv for r in script_runs(event, target)] == [["/bin/down"]]
    assert script_runs(health(True, initial_up=True), target) == []
    assert [r.argv for r in script_runs(health(True, initial_up=True), target, rs_init_notifies=True)] == [
        ["/bin/up"]
    ]


def test_rs_init_notifies_writes_the_start_line_before_the_transition() -> None:
    event = health(False, initial_up=True, checker_up=False)
    assert fifo_line(event, rs_init_notifies=True) == (
        "RS [10.0.0.2]:tcp:80 [10.0.0.1]:tcp:80 UP\nRS [10.0.0.2]:tcp:80 [10.0.0.1]:tcp:80 DOWN\n"
    )
    assert fifo_line(event) == "RS [10.0.0.2]:tcp:80 [10.0.0.1]:tcp:80 DOWN\n"
    assert fifo_line(health(True, initial_up=True)) is None


@pytest.mark.parametrize(
    ("event", "default", "no_checker_emails"),
    [
        (health(True, initial_up=True), False, False),  # confirmed start: no checker moved
        (health(False, initial_up=True, checker_up=False), True, True),  # fails at start
        (health(True, initial_up=False, checker_up=True), True, True),  # alpha passes
        (health(False, initial_up=False), False, False),  # alpha fails: notified, never mailed
        (health(False, checker_up=False), True, True),  # the server goes down
        (health(False, changed=False, checker_up=False), True, False),  # a second checker fails
        (health(False, changed=False, checker_up=True), True, False),  # one of two recovers
        (health(True, changed=False), False, False),  # heartbeat
    ],
)
def test_mails_follow_the_checkers_unless_no_checker_emails(
    event: RealServerHealth, default: bool, no_checker_emails: bool
) -> None:
    assert mailed(event, no_checker_emails=False) is default
    assert mailed(event, no_checker_emails=True) is no_checker_emails


def test_a_checker_mail_has_the_servers_state_in_the_subject_and_the_checkers_in_the_body() -> None:
    mail = mail_for(health(False, changed=False, checker_up=True), "lab1")
    assert mail is not None
    assert mail.subject == "[lab1] Realserver [10.0.0.2]:tcp:80 of virtual server [10.0.0.1]:tcp:80 - DOWN"
    assert mail.body == "=> TCP CHECK succeed on service <="
    assert mail_for(health(False, changed=False, checker_up=True), "lab1", no_checker_emails=True) is None


def test_the_checker_tells_the_start_state_once_and_publishes_a_checker_move_durably() -> None:
    sent: list[Event] = []
    channel = RealServerChannel(sent.append, VS, RS, interval=1.0, initial_up=True)
    first = channel.observe(up=False, checker=CheckerKind.TCP_CHECK, detail="", latency_ms=None, weight=None,
                            failures=1, checker_up=False)  # fmt: skip
    assert first is not None and first.initial_up is True and first.changed
    second = channel.observe(up=False, checker=CheckerKind.TCP_CHECK, detail="", latency_ms=None, weight=None,
                             failures=1, checker_up=False)  # fmt: skip
    assert second is not None and second.initial_up is None and not second.changed
    durable = [e for e in sent if isinstance(e, RealServerTransition)]
    assert [(e.changed, e.checker_up) for e in durable] == [(True, False), (False, False)]
    beat = channel.heartbeat()
    assert beat is None or (beat.checker_up is None and beat.initial_up is None)


def test_a_checker_that_read_a_baseline_tells_no_start_state() -> None:
    sent: list[Event] = []
    baseline = health(True)
    channel = RealServerChannel(sent.append, VS, RS, interval=1.0, baseline=baseline, initial_up=True)
    event = channel.observe(up=False, checker=CheckerKind.TCP_CHECK, detail="", latency_ms=None, weight=None,
                            failures=1, checker_up=False)  # fmt: skip
    assert event is not None and event.initial_up is None and event.changed
