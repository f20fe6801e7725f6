"""Golden tests: our formats against keepalived 2.2.7's own output (see golden/README.md)."""

from __future__ import annotations

import calendar
from pathlib import Path

import pytest

from services.notifier.core import formats
from services.notifier.core.formats import Mail
from services.notifier.core.targets import NotifyTarget, NotifyTargets, script_runs
from shared.config.script import Script
from shared.events import (
    OMEGA_DETAIL,
    CheckerKind,
    Event,
    GroupState,
    InstanceState,
    PoolEvent,
    PoolEventKind,
    RealServerHealth,
    TrackerKind,
    TrackerResult,
    VrrpState,
)

GOLDEN = Path(__file__).parent / "golden"
M, B, F, S, D = VrrpState.MASTER, VrrpState.BACKUP, VrrpState.FAULT, VrrpState.STOP, VrrpState.DELETED
PRIO = {"VI_1": 255, "VI_2": 100, "VI_3": 90, "VI_4": 80}


def inst(name: str, state: VrrpState, seq: int = 1) -> InstanceState:
    p = PRIO[name]
    return InstanceState(
        instance=name, vrid=50 + int(name[-1]), interface="eth0", state=state,
        base_priority=p, effective_priority=p, seq=seq, boot_id="b1", node="n1",
    )  # fmt: skip


def group(state: VrrpState) -> GroupState:
    return GroupState(group="G1", state=state, members=("VI_2", "VI_3"), boot_id="b1", node="n1")


def smtp_capture(name: str) -> tuple[list[bytes], bytes]:
    """(client command lines, DATA up to the final '.' line) of one captured session."""
    raw = (GOLDEN / name).read_bytes()
    start = raw.index(b"\nD: ") + 4
    end = raw.index(b"\r\n.\r\n", start) + 2
    commands = [line[3:] for line in raw.split(b"\r\n") if line.startswith(b"C: ")]
    return commands, raw[start:end]


# --------------------------------------------------------------------------- mail


@pytest.mark.parametrize(
    ("capture", "event"),
    [
        ("smtp-instance-master.raw", inst("VI_1", M)),
        ("smtp-instance-fault.raw", inst("VI_4", F)),
        ("smtp-instance-deleted.raw", inst("VI_1", D)),
        ("smtp-group-backup.raw", group(B)),
        ("smtp-group-master.raw", group(M)),
    ],
)
def test_mail_is_byte_exact_with_keepalived(capture: str, event: Event) -> None:
    commands, data = smtp_capture(capture)
    assert commands == [
        b"HELO helo.example", b"MAIL FROM:<ka@example.net>", b"RCPT TO:<a@example.net>",
        b"RCPT TO:<b@example.net>", b"DATA", b"QUIT",
    ]  # fmt: skip
    date = data.split(b"\r\n", 1)[0].removeprefix(b"Date: ").decode()
    mail = formats.mail_for(event, "lab1")
    assert mail is not None
    ours = formats.mail_data(
        date=date, sender="ka@example.net", recipients=["a@example.net", "b@example.net"], mail=mail
    )
    assert ours == data


def test_mail_date_matches_keepalived_layout() -> None:
    ts = calendar.timegm((2026, 11, 25, 18, 12, 26)) * 1_000_000_000
    assert formats.mail_date(ts, utc=True) == "Wed, 25 Nov 2026 18:12:26 +0000"
    assert formats.mail_date(calendar.timegm((2026, 1, 5, 1, 2, 3)) * 10**9, utc=True) == (
        "Mon, 05 Jan 2026 01:02:03 +0000"
    )


def test_extra_headers_follow_keepalived_headers() -> None:
    data = formats.mail_data(
        date="D", sender="f", recipients=["a"], mail=Mail("s", "b"), extra_headers=[("Message-ID", "<x>")]
    )
    assert (
        data == b"Date: D\r\nFrom: f\r\nSubject: s\r\nX-Mailer: Keepalived\r\nTo: a\r\n"
        b"Message-ID: <x>\r\n\r\nb\r\n\r\n"
    )


def test_stop_and_lvs_mail() -> None:
    assert formats.mail_for(inst("VI_2", S), "r") == Mail(
        "[r] VRRP Instance VI_2 - Stopping", "=> VRRP Instance stopping <="
    )
    assert formats.mail_for(group(S), "r") == Mail(
        "[r] VRRP Group G1 - Stopping", "=> All VRRP group instances are now stopping <="
    )
    rs = RealServerHealth(
        virtual="10.0.0.1:80/tcp", real="192.168.1.2:80", up=True, checker=CheckerKind.TCP_CHECK
    )
    assert formats.mail_for(rs, "r") == Mail(
        "[r] Realserver [192.168.1.2]:tcp:80 of virtual server [10.0.0.1]:tcp:80 - UP",
        "=> TCP CHECK succeed on service <=",
    )
    down = RealServerHealth(
        virtual="10.0.0.1:443/tcp", real="192.168.1.2:443", up=False, checker=CheckerKind.SSL_GET
    )
    mail = formats.mail_for(down, "r")
    assert mail is not None and mail.body == "=> CHECK failed on service : HTTP request failed <="
    quorum = PoolEvent(virtual="10.0.0.1:80/tcp", kind=PoolEventKind.QUORUM_UP, quorum=1, weight_sum=2)
    assert formats.mail_for(quorum, "r") == Mail(
        "[r] Virtualserver [10.0.0.1]:tcp:80 - UP", "=> Gained quorum 1+0=1 <= 2 <="
    )
    heartbeat = RealServerHealth(virtual="10.0.0.1:80/tcp", real="1.2.3.4:80", up=True,
                                 checker=CheckerKind.TCP_CHECK, changed=False)  # fmt: skip
    assert formats.mail_for(heartbeat, "r") is None
    assert formats.mail_for(inst("VI_1", VrrpState.INIT), "r") is None


