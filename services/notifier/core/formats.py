"""keepalived 2.2.7's notification formats as pure functions: script argv, FIFO lines, mail.

Why pure: the formats are the compatibility contract (operators' scripts parse
the argv and FIFO lines, their mail filters match the subjects), so they are
tested byte for byte against output captured from keepalived 2.2.7 itself
(``tests/unit/notifier/golden/``) without any IO.  The sinks only move the
strings built here.

Names on the bus are lifeline's canonical keys (``172.16.0.100:80/tcp``,
``fwmark:7``, ``group:NAME``, real servers ``192.168.0.10:80``); keepalived
prints them as ``[172.16.0.100]:tcp:80``, ``FWM 7`` and ``[NAME]:0``.

Where a format could not be captured (keepalived needs IPVS for the checker
side, and mail sent during shutdown never leaves it) it follows the format
strings keepalived 2.2.7 prints; those places say so.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Final, Literal

import msgspec

from services.notifier.core.real_servers import mailed, mailed_verdict, notified_states
from shared.events import (
    CheckerKind,
    Event,
    EventBase,
    GroupState,
    InstanceEvent,
    InstanceEventKind,
    InstanceState,
    PoolEvent,
    PoolEventKind,
    RealServerHealth,
    VrrpState,
    msg_id,
)

VrrpKind = Literal["INSTANCE", "GROUP"]

NOTIFIED_STATES: Final = frozenset(
    {VrrpState.MASTER, VrrpState.BACKUP, VrrpState.FAULT, VrrpState.STOP, VrrpState.DELETED}
)
"""States keepalived notifies; INIT is internal and never reaches a script, FIFO or mail."""

X_MAILER: Final = "Keepalived"

# --------------------------------------------------------------------------- states


def notified_state(state: VrrpState, *, report_deleted: bool = True) -> VrrpState | None:
    """The state keepalived reports for ``state``, None if it reports nothing (INIT).

    Without ``notify_deleted`` in the instance, keepalived reports an instance
    deleted at reload as FAULT (man keepalived.conf, ``notify_deleted``), and
    runs ``notify_fault`` for it.
    """
    if state not in NOTIFIED_STATES:
        return None
    if state is VrrpState.DELETED and not report_deleted:
        return VrrpState.FAULT
    return state


# --------------------------------------------------------------------------- notify scripts


def generic_script_argv(
    script_argv: Sequence[str], kind: VrrpKind, name: str, state: VrrpState, priority: int
) -> list[str]:
    """Generic ``notify``: the configured words, then ``INSTANCE|GROUP NAME STATE PRIORITY``.

    Captured: ``notify "/x.sh generic"`` for VI_1 entering MASTER at priority
    255 runs ``/x.sh generic INSTANCE VI_1 MASTER 255``; a group always says 0.
    """
    return [*script_argv, kind, name, state.value, str(priority)]


def instance_generic_argv(
    script_argv: Sequence[str], event: InstanceState, *, report_deleted: bool = True
) -> list[str] | None:
    """Generic ``notify`` argv for an instance event (effective priority), None if not notified."""
    state = notified_state(event.state, report_deleted=report_deleted)
    if state is None:
        return None
    return generic_script_argv(script_argv, "INSTANCE", event.instance, state, event.effective_priority)


def group_generic_argv(script_argv: Sequence[str], event: GroupState) -> list[str] | None:
    """Generic ``notify`` argv for a sync group event (priority is always 0), None if not notified."""
    state = notified_state(event.state)
    if state is None:
        return None
    return generic_script_argv(script_argv, "GROUP", event.group, state, 0)


# --------------------------------------------------------------------------- LVS names


class Endpoint(msgspec.Struct, frozen=True):
    """An address, port and protocol taken from a lifeline key."""

    address: str
    port: int
    protocol: str = "tcp"


def _split_host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"not host:port: {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def parse_virtual(virtual: str) -> Endpoint | tuple[Literal["fwmark"], int] | tuple[Literal["group"], str]:
    """Take a canonical virtual server key apart (see ``shared.events.virtual_server_key``)."""
    if virtual.startswith("fwmark:"):
        return ("fwmark", int(virtual[len("fwmark:") :].split("/", 1)[0]))
    if virtual.startswith("group:"):
        return ("group", virtual[len("group:") :])
    hostport, _, protocol = virtual.rpartition("/")
    if not hostport:
        raise ValueError(f"not a virtual server key: {virtual!r}")
    host, port = _split_host_port(hostport)
    return Endpoint(host, port, protocol)


def _trio(endpoint: Endpoint) -> str:
    """keepalived's ``[address]:proto:port`` (brackets for IPv4 too)."""
    return f"[{endpoint.address}]:{endpoint.protocol}:{endpoint.port}"


