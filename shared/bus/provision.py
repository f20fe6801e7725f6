"""Provisioning: the admin creates (and upgrades) every stream, bucket and consumer before the services start.

Why the admin and not the services: a user that may create or update a
stream may give it a ``republish`` onto a control subject, seal it or purge
it, and one that may create a consumer may make it push onto any subject;
the server delivers those messages although the user may not publish there.
So the services hold no JetStream administration right at all
(docs/security.md, "The bus: who may do what"); they only *use* what this
module made, and when something is missing they say so and wait
(``NotProvisioned``), never create it.

This module is the one place the configurations live:

- ``LIFELINE_EVENTS`` (``event_stream_config``): the node's event subjects,
  merged with those already there (nodes sharing a server each add theirs);
- the state bucket ``lifeline_state`` (``state_bucket_config``);
- the notifier's dead letters ``LIFELINE_NOTIFY_DEAD`` and its lease bucket;
- ``LIFELINE_REPLICAS`` (``replica_stream_config``): hears replica traffic
  and republishes it (``shared.events.replica_say_subject``);
- the notifier's durable consumers ``notifier_<sink>``, whose names and
  filters come from keepalived.conf and lifeline.toml alone
  (``services.notifier.consumers``), and the deletion of the node's
  ``notifier_*`` consumers no sink asks for any more.

``provision`` is idempotent: run at every start and before every reload
(``lifeline up``, compose's ``provision`` service, ``lifeline-provision.service``),
it changes only what differs.  The command is ``lifeline bus provision``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    KeyValueConfig,
    RePublish,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BucketNotFoundError, NotFoundError
from nats.js.kv import KeyValue

from shared.events import (
    DEAD_LETTER_STREAM,
    DEAD_LETTER_SUBJECTS,
    EVENT_STREAM,
    LEASE_BUCKET,
    NOTIFIER_CONSUMER_PREFIX,
    PREFIX,
    REPLICA_STREAM,
    REPLICAS,
    STATE_BUCKET,
    encode_token,
    event_stream_subjects,
    replica_stream_subjects,
)

log = logging.getLogger("lifeline.bus.provision")

DAY = 24 * 3600.0
LEASE_TTL = 6.0
"""Default lease time: a dead notifier's sinks are taken over within it."""
PROVISION_HINT = "run `lifeline bus provision` as admin (docs/operations.md)"


class NotProvisioned(Exception):
    """A stream, bucket or consumer a service uses does not exist: an admin must provision it."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} does not exist: {PROVISION_HINT}")
        self.what = what


# --------------------------------------------------------------------------- configurations


def event_stream_config(
    node: str | None = None,
    *,
    max_age: float = 14 * DAY,
    max_bytes: int = 256 * 1024 * 1024,
    duplicate_window: float = 600.0,
    replicas: int = 1,
) -> StreamConfig:
    """The event stream: file storage, limits retention, oldest discarded first.

    ``duplicate_window`` (10 min) bounds how long a re-sent ``Nats-Msg-Id`` is
    recognised; the publisher also checks the stream's last message on the
    subject before re-sending after an uncertain failure, so an outage longer
    than the window does not duplicate the event that was in flight.
    Direct get is on: that check and readers use it, with no consumer.
    """
    return StreamConfig(
        name=EVENT_STREAM,
        description="lifeline VRRP and LVS events (see docs/bus.md)",
        subjects=list(event_stream_subjects(node)),
        retention=RetentionPolicy.LIMITS,
        discard=DiscardPolicy.OLD,
        storage=StorageType.FILE,
        max_age=max_age,
        max_bytes=max_bytes,
        max_msg_size=64 * 1024,
        duplicate_window=duplicate_window,
        num_replicas=replicas,
        allow_direct=True,
    )


def state_bucket_config(*, replicas: int = 1) -> KeyValueConfig:
    """The KV bucket of current states: history 1 (the stream is the history), direct gets on."""
    return KeyValueConfig(
        bucket=STATE_BUCKET,
        description="lifeline current state per instance, group, tracker, real server and pool",
        history=1,
        storage=StorageType.FILE,
        replicas=replicas,
        max_value_size=64 * 1024,
        direct=True,
    )


def dead_letter_stream_config() -> StreamConfig:
    """Every ``DeadLetter`` a notifier sink gave up on, kept 30 days."""
    return StreamConfig(
        name=DEAD_LETTER_STREAM,
        description="lifeline notifier: events a sink gave up on, with the reason",
        subjects=list(DEAD_LETTER_SUBJECTS),
        retention=RetentionPolicy.LIMITS,
        discard=DiscardPolicy.OLD,
        storage=StorageType.FILE,
        max_age=30 * DAY,
        max_bytes=64 * 1024 * 1024,
        duplicate_window=600.0,
    )


def lease_bucket_config(ttl: float = LEASE_TTL) -> KeyValueConfig:
    """The notifier's leases: entries expire ``ttl`` after their last write (the lease time)."""
    return KeyValueConfig(
        bucket=LEASE_BUCKET,
        description="lifeline notifier: which replica delivers which sink",
        history=1,
        ttl=ttl,
        storage=StorageType.FILE,
        direct=True,
    )


