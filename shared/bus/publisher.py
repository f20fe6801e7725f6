"""Publishing events in order, exactly once into the stream, surviving NATS outages.

Why one event in flight at a time: nats-py resends its buffered bytes after a
reconnect while bytes already written to the dead socket are lost, so with
several publishes in flight a later event can be stored before an earlier one
is re-sent.  Waiting for each acknowledgement keeps the stream in ``seq`` order
and still moves thousands of events per second on a local server.

Delivery per event (see docs/bus.md):

- durable events (vrrp state/group, lvs pool) go to JetStream with
  ``Nats-Msg-Id = boot_id:seq`` and are acknowledged; a re-send inside the
  duplicate window is dropped by the server, and after an uncertain failure the
  publisher first checks whether the stream's last message on that subject is
  already this one;
- tracker and real-server events are core NATS messages (no stream: they are
  heartbeats), followed on the same connection by the KV put, whose ack proves
  the server received the core message too (the server handles one
  connection's messages in order);
- every event is also written to the state KV bucket under its subject's key;
- ``withdraw(subject)`` deletes that key, in the same queue: it lands after
  every event published before it, so a late heartbeat of something removed
  cannot write the key back after the deletion.

With an ``outbox_path`` (every service has one, under the node's
``state_dir``) durable events are also written to a file before ``publish``
returns and noted there once the stream acknowledged them
(``shared.bus.outbox_file``): a process killed while NATS was away leaves
them behind, and the next one sends them first, in order, under their original
``Nats-Msg-Id`` so the stream stores each once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import msgspec
import nats.errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import BadRequestError, NoStreamResponseError, NotFoundError

from shared.bus.core.failures import FailureEpisode
from shared.bus.outbox import Outbox
from shared.bus.outbox_file import OutboxBusy, OutboxFile
from shared.bus.provision import PROVISION_HINT, NotProvisioned, require_stream
from shared.events import (
    EVENT_STREAM,
    MSG_ID_HEADER,
    STATE_BUCKET,
    BusCounters,
    Event,
    OutboxOverflow,
    RealServerHealth,
    RealServerTransition,
    decode,
    encode,
    is_durable,
    kv_key_for_subject,
    msg_id,
    subject_for,
)
from shared.redact import REDACTOR

log = logging.getLogger("lifeline.bus")

E = TypeVar("E", bound=Event)

# Errors after which retrying cannot help: the event is refused, logged and counted.
_PERMANENT = (BadRequestError, nats.errors.MaxPayloadError, nats.errors.BadSubjectError, ValueError)

KV_OPERATION = "KV-Operation"
"""The header that makes a message on ``$KV.<bucket>.<key>`` a deletion (what ``KeyValue.delete`` sends)."""


@dataclass(frozen=True, slots=True)
class Withdrawal:
    """A state-bucket key to delete, queued among the events (``Publisher.withdraw``)."""

    key: str


class Publisher:
    """Stamps events (node, ts, seq, boot_id), queues them, and delivers them in order.

    ``publish()`` is synchronous and never blocks or raises because of the bus,
    so the VRRP loop can call it on its hot path.  Create it at process start
    (``seq`` starts at 1 per ``boot_id``), call ``start(nc)`` once connected;
    events published before that simply wait in the outbox.

    ``outbox_path`` makes the outbox durable (a file; ``adopt`` a glob of
    files of gone replicas to take over), ``service`` names the publisher in
    an ``OutboxOverflow``: the runner passes all three
    (``ServiceContext.publisher``).
    """

    def __init__(
        self,
        node: str,
        *,
        boot_id: str | None = None,
        max_queued: int = 10_000,
        ack_timeout: float = 2.0,
        retry_wait: float = 0.02,
        max_retry_wait: float = 1.0,
        stream: str = EVENT_STREAM,
        bucket: str = STATE_BUCKET,
        clock: Callable[[], int] = time.time_ns,
        outbox_path: Path | None = None,
        adopt: str | None = None,
        service: str = "bus",
    ) -> None:
        self.node = node
        self.boot_id = boot_id or uuid.uuid4().hex
        self.stream = stream
        self.bucket = bucket
        self.ack_timeout = ack_timeout
        self.retry_wait = retry_wait
        self.max_retry_wait = max_retry_wait
        self._clock = clock
        self._seq = itertools.count(1)
        self._outbox: Outbox[Event | Withdrawal] = Outbox(max_queued)
        self._counters = BusCounters()
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._task: asyncio.Task[None] | None = None
        self.observe: Callable[[Event], None] | None = None
        """Shown every stamped event after it is queued (the vrrp service's notify fallback)."""
        self.ready = asyncio.Event()
        """Set once the stream and bucket exist (an admin provisioned them) and the sender runs."""
        self.missing: str | None = None
        """What is not provisioned yet (for a status), None once everything is there."""
        self.service = service
        """Who publishes (``OutboxOverflow.service``)."""
        self.failures = FailureEpisode("bus: publishing")
        self._replayed: set[str] = set()
        self._file: OutboxFile | None = None
        self._syncer: asyncio.Task[None] | None = None
        if outbox_path is not None:
            self._open_file(outbox_path, adopt)

    def _open_file(self, path: Path, adopt: str | None) -> None:
        """Take over the outbox file and queue what the previous process left, before anything new."""
        try:
            self._file = OutboxFile(path, adopt)
        except (OSError, OutboxBusy) as exc:
            log.error("bus outbox %s unusable (%s): events are kept in memory only", path, exc)
            return
        for record in self._file.replay:
            try:
                event = decode(record.body)
            except msgspec.DecodeError as exc:
                log.error("bus outbox %s: record %s unreadable (%s), dropped", path, record.id, exc)
                self._file.dropped(record.id)
                continue
            if type(event) is RealServerHealth:  # only its durable copy is ever written: back to ``health``
                event = RealServerTransition(**msgspec.structs.asdict(event))
            self._replayed.add(record.id)
            self._put(event)
        if self._replayed:
            log.warning(
                "bus outbox %s: %d events of a previous run will be sent first", path, len(self._replayed)
            )

    # ------------------------------------------------------------------ producer side

    def publish(self, event: E) -> E:
        """Stamp ``event`` and queue it; returns the stamped copy (what goes on the wire).

        Its text fields are redacted (``shared.redact``): a check's detail or a
        reload error naming a URL with a password reaches the stream without it.
        """
        stamped = msgspec.structs.replace(
            event,
            node=self.node,
            ts=event.ts or self._clock(),
            seq=next(self._seq),
            boot_id=self.boot_id,
        )
        stamped = REDACTOR.struct(stamped)
        if self._file is not None and is_durable(stamped):
            self._file.event(msg_id(stamped), encode(stamped))
        self._put(stamped)
        if self.observe is not None:
            try:
                self.observe(stamped)
            except Exception:  # an observer (vrrp's notify fallback) must never break publishing
                log.exception("bus: the observer of %s failed", type(event).__name__)
        return stamped

    def _put(self, item: Event | Withdrawal) -> None:
        """Queue; an event the bound pushes out is dropped from the file too."""
        dropped = self._outbox.put(item)
        if self._file is not None and dropped is not None and not isinstance(dropped, Withdrawal):
            self._file.dropped(msg_id(dropped))

    def withdraw(self, subject: str) -> None:
        """Delete the state-bucket entry behind ``subject`` once everything queued before is delivered.

        For something that no longer exists (a tracker or real server a reload
        removed): readers of the bucket stop seeing its last state.  Nothing is
        published on ``subject`` itself; the event stream keeps the history.
        """
        self._put(Withdrawal(kv_key_for_subject(subject)))

    @property
    def counters(self) -> BusCounters:
        """A snapshot of the counters (``queued`` is the outbox length now)."""
        c = self._counters
        return BusCounters(
            published=c.published,
            queued=len(self._outbox),
            dropped=self._outbox.dropped,
            resent=c.resent,
            rejected=c.rejected,
            stored=len(self._file) if self._file is not None else 0,
            failing=self.failures.failing,
            errors=self.failures.total,
            last_error=self.failures.last_error,
        )

    # ------------------------------------------------------------------ lifecycle

    async def start(self, nc: Client) -> None:
        """Attach to a connection and start delivering (set-up retries in the background)."""
        if self._task is not None:
            raise RuntimeError("publisher already started")
        self._nc = nc
        self._js = nc.jetstream(timeout=self.ack_timeout)
        self._task = asyncio.create_task(self._run(), name=f"lifeline-publisher-{self.node}")
        if self._file is not None:
            self._syncer = asyncio.create_task(self._file.sync_forever(), name="lifeline-outbox-fsync")

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued event is delivered; False on timeout."""
        try:
            await asyncio.wait_for(self._outbox.wait_idle(), timeout)
        except TimeoutError:
            return False
        return True

    async def close(self, flush_timeout: float = 2.0) -> None:
        """Try to deliver what is queued for ``flush_timeout`` s, then stop (the rest is logged)."""
        if self._task is None:
            self._close_file()
            return
        if not await self.flush(flush_timeout):
            log.warning("bus publisher closing with %d events undelivered", len(self._outbox) + 1)
        for task in (self._task, self._syncer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._syncer = None
        self._close_file()

    def _close_file(self) -> None:
        """Sync and release the outbox file: what is still in it is the next process's to send."""
        if self._file is not None:
            if len(self._file):
                log.warning(
                    "bus outbox %s keeps %d events for the next start", self._file.path, len(self._file)
                )
            self._file.close()
            self._file = None

    # ------------------------------------------------------------------ sender

    async def _run(self) -> None:
        await self._retry("find stream and bucket", self._setup)
        self.ready.set()
        while True:
            item = await self._outbox.get()
            try:
                if isinstance(item, Withdrawal):
                    await self._withdraw(item)
                else:
                    await self._deliver(item)
                    if self._file is not None:
                        self._file.acked(msg_id(item))  # delivered or refused for good: not for a replay
            finally:
                if dropped := self._outbox.end_of_episode():
                    self._overflowed(dropped)
                self._outbox.done()

    def _overflowed(self, dropped: int) -> None:
        """Announce an overflow episode that just ended (once the outbox drained)."""
        detail = f"NATS could not take events for a while; {dropped} dropped, oldest first"
        self.publish(
            OutboxOverflow(service=self.service, dropped=dropped, bound=self._outbox.maxlen, detail=detail)
        )

    async def _setup(self) -> None:
        """The stream and the bucket must exist: services may not create them (``shared.bus.provision``)."""
        assert self._js is not None
        try:
            await require_stream(self._js, self.stream)
            await require_stream(self._js, f"KV_{self.bucket}")
        except NotProvisioned as exc:
            if self.missing != exc.what:
                log.error("bus: %s; events wait in the outbox meanwhile", exc)
            self.missing = exc.what
            raise
        self.missing = None

    async def _retry(self, what: str, op: Callable[[], Awaitable[None]]) -> None:
        """Run ``op`` until it succeeds, waiting while disconnected, backing off on errors."""
        wait = self.retry_wait
        episode = FailureEpisode(f"bus: {what}")
        while True:
            await self._connected()
            try:
                await op()
                self._say(episode.succeeded(time.monotonic()))
                return
            except asyncio.CancelledError:
                raise
            except NotProvisioned:
                wait = self.max_retry_wait  # logged once by ``_setup``; an admin has to act
            except Exception as exc:  # JetStream disabled or not answering: said once per episode
                error = f"{type(exc).__name__}: {exc}"
                self._say(episode.failed(time.monotonic(), error), logging.WARNING)
                self.failures.failed(time.monotonic(), error)  # the status says ``failing`` meanwhile
            await asyncio.sleep(wait)
            wait = min(wait * 2, self.max_retry_wait)

    async def _connected(self) -> None:
        """Wait until the connection is up: never hand events to nats-py's reconnect buffer."""
        assert self._nc is not None
        while not self._nc.is_connected:
            if self._nc.is_closed:
                raise nats.errors.ConnectionClosedError
            await asyncio.sleep(self.retry_wait)

    async def _deliver(self, event: Event) -> None:
        """Deliver one event, retrying transient failures forever; permanent ones are logged and counted.

        Transient: NATS away, no answer, JetStream refusing writes (store
        full, JetStream disabled: "insufficient resources", 503).  They are
        logged per episode (``FailureEpisode``), not per attempt.
        """
        wait = self.retry_wait
        mid = msg_id(event)
        uncertain = mid in self._replayed  # a previous process may have stored it before it died
        self._replayed.discard(mid)
        while True:
            await self._connected()
            try:
                await self._send(event, uncertain)
                self._counters.published += 1
                self._say(self.failures.succeeded(time.monotonic()))
                return
            except asyncio.CancelledError:
                raise
            except _PERMANENT as exc:
                self._counters.rejected += 1
                log.error("bus: event %s refused for good: %s", mid, exc)
                return
            except NoStreamResponseError:
                what = subject_for(event)
                log.warning("bus: no stream captures %s (node not provisioned? %s)", what, PROVISION_HINT)
                await self._retry("find stream and bucket", self._setup)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                self._say(self.failures.failed(time.monotonic(), error), logging.WARNING)
            uncertain = True
            self._counters.resent += 1
            await asyncio.sleep(wait)
            wait = min(wait * 2, self.max_retry_wait)

    def _say(self, message: str | None, level: int = logging.INFO) -> None:
        if message is not None:
            log.log(
                level,
                "%s (%d queued, %d in the outbox file)",
                message,
                len(self._outbox),
                self.counters.stored,
            )

    async def _withdraw(self, item: Withdrawal) -> None:
        """Delete one key (a tombstone: watchers see the deletion), retrying like an event."""
        assert self._js is not None
        wait = self.retry_wait
        subject = f"$KV.{self.bucket}.{item.key}"
        while True:
            await self._connected()
            try:
                await self._js.publish(subject, b"", headers={KV_OPERATION: "DEL"})
                return
            except asyncio.CancelledError:
                raise
            except _PERMANENT as exc:
                self._counters.rejected += 1
                log.error("bus: withdrawal of %s refused for good: %s", item.key, exc)
                return
            except Exception as exc:
                log.info("bus: withdrawal of %s failed (%s); will retry", item.key, exc)
            await asyncio.sleep(wait)
            wait = min(wait * 2, self.max_retry_wait)

    async def _send(self, event: Event, uncertain: bool) -> None:
        assert self._nc is not None and self._js is not None
        subject = subject_for(event)
        data = encode(event)
        headers = {MSG_ID_HEADER: msg_id(event)}
        ops: list[Awaitable[object]] = []
        if not is_durable(event):
            await self._nc.publish(subject, data, headers=headers)
        elif not (uncertain and await self._already_stored(subject, headers[MSG_ID_HEADER])):
            ops.append(self._js.publish(subject, data, headers=dict(headers), stream=self.stream))
        kv_subject = f"$KV.{self.bucket}.{kv_key_for_subject(subject)}"
        ops.append(self._js.publish(kv_subject, data, headers=dict(headers)))
        results = await asyncio.gather(*ops, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _already_stored(self, subject: str, mid: str) -> bool:
        """Is the stream's last message on ``subject`` this one? (covers outages beyond the dup window)."""
        assert self._js is not None
        try:  # a direct get: the services may read the stream, never through a consumer
            last = await self._js.get_last_msg(self.stream, subject, direct=True)
        except NotFoundError:
            return False
        return bool(last.headers and last.headers.get(MSG_ID_HEADER) == mid)