def keepalived_vs_name(virtual: str) -> str:
    """``172.16.0.100:80/tcp`` → ``[172.16.0.100]:tcp:80``; ``fwmark:12`` → ``FWM 12``.

    A virtual server group prints as ``[NAME]:port``; the group object has no
    port of its own, so keepalived prints 0 (not captured: needs IPVS).
    """
    parsed = parse_virtual(virtual)
    if isinstance(parsed, Endpoint):
        return _trio(parsed)
    if parsed[0] == "fwmark":
        return f"FWM {parsed[1]}"
    return f"[{parsed[1]}]:0"


def keepalived_rs_name(virtual: str, real: str) -> str:
    """``192.168.1.2:80`` of ``10.0.0.1:80/tcp`` → ``[192.168.1.2]:tcp:80`` (the virtual's protocol)."""
    parsed = parse_virtual(virtual)
    protocol = parsed.protocol if isinstance(parsed, Endpoint) else "tcp"
    host, port = _split_host_port(real)
    return _trio(Endpoint(host, port, protocol))


# --------------------------------------------------------------------------- FIFO lines


def vrrp_fifo_line(kind: VrrpKind, name: str, state: VrrpState, priority: int) -> str:
    """``INSTANCE "VI_1" MASTER 255\\n`` / ``GROUP "G1" BACKUP 0\\n`` (captured)."""
    return f'{kind} "{name}" {state.value} {priority}\n'


def instance_event_fifo_line(event: InstanceEvent) -> str:
    """keepalived 2.2.7's event lines: ``INSTANCE "VI_1" MASTER_PRIORITY 90\\n`` and friends.

    A priority change says ``MASTER_PRIORITY`` in MASTER and ``BACKUP_PRIORITY``
    in any other state (``send_instance_priority_notifies``); a MASTER hearing
    a lower priority says ``MASTER_RX_LOWER_PRI`` (``send_event_notify``).  The
    number is the instance's effective priority, as in its state lines.
    """
    if event.kind is InstanceEventKind.MASTER_RX_LOWER_PRI:
        word = "MASTER_RX_LOWER_PRI"
    else:
        word = "MASTER_PRIORITY" if event.state is VrrpState.MASTER else "BACKUP_PRIORITY"
    return f'INSTANCE "{event.instance}" {word} {event.effective_priority}\n'


def vs_fifo_line(virtual: str, up: bool) -> str:
    """``VS [10.0.0.1]:tcp:80 UP\\n`` (quorum gained or lost)."""
    return f"VS {keepalived_vs_name(virtual)} {'UP' if up else 'DOWN'}\n"


def rs_fifo_line(virtual: str, real: str, up: bool) -> str:
    """``RS [192.168.1.2]:tcp:80 [10.0.0.1]:tcp:80 DOWN\\n``."""
    return f"RS {keepalived_rs_name(virtual, real)} {keepalived_vs_name(virtual)} {'UP' if up else 'DOWN'}\n"


def fifo_line(event: EventBase, *, report_deleted: bool = True, rs_init_notifies: bool = False) -> str | None:
    """The FIFO line keepalived writes for ``event``, None when it writes none.

    Heartbeats (``changed`` false), trackers, INIT and pool changes other than
    quorum produce no line: keepalived has no line for them.  A real server's
    first verdict may bring two lines, its start (``rs_init_notifies``) then its
    transition, or none (``core/real_servers.py``).
    """
    match event:
        case InstanceState():
            state = notified_state(event.state, report_deleted=report_deleted)
            if state is None:
                return None
            return vrrp_fifo_line("INSTANCE", event.instance, state, event.effective_priority)
        case GroupState():
            gstate = notified_state(event.state)
            return None if gstate is None else vrrp_fifo_line("GROUP", event.group, gstate, 0)
        case InstanceEvent() if event.kind is not InstanceEventKind.RESUMED:  # keepalived has no line
            return instance_event_fifo_line(event)
        case RealServerHealth():
            states = notified_states(event, rs_init_notifies=rs_init_notifies)
            return "".join(rs_fifo_line(event.virtual, event.real, up) for up in states) or None
        case PoolEvent() if event.kind in (PoolEventKind.QUORUM_UP, PoolEventKind.QUORUM_DOWN):
            return vs_fifo_line(event.virtual, event.kind is PoolEventKind.QUORUM_UP)
    return None


def is_vrrp_event(event: EventBase) -> bool:
    """True for the events ``vrrp_notify_fifo`` carries (``lvs_notify_fifo`` carries the rest)."""
    return isinstance(event, InstanceState | GroupState | InstanceEvent)


# --------------------------------------------------------------------------- mail

