"""Idempotent creation of the event stream and the state KV bucket.

Why idempotent: every service calls this at start (and again if the server
lost them), in any order, on any node; the first one creates, the rest find
them.  A stream that exists with an older configuration is updated to ours, so
limits can change with a release.
"""

from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, KeyValueConfig, RetentionPolicy, StorageType, StreamConfig, StreamInfo
from nats.js.errors import BadRequestError, NotFoundError
from nats.js.kv import KeyValue

from shared.events import EVENT_STREAM, STATE_BUCKET, event_stream_subjects

STREAM_NAME_IN_USE = 10058  # JetStream error: stream name already in use with a different configuration

DAY = 24 * 3600.0


def event_stream_config(
    name: str = EVENT_STREAM,
    *,
    node: str | None = None,
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
    Direct get is on so consumers read the latest message cheaply.
    """
    return StreamConfig(
        name=name,
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


async def ensure_event_stream(
    js: JetStreamContext, config: StreamConfig | None = None, *, node: str | None = None
) -> StreamInfo:
    """Create the event stream, or bring an existing one to ``config``.

    Subjects are merged, never replaced: several nodes may share one
    nats-server (a lab, a test), and each adds its own node's subjects.
    """
    config = config or event_stream_config(node=node)
    name = config.name or EVENT_STREAM
    try:
        current = await js.stream_info(name)
    except NotFoundError:
        try:
            return await js.add_stream(config)
        except BadRequestError as exc:  # a sibling service created it meanwhile
            if exc.err_code != STREAM_NAME_IN_USE:
                raise
            current = await js.stream_info(name)
    config.subjects = _merged(list(current.config.subjects or []), list(config.subjects or []))
    return await js.update_stream(config)


def _merged(have: list[str], want: list[str]) -> list[str]:
    """Both lists, minus any subject another one already captures (JetStream refuses overlaps)."""
    union = have + [s for s in want if s not in have]
    return [s for s in union if not _covered(s, [o for o in union if o != s])]


def _covered(subject: str, existing: list[str]) -> bool:
    """``lifeline.n1.vrrp.>`` is already captured by ``lifeline.*.vrrp.>`` (overlaps are refused)."""
    parts = subject.split(".")
    for other in existing:
        theirs = other.split(".")
        if len(theirs) == len(parts) and all(
            t in ("*", p) or t == ">" for t, p in zip(theirs, parts, strict=True)
        ):
            return True
    return False


async def ensure_state_bucket(
    js: JetStreamContext,
    bucket: str = STATE_BUCKET,
    *,
    history: int = 1,
    replicas: int = 1,
) -> KeyValue:
    """Create the KV bucket of current states, or open it if it exists (in any configuration).

    History 1: the bucket answers "where do things stand now"; the event stream
    is the history.
    """
    config = KeyValueConfig(
        bucket=bucket,
        description="lifeline current state per instance, group, tracker, real server and pool",
        history=history,
        storage=StorageType.FILE,
        replicas=replicas,
        max_value_size=64 * 1024,
        direct=True,
    )
    try:
        return await js.create_key_value(config)
    except BadRequestError as exc:
        if exc.err_code != STREAM_NAME_IN_USE:
            raise
        return await js.key_value(bucket)
