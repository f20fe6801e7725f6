"""The bus contract: every event, subject and key the lifeline services exchange over NATS.

This module is the *only* place where subjects, KV keys and payload layouts are
defined.  Services import the builders from here instead of formatting subjects
by hand, so a change to the contract is one diff (and ``docs/bus.md`` is checked
against it by ``tests/unit/test_bus_doc.py``).

Payloads are msgspec Structs encoded as JSON so any NATS client in any language
can read them.  Every event carries the same envelope (``type``, ``v``, ``node``,
``ts``, ``seq``, ``boot_id``); the ``type`` field is a msgspec tag, so one
decoder turns any payload back into the right Struct.

Versioning: ``CONTRACT_VERSION`` is written into every payload as ``v``.  Within
one version changes are additive only (new fields with defaults, new enum
values); consumers must ignore fields they do not know.  Renaming, removing or
re-typing a field bumps the version (see docs/bus.md).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Final, TypeAlias, TypeVar, assert_never, overload

import msgspec

CONTRACT_VERSION: Final = 1
"""Version of this contract; written into every payload as ``v``."""

PREFIX: Final = "lifeline"
"""First token of every lifeline subject."""

EVENT_STREAM: Final = "LIFELINE_EVENTS"
"""JetStream stream holding the human-relevant events (vrrp, real-server transitions, lvs)."""

EVENT_KINDS: Final = ("vrrp", "health", "lvs", "service")
"""Second subject token of every event the stream keeps (``lifeline.<node>.<kind>.>``)."""

EVENT_STREAM_SUBJECTS: Final = tuple(f"{PREFIX}.*.{kind}.>" for kind in EVENT_KINDS)
"""Subjects captured by ``EVENT_STREAM`` when no node is named (every node's events)."""


def event_stream_subjects(node: str | None = None) -> tuple[str, ...]:
    """The stream subjects of ``node``'s events (all nodes' when None).

    Services name their node: a node's stream then keeps its own events only,
    even when its nats-server is a leaf of a fleet hub (where a wildcard would
    also pull in every other node's events, and its notifier would act on them).
    """
    if node is None:
        return EVENT_STREAM_SUBJECTS
    token = encode_token(node)
    return tuple(f"{PREFIX}.{token}.{kind}.>" for kind in EVENT_KINDS)


DEAD_LETTER_STREAM: Final = "LIFELINE_NOTIFY_DEAD"
"""JetStream stream (created by the notifier) keeping every ``DeadLetter`` for 30 days."""

DEAD_LETTER_SUBJECTS: Final = (f"{PREFIX}.*.notify.dead.>",)
"""Subjects captured by ``DEAD_LETTER_STREAM``."""

LEASE_BUCKET: Final = "lifeline_notifier_leases"
"""JetStream KV bucket of the notifier's sink leases (``services/notifier/delivery/lease.py``)."""

NOTIFIER_CONSUMER_PREFIX: Final = "notifier_"
"""Every notifier sink reads the event stream through its durable consumer ``notifier_<sink>``."""

STATE_BUCKET: Final = "lifeline_state"
"""JetStream KV bucket holding the latest state per instance, group, tracker, real server and pool."""

CONTROL: Final = "ctl"
"""Third subject token of every micro control endpoint (never an event kind)."""

MSG_ID_HEADER: Final = "Nats-Msg-Id"
"""JetStream de-duplication header; its value is ``f"{boot_id}:{seq}"``."""


# --------------------------------------------------------------------------- tokens

_SAFE_CHARS: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_ESCAPE: Final = "="
_TOKEN_RE: Final = re.compile(r"^(?:[A-Za-z0-9_-]|=[0-9A-F]{2})+$")


def encode_token(name: str) -> str:
    """Turn any non-empty name into one NATS subject token that is also a valid KV key token.

    Why not just reject odd names: keepalived allows virtual servers like
    ``172.16.0.100 80`` and instance names with dots, and operators must still
    be able to find them on the bus.  ASCII letters, digits, ``-`` and ``_`` pass
    through unchanged (so ``VI_1`` stays ``VI_1``); every other character is
    written as ``=XX`` per UTF-8 byte, upper-case hex (quoted-printable style).
    ``=`` was chosen as the escape because it is legal in both subjects and KV
    keys, unlike ``%``.  ``172.16.0.100:80/tcp`` becomes
    ``172=2E16=2E0=2E100=3A80=2Ftcp``.  The encoding is canonical, so
    ``decode_token(encode_token(n)) == n`` and ``encode_token(decode_token(t)) == t``.
    """
    if not name:
        raise ValueError("a subject token cannot be empty")
    out: list[str] = []
    for ch in name:
        if ch in _SAFE_CHARS:
            out.append(ch)
        else:
            out.extend(f"{_ESCAPE}{b:02X}" for b in ch.encode("utf-8"))
    return "".join(out)


def decode_token(token: str) -> str:
    """Reverse ``encode_token``; raises ``ValueError`` on anything it would not have produced."""
    if not is_token(token):
        raise ValueError(f"not a lifeline token: {token!r}")
    raw = bytearray()
    i = 0
    while i < len(token):
        if token[i] == _ESCAPE:
            raw.append(int(token[i + 1 : i + 3], 16))
            i += 3
        else:
            raw.append(ord(token[i]))
            i += 1
    text = raw.decode("utf-8")  # UnicodeDecodeError is a ValueError
    if encode_token(text) != token:
        raise ValueError(f"non-canonical token: {token!r}")
    return text


def is_token(token: str) -> bool:
    """True when ``token`` uses only the encoder's alphabet (a valid single NATS token)."""
    return bool(_TOKEN_RE.match(token))


# --------------------------------------------------------------------------- keys for LVS objects


def virtual_server_key(address: str, port: int, protocol: str) -> str:
    """Canonical name of an IP virtual server: ``172.16.0.100:80/tcp``, ``[2001:db8::1]:443/tcp``."""
    host = f"[{address}]" if ":" in address else address
    return f"{host}:{port}/{protocol.lower()}"


def fwmark_virtual_server_key(mark: int, family: str = "inet") -> str:
    """Canonical name of a ``virtual_server fwmark N`` (family matters: v4 and v6 may share a mark)."""
    return f"fwmark:{mark}" if family == "inet" else f"fwmark:{mark}/{family}"


def group_virtual_server_key(group: str) -> str:
    """Canonical name of a ``virtual_server group NAME``."""
    return f"group:{group}"


def real_server_key(address: str, port: int) -> str:
    """Canonical name of a real server inside its virtual server: ``192.168.0.10:80``, ``[::1]:80``."""
    host = f"[{address}]" if ":" in address else address
    return f"{host}:{port}"


# --------------------------------------------------------------------------- subjects


class Service(StrEnum):
    """Service names used in micro endpoint subjects and NATS micro service names."""

    VRRP = "vrrp"
    CHECKER = "checker"
    LVS = "lvs"
    NOTIFIER = "notifier"
    HTTP = "http"
    BFD = "bfd"


def _t(name: str) -> str:
    return encode_token(name)


def instance_subject(node: str, instance: str) -> str:
    """``lifeline.<node>.vrrp.state.<instance>``: every VRRP instance transition."""
    return f"{PREFIX}.{_t(node)}.vrrp.state.{_t(instance)}"


def group_subject(node: str, group: str) -> str:
    """``lifeline.<node>.vrrp.group.<group>``: every sync group transition."""
    return f"{PREFIX}.{_t(node)}.vrrp.group.{_t(group)}"


def control_subject(node: str, instance: str) -> str:
    """``lifeline.<node>.vrrp.control.<instance>``: every runtime control change (stream + KV)."""
    return f"{PREFIX}.{_t(node)}.vrrp.control.{_t(instance)}"


def split_brain_subject(node: str, instance: str) -> str:
    """``lifeline.<node>.vrrp.split_brain.<instance>``: another node also claims MASTER (stream + KV)."""
    return f"{PREFIX}.{_t(node)}.vrrp.split_brain.{_t(instance)}"


def instance_event_subject(node: str, instance: str) -> str:
    """``lifeline.<node>.vrrp.event.<instance>``: priority changes, lower-priority adverts heard as MASTER."""
    return f"{PREFIX}.{_t(node)}.vrrp.event.{_t(instance)}"


def service_reload_subject(node: str, service: str) -> str:
    """``lifeline.<node>.service.reload.<service>``: a service applied or refused a reload (stream + KV)."""
    return f"{PREFIX}.{_t(node)}.service.reload.{_t(service)}"


def outbox_overflow_subject(node: str, service: str) -> str:
    """``lifeline.<node>.service.overflow.<service>``: a service's outbox dropped events (stream + KV)."""
    return f"{PREFIX}.{_t(node)}.service.overflow.{_t(service)}"


def tracker_subject(node: str, tracker: str, kind: str | None = None) -> str:
    """``lifeline.<node>.track.<tracker>``: tracker results (changes and heartbeats).

    A BFD session's is ``lifeline.<node>.track.bfd.<tracker>`` (``kind`` ``bfd``): a
    subject space of its own, so the bfd service's NATS user may publish session
    states and nothing else (a stolen bfd credential cannot fail a ``vrrp_script``).
    """
    if kind == TrackerKind.BFD:
        return f"{PREFIX}.{_t(node)}.track.bfd.{_t(tracker)}"
    return f"{PREFIX}.{_t(node)}.track.{_t(tracker)}"


def check_subject(node: str, virtual: str, real: str) -> str:
    """``lifeline.<node>.check.<virtual>.<real>``: real-server health (changes and heartbeats, core NATS)."""
    return f"{PREFIX}.{_t(node)}.check.{_t(virtual)}.{_t(real)}"


def health_subject(node: str, virtual: str, real: str) -> str:
    """``lifeline.<node>.health.<virtual>.<real>``: real-server up/down transitions, in the event stream.

    The checker publishes every transition (``RealServerHealth`` with
    ``changed`` true) twice: on ``check_subject`` like every result (core NATS,
    for lvs and the KV baseline) and here, durably, for consumers that must not
    miss one (the notifier's ``notify_up``/``notify_down``, mail, FIFO lines).
    Heartbeats never come here, so the stream holds only what happened.
    """
    return f"{PREFIX}.{_t(node)}.health.{_t(virtual)}.{_t(real)}"


def pool_subject(node: str, virtual: str) -> str:
    """``lifeline.<node>.lvs.<virtual>``: pool changes of one virtual server."""
    return f"{PREFIX}.{_t(node)}.lvs.{_t(virtual)}"


def dead_letter_subject(node: str, sink: str) -> str:
    """``lifeline.<node>.notify.dead.<sink>``: a ``DeadLetter`` (a sink gave up on an event)."""
    return f"{PREFIX}.{_t(node)}.notify.dead.{_t(sink)}"


def service_subject(node: str, service: str, endpoint: str) -> str:
    """``lifeline.<node>.ctl.<service>.<endpoint>``: node-unique micro endpoints (``status``, ``reload``).

    The node is in the subject because nats-py puts every micro endpoint in
    queue group ``q``: a subject shared by all nodes would make one random node
    answer.  Only admin users may publish here (``shared.nats_users``); a
    service subscribes to its own endpoints and answers through
    ``allow_responses``.  The ``ctl`` token keeps control traffic out of the event namespace:
    ``lifeline.<node>.vrrp.status`` would fall inside the event stream's
    ``lifeline.*.vrrp.>`` filter, so JetStream would store every status request
    and answer it with a PubAck before the service could.
    """
    return f"{PREFIX}.{_t(node)}.{CONTROL}.{_t(service)}.{_t(endpoint)}"


def status_subject(node: str, service: str) -> str:
    """The ``status`` endpoint of ``service`` on ``node``."""
    return service_subject(node, service, "status")


def reload_subject(node: str, service: str) -> str:
    """The ``reload`` endpoint of ``service`` on ``node``."""
    return service_subject(node, service, "reload")


REPLICAS: Final = "replicas"
"""Third subject token of a service's private replica traffic (never an event kind, never ``ctl``)."""

REPLICA_STREAM: Final = "LIFELINE_REPLICAS"
"""JetStream stream (memory, provisioned by the admin) that hears replica traffic and republishes it."""

ReplicaKind: TypeAlias = str
"""What a replica says to the others: ``beat`` (membership), ``reload`` (a call), ``reloaded`` (an answer)."""

REPLICA_KINDS: Final = ("beat", "reload", "reloaded")


def replica_say_subject(node: str, service: str, kind: ReplicaKind) -> str:
    """``lifeline.<node>.replicas.<service>.say.<kind>``: where a replica of ``service`` publishes.

    Internal to a service that runs replicas (checker, notifier;
    ``shared.bus.replicas``, ``shared.bus.replica_reload``); only that service's
    NATS user may publish here, and nobody subscribes: ``REPLICA_STREAM``
    stores it and republishes it on ``replica_heard_subject``.  Why not one
    subject that every replica publishes and subscribes to: a user that may
    both publish and subscribe to one subject receives its own message with the
    reply subject it chose, and ``allow_responses`` then lets it publish once
    on that reply subject, whatever it is (a control endpoint); a republished
    message carries no reply subject (docs/security.md, "The bus: who may do what").
    """
    if kind not in REPLICA_KINDS:
        raise ValueError(f"not a replica message kind: {kind!r}")
    return f"{PREFIX}.{_t(node)}.{REPLICAS}.{_t(service)}.say.{kind}"


def replica_heard_subject(node: str, service: str, kind: ReplicaKind) -> str:
    """``lifeline.<node>.replicas.<service>.heard.<kind>``: the same message, republished by the stream.

    What the replicas subscribe to.  A genuine one carries the stream's
    headers (``Nats-Stream: LIFELINE_REPLICAS``, ``Nats-Subject`` the say
    subject), which no client can set (``shared.bus.trust.republished``).
    """
    if kind not in REPLICA_KINDS:
        raise ValueError(f"not a replica message kind: {kind!r}")
    return f"{PREFIX}.{_t(node)}.{REPLICAS}.{_t(service)}.heard.{kind}"


def replica_stream_subjects(node: str | None = None) -> tuple[str, ...]:
    """The subjects ``REPLICA_STREAM`` captures: ``node``'s say subjects (every node's when None)."""
    token = "*" if node is None else _t(node)
    return (f"{PREFIX}.{token}.{REPLICAS}.*.say.*",)


def kv_key_for_subject(subject: str) -> str:
    """KV key of the latest state behind ``subject``: the subject without ``lifeline.``.

    Our token alphabet is a subset of the KV key alphabet, so keys stay readable
    and a KV watch on ``<node>.vrrp.state.*`` works like a subject filter.
    """
    prefix = f"{PREFIX}."
    if not subject.startswith(prefix):
        raise ValueError(f"not a lifeline subject: {subject!r}")
    return subject[len(prefix) :]


# --------------------------------------------------------------------------- enumerations


class VrrpState(StrEnum):
    """keepalived's instance and group states, spelled as its notify scripts spell them."""

    INIT = "INIT"
    BACKUP = "BACKUP"
    MASTER = "MASTER"
    FAULT = "FAULT"
    STOP = "STOP"
    DELETED = "DELETED"


class Family(StrEnum):
    """Address family of an instance (keepalived's ``inet``/``inet6``)."""

    INET = "inet"
    INET6 = "inet6"


class TransitionReason(StrEnum):
    """Why an instance or group changed state (the operator's first question)."""

    STARTUP = "startup"
    MASTER_DOWN_TIMER = "master_down_timer"
    HIGHER_PRIORITY_SEEN = "higher_priority_seen"
    PRIORITY_ZERO_SEEN = "priority_zero_seen"
    PREEMPT = "preempt"
    ADDRESS_OWNER = "address_owner"
    TRACKER_FAILED = "tracker_failed"
    TRACKER_RECOVERED = "tracker_recovered"
    INTERFACE_DOWN = "interface_down"
    INTERFACE_UP = "interface_up"
    SYNC_GROUP = "sync_group"
    RELOAD = "reload"
    SHUTDOWN = "shutdown"
    REMOVED = "removed"
    ADMIN = "admin"
    OTHER = "other"


class InstanceEventKind(StrEnum):
    """What an ``InstanceEvent`` reports (keepalived's "event notifies", which are not transitions)."""

    PRIORITY_CHANGED = "priority_changed"
    MASTER_RX_LOWER_PRI = "master_rx_lower_pri"
    RESUMED = "resumed"
    """A restarted vrrp process took its instance's mastership back without a transition (lifeline's own)."""


class TrackerKind(StrEnum):
    """What a tracker watches (``vrrp_script``, ``vrrp_track_process``, ``vrrp_track_file``, link)."""

    SCRIPT = "script"
    PROCESS = "process"
    FILE = "file"
    INTERFACE = "interface"
    BFD = "bfd"


class CheckerKind(StrEnum):
    """Real-server checker keyword, exactly as written in keepalived.conf."""

    TCP_CHECK = "TCP_CHECK"
    HTTP_GET = "HTTP_GET"
    SSL_GET = "SSL_GET"
    SMTP_CHECK = "SMTP_CHECK"
    DNS_CHECK = "DNS_CHECK"
    UDP_CHECK = "UDP_CHECK"
    PING_CHECK = "PING_CHECK"
    MISC_CHECK = "MISC_CHECK"
    FILE_CHECK = "FILE_CHECK"
    BFD_CHECK = "BFD_CHECK"


class PoolEventKind(StrEnum):
    """What happened to a virtual server's pool."""

    RS_ADDED = "rs_added"
    RS_REMOVED = "rs_removed"
    WEIGHT_CHANGED = "weight_changed"
    QUORUM_UP = "quorum_up"
    QUORUM_DOWN = "quorum_down"
    SORRY_IN = "sorry_in"
    SORRY_OUT = "sorry_out"


OMEGA_DETAIL = "omega"
"""``PoolEvent.detail`` of what lvs announces at stop for ``omega`` virtual servers."""


def is_omega_removal(event: PoolEvent) -> bool:
    """A real server leaving at shutdown under ``omega``: keepalived runs its ``notify_down`` then."""
    return event.kind is PoolEventKind.RS_REMOVED and event.detail == OMEGA_DETAIL and event.real is not None


# --------------------------------------------------------------------------- events


class EventBase(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Envelope common to every event.

    The publisher (``shared.bus.Publisher``) stamps ``node``, ``ts``, ``seq`` and
    ``boot_id``; producers leave them at their defaults.  ``(boot_id, seq)`` is
    unique and increasing per publisher process, so a consumer detects both
    re-sends (same pair twice) and losses (a gap in ``seq``).
    """

    v: int = CONTRACT_VERSION
    node: str = ""
    ts: int = 0
    seq: int = 0
    boot_id: str = ""


class InstanceState(EventBase, frozen=True, kw_only=True, tag="instance_state"):
    """A VRRP instance changed state (published by vrrp on every transition)."""

    instance: str
    vrid: int
    interface: str
    family: Family = Family.INET
    version: int = 2
    state: VrrpState
    previous: VrrpState | None = None
    base_priority: int
    effective_priority: int
    reason: TransitionReason = TransitionReason.OTHER
    detail: str = ""
    master_address: str | None = None
    vips: tuple[str, ...] = ()
    group: str | None = None


class GroupState(EventBase, frozen=True, kw_only=True, tag="group_state"):
    """A ``vrrp_sync_group`` changed state (published by vrrp)."""

    group: str
    state: VrrpState
    previous: VrrpState | None = None
    members: tuple[str, ...] = ()
    reason: TransitionReason = TransitionReason.OTHER
    detail: str = ""


class InstanceControl(EventBase, frozen=True, kw_only=True, tag="instance_control"):
    """An operator changed a running instance over the bus (``control_subject``; ``requested_by`` asked)."""

    instance: str
    action: str
    requested_by: str
    priority: int | None = None
    base_priority: int
    maintenance_until: int | None = None
    detail: str = ""
    nats_user: str = ""
    """The NATS user whose private inbox (``_INBOX_<user>.``) the request named for its answer.

    Only that user may subscribe there, and only admins may publish on control
    subjects, so it is who asked as the server knows it; ``requested_by`` is
    who they said they were.  Empty when the request used the shared
    ``_INBOX.`` prefix (a client not set up with a private inbox).
    """


class SplitBrain(EventBase, frozen=True, kw_only=True, tag="split_brain"):
    """A MASTER heard another node's advert for its VRID (``split_brain_subject``)."""

    instance: str
    vrid: int
    interface: str
    peer: str
    peer_priority: int
    own_priority: int
    count: int
    suppressed: int = 0


class InstanceEvent(EventBase, frozen=True, kw_only=True, tag="instance_event"):
    """Something keepalived notifies about an instance that is not a transition.

    ``priority_changed``: the effective priority moved (published only when
    ``notify_priority_changes`` is on for the instance: instance, else its
    sync group, else ``vrrp_notify_priority_changes``); ``master_rx_lower_pri``:
    as MASTER it heard an advert from a lower-priority router (always);
    ``resumed``: a restarted process resumed its MASTER state without a gap
    (no keepalived counterpart: no FIFO line, no script).
    """

    instance: str
    vrid: int
    interface: str
    kind: InstanceEventKind
    state: VrrpState
    effective_priority: int
    previous_priority: int | None = None
    peer: str | None = None
    peer_priority: int | None = None
    group: str | None = None


Notice: TypeAlias = InstanceControl | SplitBrain | InstanceEvent
"""vrrp events besides transitions (control changes, split brain, instance events): in the stream too."""


class ControlReply(msgspec.Struct, kw_only=True):
    """Answer of the vrrp control endpoints (``set_priority``, ``maintenance``, ``clear``)."""

    ok: bool
    error: str = ""
    instance: str = ""
    base_priority: int | None = None
    maintenance_until: int | None = None


class ReloadTrigger(StrEnum):
    """What asked a service to re-read its configuration."""

    SIGNAL = "signal"
    REQUEST = "request"


class ServiceReload(EventBase, frozen=True, kw_only=True, tag="service_reload"):
    """A service re-read keepalived.conf (``service_reload_subject``): applied, or refused with every error.

    A refused reload leaves the running configuration in force; ``errors``
    are the diagnostics as ``file:line: error: message``, so whoever watches
    the stream learns that a node runs an older configuration than its file.
    """

    service: str
    ok: bool
    trigger: ReloadTrigger
    config: str
    detail: str = ""
    errors: tuple[str, ...] = ()


class OutboxOverflow(EventBase, frozen=True, kw_only=True, tag="outbox_overflow"):
    """A service's outbox was full while NATS could not take its events: the oldest were dropped.

    Published once the outbox has drained again (``outbox_overflow_subject``),
    so it reaches the stream right after the events that were kept; the
    dropped ones also leave a gap in ``seq``.
    """

    service: str
    dropped: int
    bound: int
    detail: str = ""


class TrackerResult(EventBase, frozen=True, kw_only=True, tag="tracker_result"):
    """Result of a tracker (published by checker on change and as a heartbeat; by bfd for its sessions)."""

    tracker: str
    kind: TrackerKind
    ok: bool
    weight: int = 0
    contribution: int = 0
    faults: bool = False
    value: int | None = None
    exit_code: int | None = None
    changed: bool = True
    detail: str = ""


class RealServerHealth(EventBase, frozen=True, kw_only=True, tag="real_server_health"):
    """Health of one real server of one virtual server (published by checker)."""

    virtual: str
    real: str
    up: bool
    checker: CheckerKind
    detail: str = ""
    latency_ms: float | None = None
    weight: int | None = None
    consecutive_failures: int = 0
    changed: bool = True
    initial_up: bool | None = None
    """Set on the first transition a checker publishes for a pair it started without a baseline.

    The state keepalived starts the real server in (up, unless ``alpha``):
    ``up == initial_up`` means the first verdict confirmed it (keepalived
    notifies nothing then, unless ``rs_init_notifies``); otherwise it is a
    transition from that state.  None on every later event and after a
    restart that read a baseline.
    """
    checker_up: bool | None = None
    """Set when one checker of the real server went up (true) or down (false).

    ``checker`` and ``detail`` are then that checker's.  keepalived mails each
    checker's transition, even one that leaves the real server's state as it
    was (``changed`` false), unless ``no_checker_emails``.
    """


class RealServerTransition(RealServerHealth, frozen=True, kw_only=True, tag="real_server_health"):
    """Publishing side only: the durable copy of a ``RealServerHealth`` transition.

    Same fields and same wire payload (``type`` is ``real_server_health``, so
    every decoder returns a plain ``RealServerHealth``); the class only tells
    ``subject_for`` and ``is_durable`` to send it to ``health_subject`` through
    the event stream.  Build it with ``durable_transition``.
    """


class PoolEvent(EventBase, frozen=True, kw_only=True, tag="pool_event"):
    """A change to a virtual server's pool in IPVS (published by lvs)."""

    virtual: str
    kind: PoolEventKind
    real: str | None = None
    weight: int | None = None
    weight_sum: int = 0
    quorum: int = 1
    hysteresis: int = 0
    quorum_up: bool = True
    sorry_active: bool = False
    detail: str = ""


Event: TypeAlias = (
    InstanceState
    | GroupState
    | InstanceControl
    | SplitBrain
    | InstanceEvent
    | TrackerResult
    | RealServerHealth
    | PoolEvent
    | ServiceReload
    | OutboxOverflow
)
"""Any event on the bus (a msgspec tagged union on ``type``)."""

EVENT_TYPES: Final[tuple[type[EventBase], ...]] = (
    InstanceState,
    GroupState,
    InstanceControl,
    SplitBrain,
    InstanceEvent,
    TrackerResult,
    RealServerHealth,
    PoolEvent,
    ServiceReload,
    OutboxOverflow,
)

DURABLE_TYPES: Final[tuple[type[EventBase], ...]] = (
    InstanceState,
    GroupState,
    InstanceControl,
    SplitBrain,
    InstanceEvent,
    RealServerTransition,
    PoolEvent,
    ServiceReload,
    OutboxOverflow,
)
"""Events whose subjects the event stream captures (published with a JetStream ack)."""


def durable_transition(event: RealServerHealth) -> RealServerTransition:
    """The copy of a transition that goes to ``health_subject`` (``changed``, or ``checker_up`` set).

    The envelope is reset (the publisher stamps its own ``seq``) except ``ts``,
    so both copies carry the time of the observation when the caller set it.
    """
    if not event.changed and event.checker_up is None:
        raise ValueError(
            "only transitions (changed, or checker_up) are durable; heartbeats stay on check subjects"
        )
    fields = {f: getattr(event, f) for f in RealServerHealth.__struct_fields__}
    fields.update(node="", seq=0, boot_id="")
    return RealServerTransition(**fields)


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True, tag="delivery_failed", tag_field="type"):
    """A notifier sink gave up on an event: which sink, what, why (``dead_letter_subject``).

    Published by the notifier (not through ``Publisher``: no ``seq``) into
    ``DEAD_LETTER_STREAM`` with ``Nats-Msg-Id: <sink>:<event_id>``; the event
    was acknowledged for that sink only after this was stored, so the dead
    letter *is* the failure event.  ``event`` is the original payload
    unchanged; ``stream``/``stream_seq`` let an operator re-drive it once the
    cause is fixed.
    """

    v: int = CONTRACT_VERSION
    node: str
    ts: int
    sink: str
    reason: str
    retryable: bool
    attempts: int
    subject: str
    stream: str
    stream_seq: int
    event_id: str
    event: Event


# --------------------------------------------------------------------------- micro replies


class BusCounters(msgspec.Struct, kw_only=True):
    """Publisher counters, included in every ``status`` reply.

    ``published`` events acknowledged by the server; ``queued`` events waiting
    in the outbox now; ``dropped`` events discarded by outbox overflow (oldest
    first); ``resent`` publish attempts repeated after a failure or timeout;
    ``rejected`` events the server refused for good (logged, not retried);
    ``stored`` events in the durable outbox file waiting for the stream's
    acknowledgement (they survive a restart); ``failing`` true while publishing
    fails (NATS down, JetStream refusing writes: store full, disabled);
    ``errors`` failed publish attempts since start; ``last_error`` the latest.
    """

    published: int = 0
    queued: int = 0
    dropped: int = 0
    resent: int = 0
    rejected: int = 0
    stored: int = 0
    failing: bool = False
    errors: int = 0
    last_error: str = ""


class ServiceStatus(msgspec.Struct, kw_only=True):
    """Reply of ``lifeline.<node>.<service>.status``: identity, bus counters, service detail."""

    v: int = CONTRACT_VERSION
    node: str
    service: str
    boot_id: str
    bus: BusCounters | None = None
    detail: dict[str, object] = msgspec.field(default_factory=dict)


class ReloadReply(msgspec.Struct, kw_only=True):
    """Reply of ``lifeline.<node>.<service>.reload``: applied or refused as a whole, with why."""

    v: int = CONTRACT_VERSION
    ok: bool
    errors: list[str] = msgspec.field(default_factory=list)
    detail: str = ""


# --------------------------------------------------------------------------- codec

_ENCODER: Final = msgspec.json.Encoder()
_DECODER: Final = msgspec.json.Decoder(Event)

E = TypeVar("E", bound=EventBase)


def encode(event: EventBase | DeadLetter) -> bytes:
    """JSON bytes of an event (or of a status/reload reply)."""
    return _ENCODER.encode(event)


def encode_reply(reply: msgspec.Struct) -> bytes:
    """JSON bytes of a micro reply Struct."""
    return _ENCODER.encode(reply)


@overload
def decode(data: bytes | str, expected: None = None) -> Event: ...
@overload
def decode(data: bytes | str, expected: type[E]) -> E: ...


def decode(data: bytes | str, expected: type[EventBase] | None = None) -> EventBase:
    """Decode any event payload; with ``expected`` also insist on that type."""
    event: EventBase = _DECODER.decode(data)
    if expected is not None and not isinstance(event, expected):
        raise msgspec.ValidationError(f"expected {expected.__name__}, got {type(event).__name__}")
    return event


def subject_for(event: Event) -> str:
    """The subject an event is published on (needs a stamped ``node``)."""
    node = event.node
    match event:
        case InstanceState():
            return instance_subject(node, event.instance)
        case GroupState():
            return group_subject(node, event.group)
        case InstanceControl():
            return control_subject(node, event.instance)
        case SplitBrain():
            return split_brain_subject(node, event.instance)
        case InstanceEvent():
            return instance_event_subject(node, event.instance)
        case TrackerResult():
            return tracker_subject(node, event.tracker, event.kind)
        case RealServerTransition():
            return health_subject(node, event.virtual, event.real)
        case RealServerHealth():
            return check_subject(node, event.virtual, event.real)
        case PoolEvent():
            return pool_subject(node, event.virtual)
        case ServiceReload():
            return service_reload_subject(node, event.service)
        case OutboxOverflow():
            return outbox_overflow_subject(node, event.service)
    assert_never(event)


def is_durable(event: EventBase) -> bool:
    """True when the event stream captures this event's subject (JetStream-acked publish)."""
    return isinstance(event, DURABLE_TYPES)


def msg_id(event: EventBase) -> str:
    """Value of the ``Nats-Msg-Id`` header: ``boot_id:seq``."""
    return f"{event.boot_id}:{event.seq}"


class SubjectInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A lifeline subject taken apart, names decoded."""

    node: str
    kind: str
    names: tuple[str, ...]


_KINDS: Final[dict[tuple[str, ...], tuple[type[EventBase], int]]] = {
    ("vrrp", "state"): (InstanceState, 1),
    ("vrrp", "group"): (GroupState, 1),
    ("vrrp", "control"): (InstanceControl, 1),
    ("vrrp", "split_brain"): (SplitBrain, 1),
    ("vrrp", "event"): (InstanceEvent, 1),
    ("track",): (TrackerResult, 1),
    ("check",): (RealServerHealth, 2),
    ("health",): (RealServerHealth, 2),
    ("lvs",): (PoolEvent, 1),
    ("service", "reload"): (ServiceReload, 1),
    ("service", "overflow"): (OutboxOverflow, 1),
}


def parse_subject(subject: str) -> SubjectInfo:
    """Take an event subject apart: ``lifeline.n1.check.a.b`` → node n1, kind check, names (a, b)."""
    parts = subject.split(".")
    if len(parts) < 4 or parts[0] != PREFIX:
        raise ValueError(f"not a lifeline event subject: {subject!r}")
    node, rest = decode_token(parts[1]), parts[2:]
    for kind_tokens, (_cls, nnames) in _KINDS.items():
        k = len(kind_tokens)
        if tuple(rest[:k]) == kind_tokens and len(rest) == k + nnames:
            names = tuple(decode_token(t) for t in rest[k:])
            return SubjectInfo(node=node, kind=".".join(kind_tokens), names=names)
    raise ValueError(f"not a lifeline event subject: {subject!r}")


def decode_dead_letter(data: bytes | str) -> DeadLetter:
    """Read a ``DeadLetter`` back (operators' tools, tests)."""
    return msgspec.json.decode(data, type=DeadLetter)


def decode_for_subject(subject: str, data: bytes | str) -> Event:
    """Decode a payload and check it is the type its subject promises (guards against misrouting)."""
    info = parse_subject(subject)
    cls = next(c for kt, (c, _n) in _KINDS.items() if ".".join(kt) == info.kind)
    event = decode(data)
    if not isinstance(event, cls):
        raise msgspec.ValidationError(f"{subject} carries {cls.__name__}, got {type(event).__name__}")
    return event