_INSTANCE_MAIL: Final[Mapping[VrrpState, tuple[str, str]]] = {
    VrrpState.MASTER: ("Entering MASTER state", "=> VRRP Instance is now owning VRRP VIPs <="),
    VrrpState.BACKUP: ("Entering BACKUP state", "=> VRRP Instance is no longer owning VRRP VIPs <="),
    VrrpState.FAULT: ("Entering FAULT state", "=> VRRP Instance is no longer owning VRRP VIPs <="),
    VrrpState.STOP: ("Stopping", "=> VRRP Instance stopping <="),
    VrrpState.DELETED: ("Deleted", "=> VRRP Deleted at reload <="),
}
_GROUP_MAIL: Final[Mapping[VrrpState, tuple[str, str]]] = {
    VrrpState.MASTER: ("Entering MASTER state", "=> All VRRP group instances are now in MASTER state <="),
    VrrpState.BACKUP: ("Entering BACKUP state", "=> All VRRP group instances are now in BACKUP state <="),
    VrrpState.FAULT: ("Entering FAULT state", "=> All VRRP group instances are now in FAULT state <="),
    VrrpState.STOP: ("Stopping", "=> All VRRP group instances are now stopping <="),
}

_CHECK_NAMES: Final[Mapping[CheckerKind, str]] = {
    CheckerKind.TCP_CHECK: "TCP CHECK",
    CheckerKind.UDP_CHECK: "UDP CHECK",
    CheckerKind.PING_CHECK: "ICMP CHECK",
    CheckerKind.MISC_CHECK: "MISC CHECK",
}


def instance_subject(router_id: str, instance: str, state: VrrpState) -> str | None:
    """``[lab1] VRRP Instance VI_1 - Entering MASTER state`` (captured), None for INIT."""
    entry = _INSTANCE_MAIL.get(state)
    return None if entry is None else f"[{router_id}] VRRP Instance {instance} - {entry[0]}"


def instance_body(state: VrrpState) -> str | None:
    """``=> VRRP Instance is now owning VRRP VIPs <=`` and friends (captured but STOP)."""
    entry = _INSTANCE_MAIL.get(state)
    return None if entry is None else entry[1]


def group_subject(router_id: str, group: str, state: VrrpState) -> str | None:
    """``[lab1] VRRP Group G1 - Entering BACKUP state`` (captured); groups are never DELETED."""
    entry = _GROUP_MAIL.get(state)
    return None if entry is None else f"[{router_id}] VRRP Group {group} - {entry[0]}"


def group_body(state: VrrpState) -> str | None:
    """``=> All VRRP group instances are now in MASTER state <=`` (captured MASTER and BACKUP)."""
    entry = _GROUP_MAIL.get(state)
    return None if entry is None else entry[1]


def real_server_subject(router_id: str, virtual: str, real: str, up: bool) -> str:
    """``[lab1] Realserver [192.168.1.2]:tcp:80 of virtual server [10.0.0.1]:tcp:80 - UP``."""
    rs, vs = keepalived_rs_name(virtual, real), keepalived_vs_name(virtual)
    return f"[{router_id}] Realserver {rs} of virtual server {vs} - {'UP' if up else 'DOWN'}"


def virtual_server_subject(router_id: str, virtual: str, up: bool) -> str:
    """``[lab1] Virtualserver [10.0.0.1]:tcp:80 - UP``."""
    return f"[{router_id}] Virtualserver {keepalived_vs_name(virtual)} - {'UP' if up else 'DOWN'}"


def checker_body(checker: CheckerKind, up: bool, detail: str = "") -> str:
    """The body a real-server checker mails, per checker kind (keepalived 2.2.7's strings).

    HTTP_GET, SSL_GET and SMTP_CHECK say why they failed after a colon
    (``=> CHECK failed on service : HTTP request failed <=``); ``detail``
    replaces the default reason.  BFD_CHECK names the BFD instance (``detail``).
    """
    verdict = "succeed" if up else "failed"
    if checker in _CHECK_NAMES:
        return f"=> {_CHECK_NAMES[checker]} {verdict} on service <="
    if checker is CheckerKind.DNS_CHECK:
        return f"=> DNS_CHECK: {verdict} on service <="
    if checker is CheckerKind.BFD_CHECK:
        return f"=> BFD CHECK {detail} {verdict} on service <="
    if up:
        return "=> CHECK succeed on service <="
    default = "HTTP request failed" if checker in (CheckerKind.HTTP_GET, CheckerKind.SSL_GET) else "failed"
    return f"=> CHECK failed on service : {detail or default} <="