@pytest.mark.parametrize(
    ("checker", "up", "detail", "body"),
    [
        (CheckerKind.TCP_CHECK, False, "", "=> TCP CHECK failed on service <="),
        (CheckerKind.HTTP_GET, True, "", "=> CHECK succeed on service <="),
        (
            CheckerKind.SMTP_CHECK,
            False,
            "Connection refused",
            "=> CHECK failed on service : Connection refused <=",
        ),
        (CheckerKind.MISC_CHECK, True, "", "=> MISC CHECK succeed on service <="),
        (CheckerKind.DNS_CHECK, False, "", "=> DNS_CHECK: failed on service <="),
        (CheckerKind.UDP_CHECK, True, "", "=> UDP CHECK succeed on service <="),
        (CheckerKind.PING_CHECK, False, "", "=> ICMP CHECK failed on service <="),
        (CheckerKind.BFD_CHECK, False, "bfd1", "=> BFD CHECK bfd1 failed on service <="),
    ],
)
def test_checker_bodies(checker: CheckerKind, up: bool, detail: str, body: str) -> None:
    assert formats.checker_body(checker, up, detail) == body


# --------------------------------------------------------------------------- FIFO


def test_fifo_lines_are_byte_exact_with_keepalived() -> None:
    events: list[Event] = [
        inst("VI_4", F), group(B), inst("VI_2", B), inst("VI_3", B), inst("VI_1", M),
        inst("VI_3", M), inst("VI_2", M), group(M),
        inst("VI_1", S), inst("VI_2", S), inst("VI_3", S), inst("VI_4", S), group(S),
    ]  # fmt: skip
    ours = "".join(line for e in events if (line := formats.fifo_line(e)) is not None)
    assert ours.encode() == (GOLDEN / "fifo-run2.raw").read_bytes()


def test_lvs_fifo_lines() -> None:
    rs = RealServerHealth(
        virtual="10.0.0.1:80/tcp", real="192.168.1.2:80", up=False, checker=CheckerKind.TCP_CHECK
    )
    assert formats.fifo_line(rs) == "RS [192.168.1.2]:tcp:80 [10.0.0.1]:tcp:80 DOWN\n"
    vs = PoolEvent(virtual="10.0.0.1:80/tcp", kind=PoolEventKind.QUORUM_UP)
    assert formats.fifo_line(vs) == "VS [10.0.0.1]:tcp:80 UP\n"
    assert (
        formats.fifo_line(PoolEvent(virtual="fwmark:12", kind=PoolEventKind.QUORUM_DOWN))
        == "VS FWM 12 DOWN\n"
    )
    assert (
        formats.fifo_line(PoolEvent(virtual="group:web", kind=PoolEventKind.QUORUM_UP)) == "VS [web]:0 UP\n"
    )
    v6 = RealServerHealth(virtual="[2001:db8::1]:443/tcp", real="[2001:db8::2]:443", up=True,
                          checker=CheckerKind.TCP_CHECK)  # fmt: skip
    assert formats.fifo_line(v6) == "RS [2001:db8::2]:tcp:443 [2001:db8::1]:tcp:443 UP\n"
    assert formats.fifo_line(PoolEvent(virtual="10.0.0.1:80/tcp", kind=PoolEventKind.RS_ADDED)) is None
    tracker = TrackerResult(tracker="chk", kind=TrackerKind.SCRIPT, ok=True)
    assert formats.fifo_line(tracker) is None


def test_deleted_without_notify_deleted_is_fault() -> None:
    assert formats.fifo_line(inst("VI_1", D), report_deleted=False) == 'INSTANCE "VI_1" FAULT 255\n'
    assert formats.fifo_line(inst("VI_1", D)) == 'INSTANCE "VI_1" DELETED 255\n'


# --------------------------------------------------------------------------- scripts


def _s(*argv: str) -> Script:
    return Script(command=" ".join(argv), argv=list(argv))