def replica_stream_config(node: str | None = None) -> StreamConfig:
    """Replica beats, reload calls and answers: kept a minute in memory, republished on ``heard``.

    No acknowledgements (the replicas publish plain messages and nothing
    answers), no direct get (nobody reads it back): the stream exists to
    republish, which drops the publisher's reply subject.
    """
    dest = f"{PREFIX}.{{{{wildcard(1)}}}}.{REPLICAS}.{{{{wildcard(2)}}}}.heard.{{{{wildcard(3)}}}}"
    return StreamConfig(
        name=REPLICA_STREAM,
        description="lifeline replica membership and reloads, republished (see docs/bus.md)",
        subjects=list(replica_stream_subjects(node)),
        retention=RetentionPolicy.LIMITS,
        discard=DiscardPolicy.OLD,
        storage=StorageType.MEMORY,
        max_age=60.0,
        duplicate_window=60.0,  # what the server makes of it anyway (at most max_age)
        max_msgs_per_subject=1,
        max_msg_size=16 * 1024,
        no_ack=True,
        republish=RePublish(src=replica_stream_subjects(None)[0], dest=dest),
    )


@dataclass(frozen=True)
class ConsumerPlan:
    """One durable pull consumer: who reads what (a notifier sink's ``notifier_<sink>``)."""

    durable: str
    filter_subjects: tuple[str, ...]
    stream: str = EVENT_STREAM
    ack_wait: float = 10.0
    max_ack_pending: int = 5000
    deliver_policy: DeliverPolicy = DeliverPolicy.NEW
    description: str = "lifeline notifier sink (see docs/notifier.md)"

    def config(self) -> ConsumerConfig:
        """Explicit acks, no server-side give-up (the notifier decides), room for many keys in flight."""
        return ConsumerConfig(
            durable_name=self.durable,
            description=self.description,
            deliver_policy=self.deliver_policy,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait,
            max_deliver=-1,
            max_ack_pending=self.max_ack_pending,
            filter_subjects=list(self.filter_subjects),
        )


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Plan:
    """Everything one node needs on its server."""

    node: str | None
    streams: tuple[StreamConfig, ...]
    buckets: tuple[KeyValueConfig, ...]
    consumers: tuple[ConsumerPlan, ...] = ()
    prune_consumers: bool = True
    """Delete this node's ``notifier_*`` consumers that ``consumers`` does not name."""


def node_plan(
    node: str | None,
    consumers: Iterable[ConsumerPlan] = (),
    *,
    lease_ttl: float = LEASE_TTL,
    prune_consumers: bool = True,
) -> Plan:
    """The streams and buckets of ``node`` (None: every node's subjects, for a shared lab server)."""
    return Plan(
        node=node,
        streams=(event_stream_config(node), dead_letter_stream_config(), replica_stream_config(node)),
        buckets=(state_bucket_config(), lease_bucket_config(lease_ttl)),
        consumers=tuple(consumers),
        prune_consumers=prune_consumers,
    )


@dataclass
class Report:
    """What ``provision`` did, one line per object: ``stream LIFELINE_EVENTS: created``."""

    lines: list[str] = field(default_factory=list)

    def add(self, kind: str, name: str, action: str) -> None:
        self.lines.append(f"{kind} {name}: {action}")
        log.info("provision: %s %s: %s", kind, name, action)

    @property
    def changed(self) -> bool:
        return any(not line.endswith(": unchanged") for line in self.lines)


async def provision(nc: Client, plan: Plan, *, timeout: float = 10.0) -> Report:
    """Create or bring up to date every object of ``plan``; only what differs changes."""
    js = nc.jetstream(timeout=timeout)
    report = Report()
    for config in plan.streams:
        await _stream(js, config, report)
    for bucket in plan.buckets:
        await _bucket(js, bucket, report)
    wanted = {c.durable for c in plan.consumers}
    for consumer in plan.consumers:
        await _consumer(js, consumer, report)
    if plan.prune_consumers and plan.node is not None:
        await _prune(js, plan.node, wanted, report)
    return report


async def _stream(js: JetStreamContext, config: StreamConfig, report: Report) -> None:
    name = config.name or ""
    try:
        current = (await js.stream_info(name)).config
    except NotFoundError:
        await js.add_stream(config)
        report.add("stream", name, "created")
        return
    if config.subjects is not None:
        config = dataclasses.replace(config, subjects=merged(current.subjects or [], config.subjects))
    updated = _overlay(current, config)
    if updated == current:
        report.add("stream", name, "unchanged")
        return
    await js.update_stream(updated)
    report.add("stream", name, "updated")