def quorum_body(gained: bool, quorum: int, hysteresis: int, weight_sum: int) -> str:
    """``=> Gained quorum 1+0=1 <= 2 <=`` / ``=> Lost quorum 2+0=2 <= 1 <=``.

    keepalived 2.2.7 has one body format for both, ``=> %s %u+%u=%ld <= %ld <=``
    (quorum, hysteresis, their sum, the weight sum); the lost case was not
    captured (needs IPVS), so the threshold there is the same sum.
    """
    word = "Gained quorum" if gained else "Lost quorum"
    return f"=> {word} {quorum}+{hysteresis}={quorum + hysteresis} <= {weight_sum} <="


class Mail(msgspec.Struct, frozen=True):
    """Subject and body of one alert."""

    subject: str
    body: str


def mail_for(event: EventBase, router_id: str, *, no_checker_emails: bool = False) -> Mail | None:
    """The alert keepalived mails for ``event``, None when it mails nothing for it.

    A real server's mail is its checker's: the subject has the server's state,
    the body what the checker found (``core/real_servers.py``).
    """
    match event:
        case InstanceState():
            subject, body = (
                instance_subject(router_id, event.instance, event.state),
                instance_body(event.state),
            )
        case GroupState():
            subject, body = group_subject(router_id, event.group, event.state), group_body(event.state)
        case RealServerHealth() if mailed(event, no_checker_emails=no_checker_emails):
            subject = real_server_subject(router_id, event.virtual, event.real, event.up)
            body = checker_body(event.checker, mailed_verdict(event), event.detail)
        case PoolEvent() if event.kind in (PoolEventKind.QUORUM_UP, PoolEventKind.QUORUM_DOWN):
            up = event.kind is PoolEventKind.QUORUM_UP
            subject = virtual_server_subject(router_id, event.virtual, up)
            body = quorum_body(up, event.quorum, event.hysteresis, event.weight_sum)
        case _:
            return None
    if subject is None or body is None:
        return None
    return Mail(subject, body)


_DAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def mail_date(ts_ns: int, *, utc: bool = False) -> str:
    """``Wed, 25 Nov 2026 18:12:26 +0000``: RFC 5322 in local time, English names whatever the locale."""
    seconds = ts_ns / 1e9
    tm = time.gmtime(seconds) if utc else time.localtime(seconds)
    offset = 0 if utc else tm.tm_gmtoff
    sign = "+" if offset >= 0 else "-"
    hh, mm = divmod(abs(offset) // 60, 60)
    return (
        f"{_DAYS[tm.tm_wday]}, {tm.tm_mday:02d} {_MONTHS[tm.tm_mon - 1]} {tm.tm_year} "
        f"{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d} {sign}{hh:02d}{mm:02d}"
    )


def mail_data(
    *,
    date: str,
    sender: str,
    recipients: Sequence[str],
    mail: Mail,
    extra_headers: Sequence[tuple[str, str]] = (),
) -> bytes:
    """The DATA keepalived sends, up to and excluding the final ``.`` line (captured byte for byte).

    Headers in keepalived's order (Date, From, Subject, X-Mailer, To), then
    ``extra_headers`` (lifeline adds Message-ID), a blank line, the body and one
    empty line: keepalived ends the message with ``body CRLF CRLF . CRLF``.
    """
    lines = [
        f"Date: {date}",
        f"From: {sender}",
        f"Subject: {mail.subject}",
        f"X-Mailer: {X_MAILER}",
        f"To: {', '.join(recipients)}",
        *(f"{name}: {value}" for name, value in extra_headers),
        "",
        mail.body,
        "",
        "",
    ]
    return "\r\n".join(lines).encode("utf-8")


def message_id(event: EventBase, domain: str) -> str:
    """``<lifeline.BOOT_ID.SEQ@domain>``: one id per event, so a re-sent alert is recognizable."""
    return f"<lifeline.{event.boot_id}.{event.seq}@{domain}>"


# --------------------------------------------------------------------------- script environment


def _env_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return ",".join(_env_value(v) for v in value)
    return str(value)


def event_env(event: Event, *, attempt: int = 1) -> dict[str, str]:
    """``LIFELINE_*`` variables for a script: every event field, ``LIFELINE_EVENT_ID`` and attempt.

    Why: keepalived's argv says only name, state and priority.  With the whole
    event (and ``LIFELINE_SEQ``/``LIFELINE_BOOT_ID``) a script can tell a
    re-delivery (same id, higher ``LIFELINE_ATTEMPT``) from a new transition.
    Lists are comma-joined, None is empty, booleans are ``true``/``false``.
    """
    env = {"LIFELINE_TYPE": str(type(event).__struct_config__.tag)}
    env.update(
        {f"LIFELINE_{field.upper()}": _env_value(getattr(event, field)) for field in event.__struct_fields__}
    )
    env["LIFELINE_EVENT_ID"] = msg_id(event)
    env["LIFELINE_ATTEMPT"] = str(attempt)
    return env