N = "/tmp/kacap/n.sh"
CAPTURE_TARGETS = NotifyTargets(
    instances={
        "VI_1": NotifyTarget(
            scripts={"MASTER": _s(N, "master", "a b"), "BACKUP": _s(N, "backup"), "FAULT": _s(N, "fault"),
                     "STOP": _s(N, "stop"), "DELETED": _s(N, "deleted")},
            generic=_s(N, "generic"), report_deleted=True,
        ),
        "VI_2": NotifyTarget(generic=_s(N, "generic2")),
        "VI_4": NotifyTarget(generic=_s(N, "generic4")),
    },
    groups={
        "G1": NotifyTarget(
            scripts={"MASTER": _s(N, "gmaster"), "BACKUP": _s(N, "gbackup"), "FAULT": _s(N, "gfault"),
                     "STOP": _s(N, "gstop")},
            generic=_s(N, "ggeneric", "x"),
        )
    },
)  # fmt: skip


def _script_lines(events: list[Event]) -> list[str]:
    lines = []
    for event in events:
        target = CAPTURE_TARGETS(event)
        if target is not None:
            lines += [" ".join(f"<{a}>" for a in run.argv[1:]) for run in script_runs(event, target)]
    return lines


def test_script_argv_matches_keepalived_run1() -> None:
    events: list[Event] = [
        inst("VI_4", F), group(B), inst("VI_2", B), inst("VI_3", B), inst("VI_1", M),
        inst("VI_3", M), inst("VI_2", M), group(M), inst("VI_1", D),
    ]  # fmt: skip
    # keepalived forks and forgets, so its log order between objects is not an order: compare as sets
    captured = (GOLDEN / "scripts-run1.txt").read_text().splitlines()
    assert sorted(_script_lines(events)) == sorted(captured)


def test_script_argv_matches_keepalived_run2() -> None:
    events: list[Event] = [
        inst("VI_4", F), group(B), inst("VI_2", B), inst("VI_3", B), inst("VI_1", M),
        inst("VI_3", M), inst("VI_2", M), group(M),
        inst("VI_1", S), inst("VI_2", S), inst("VI_3", S), inst("VI_4", S), group(S),
    ]  # fmt: skip
    captured = (GOLDEN / "scripts-run2.txt").read_text().splitlines()
    assert sorted(_script_lines(events)) == sorted(captured)


def test_specific_script_runs_before_generic() -> None:
    runs = script_runs(inst("VI_1", M), CAPTURE_TARGETS.instances["VI_1"])
    assert [r.argv for r in runs] == [
        [N, "master", "a b"],
        [N, "generic", "INSTANCE", "VI_1", "MASTER", "255"],
    ]


def test_deleted_without_notify_deleted_runs_notify_fault() -> None:
    target = NotifyTarget(scripts={"FAULT": _s("/f")}, generic=_s("/g"))
    runs = script_runs(inst("VI_2", D), target)
    assert [r.argv for r in runs] == [["/f"], ["/g", "INSTANCE", "VI_2", "FAULT", "100"]]


def test_lvs_scripts_get_only_their_arguments() -> None:
    rs_target = NotifyTarget(scripts={"UP": _s("/up", "x"), "DOWN": _s("/down")})
    up = RealServerHealth(
        virtual="10.0.0.1:80/tcp", real="1.2.3.4:80", up=True, checker=CheckerKind.TCP_CHECK
    )
    assert [r.argv for r in script_runs(up, rs_target)] == [["/up", "x"]]
    quorum = PoolEvent(virtual="10.0.0.1:80/tcp", kind=PoolEventKind.QUORUM_DOWN)
    assert [r.argv for r in script_runs(quorum, rs_target)] == [["/down"]]


def test_event_env() -> None:
    env = formats.event_env(inst("VI_1", M, seq=42), attempt=3)
    assert env["LIFELINE_TYPE"] == "instance_state"
    assert env["LIFELINE_SEQ"] == "42"
    assert env["LIFELINE_EVENT_ID"] == "b1:42"
    assert env["LIFELINE_ATTEMPT"] == "3"
    assert env["LIFELINE_STATE"] == "MASTER"
    assert env["LIFELINE_PREVIOUS"] == ""
    assert env["LIFELINE_EFFECTIVE_PRIORITY"] == "255"


def test_omega_removal_at_stop_runs_the_real_servers_notify_down() -> None:
    """keepalived's omega: at shutdown each alive real server's notify_down runs."""
    vs, rs = "10.0.0.1:80/tcp", "10.0.1.1:80"
    targets = NotifyTargets(
        real_servers={(vs, rs): NotifyTarget(scripts={"UP": _s(N, "up"), "DOWN": _s(N, "down")})},
        virtual_servers={vs: NotifyTarget(scripts={"DOWN": _s(N, "qdown")})},
    )
    omega = PoolEvent(virtual=vs, kind=PoolEventKind.RS_REMOVED, real=rs, detail=OMEGA_DETAIL, node="n")
    target = targets(omega)
    assert target is not None
    assert [run.argv for run in script_runs(omega, target)] == [[N, "down"]]
    plain = PoolEvent(virtual=vs, kind=PoolEventKind.RS_REMOVED, real=rs, node="n")  # a removal while running
    plain_target = targets(plain)
    assert plain_target is not None and script_runs(plain, plain_target) == []