def _overlay(current: StreamConfig, wanted: StreamConfig) -> StreamConfig:
    """``current`` with every field ``wanted`` sets (what the server filled in itself stays)."""
    values = {f.name: getattr(wanted, f.name) for f in dataclasses.fields(wanted)}
    return dataclasses.replace(current, **{k: v for k, v in values.items() if v is not None})


async def _bucket(js: JetStreamContext, config: KeyValueConfig, report: Report) -> None:
    """A KV bucket is a stream ``KV_<bucket>``: created through the KV API, updated as a stream."""
    stream = f"KV_{config.bucket}"
    try:
        current = (await js.stream_info(stream)).config
    except NotFoundError:
        await js.create_key_value(config)
        report.add("bucket", config.bucket, "created")
        return
    max_age = config.ttl if config.ttl is not None else current.max_age
    window = current.duplicate_window
    if max_age and window and window > max_age:  # the server refuses a window longer than the age
        window = max_age
    wanted = dataclasses.replace(
        current,
        description=config.description,
        max_msgs_per_subject=config.history,
        max_age=max_age,
        duplicate_window=window,
        max_msg_size=config.max_value_size if config.max_value_size is not None else current.max_msg_size,
        allow_direct=config.direct,
    )
    if wanted == current:
        report.add("bucket", config.bucket, "unchanged")
        return
    await js.update_stream(wanted)
    report.add("bucket", config.bucket, "updated")


async def _consumer(js: JetStreamContext, plan: ConsumerPlan, report: Report) -> None:
    try:
        info = await js.consumer_info(plan.stream, plan.durable)
    except NotFoundError:
        await js.add_consumer(plan.stream, plan.config())
        report.add("consumer", plan.durable, "created")
        return
    have = info.config
    same = (
        sorted(_filters(have)) == sorted(plan.filter_subjects)
        and have.ack_wait == plan.ack_wait
        and have.max_ack_pending == plan.max_ack_pending
    )
    if same:
        report.add("consumer", plan.durable, "unchanged")
        return
    await js.add_consumer(plan.stream, plan.config())  # create-or-update: the server changes what may change
    report.add("consumer", plan.durable, "updated")


def _filters(config: ConsumerConfig) -> list[str]:
    return list(config.filter_subjects or ([config.filter_subject] if config.filter_subject else []))


async def _prune(js: JetStreamContext, node: str, wanted: set[str], report: Report) -> None:
    """Delete ``node``'s ``notifier_*`` consumers no sink names (only ones filtered to this node)."""
    mine = f"{PREFIX}.{encode_token(node)}."
    try:
        infos = await js.consumers_info(EVENT_STREAM)
    except NotFoundError:
        return
    for info in infos:
        name = info.name
        if not name.startswith(NOTIFIER_CONSUMER_PREFIX) or name in wanted:
            continue
        filters = _filters(info.config)
        if not filters or not all(f.startswith(mine) for f in filters):
            continue  # another node's sink on a shared server, or not ours to judge
        await js.delete_consumer(EVENT_STREAM, name)
        report.add("consumer", name, "deleted (no sink asks for it)")


# --------------------------------------------------------------------------- what the services use


async def require_stream(js: JetStreamContext, stream: str) -> None:
    """Raise ``NotProvisioned`` unless ``stream`` exists (the user needs ``STREAM.INFO`` on it only)."""
    try:
        await js.stream_info(stream)
    except NotFoundError:
        raise NotProvisioned(f"stream {stream}") from None


async def open_bucket(js: JetStreamContext, bucket: str) -> KeyValue:
    """The bucket's handle, or ``NotProvisioned`` (``key_value`` reads ``STREAM.INFO.KV_<bucket>``)."""
    try:
        return await js.key_value(bucket)
    except BucketNotFoundError:
        raise NotProvisioned(f"bucket {bucket}") from None


# --------------------------------------------------------------------------- subjects


def merged(have: Sequence[str], want: Sequence[str]) -> list[str]:
    """Both lists, minus any subject another one already captures (JetStream refuses overlaps)."""
    union = list(have) + [s for s in want if s not in have]
    return [s for s in union if not _covered(s, [o for o in union if o != s])]


def _covered(subject: str, existing: list[str]) -> bool:
    """``lifeline.n1.vrrp.>`` is already captured by ``lifeline.*.vrrp.>`` (overlaps are refused)."""
    return any(subject_matches(other, subject) for other in existing)


def subject_matches(pattern: str, subject: str) -> bool:
    """Does ``pattern`` (``*`` one token, ``>`` the rest) capture ``subject`` (which may hold wildcards)?"""
    want, have = pattern.split("."), subject.split(".")
    for i, token in enumerate(want):
        if token == ">":
            return len(have) > i
        if i >= len(have) or have[i] == ">" or token not in ("*", have[i]):
            return False
    return len(want) == len(have)
