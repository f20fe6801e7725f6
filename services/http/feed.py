"""The bus side of the http service: the state bucket read once, every event followed live.

Why direct gets and core subscriptions, not a KV watch or a consumer: both
of those create a consumer, and a user allowed to create consumers may make
one deliver onto any subject (docs/security.md, "The bus: who may do what").
The ``http`` user creates nothing: a batched direct get reads the bucket
(``shared.bus.direct_get``) and plain subscriptions to the events (every
event is published on its subject before JetStream stores it) keep the copy
current.  Subscribed first, read second, newest by timestamp wins
(``core.model``), so nothing published in between is lost; after a
reconnect the bucket is read again (events published while disconnected were
missed) and keys deleted meanwhile are dropped.  A message JetStream made on
request (``shared.bus.trust.live_event``) or one that does not decode as
its subject's type is counted and dropped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from nats.aio.client import Client
from nats.aio.msg import Msg

from services.http.core.model import Model
from shared.bus.direct_get import StoredMessage, last_messages
from shared.bus.trust import live_event
from shared.cli.fleet import StateEntry, state_entry
from shared.cli.status import Replica, discover
from shared.events import PREFIX, STATE_BUCKET, Service, kv_key_for_subject
from shared.nats_users import READ_EVENT_KINDS

log = logging.getLogger("lifeline.http.feed")

KV_PREFIX: Final = f"$KV.{STATE_BUCKET}."
DISCOVERY_WAIT: Final = 0.3
"""Seconds the replicas of a discovery round may take to answer."""
LIVE_FOR: Final = 3.0
"""A replica last seen this long ago no longer counts as running (discovery asks every second)."""

SNAPSHOT_KINDS: Final = ("vrrp", "track", "check", "lvs", "service")
"""The bucket's kinds ``/status`` shows (``health`` keys are the durable copies of ``check`` ones)."""

OnEntry = Callable[[StateEntry], None]


@dataclass
class Feed:
    """Keeps ``model`` current from the bus; calls ``on_entry`` for every entry it kept."""

    model: Model
    on_entry: OnEntry
    dropped: int = 0
    replicas: list[Replica] = field(default_factory=list)
    seen: dict[tuple[str, str], float] = field(default_factory=dict)
    """(node, service) → monotonic time a replica of it last answered discovery."""

    async def follow(self, nc: Client) -> None:
        """Subscribe to every node's events (before the snapshot: nothing in between is lost)."""
        for kind in READ_EVENT_KINDS:
            await nc.subscribe(f"{PREFIX}.*.{kind}.>", cb=self._on_message)

    async def _on_message(self, msg: Msg) -> None:
        if not live_event(msg.reply, msg.headers):
            self.dropped += 1
            return
        try:
            key = kv_key_for_subject(msg.subject)
        except ValueError:
            self.dropped += 1
            return
        entry = state_entry(key, msg.data)
        if entry is None:
            self.dropped += 1
            return
        if self.model.apply(entry):
            self.on_entry(entry)

    async def snapshot(self, nc: Client) -> None:
        """Read the whole state bucket; keys deleted since the last read leave the model.

        Deleted: gone from the bucket and older than this read (an entry that
        arrived live while the bucket was being read stays).
        """
        started = time.time_ns()
        stream = f"KV_{STATE_BUCKET}"
        js = nc.jetstream(timeout=5.0)
        stored: dict[str, StoredMessage] = {}
        for kind in SNAPSHOT_KINDS:
            # the keys first (STREAM.INFO lists them), then their values by exact subject, 256 a
            # request: one wildcard request is refused past 1024 matching keys (a node of many reals)
            info = await js.stream_info(stream, subjects_filter=f"{KV_PREFIX}*.{kind}.>")
            subjects = list(info.state.subjects or {})
            if subjects:
                stored |= await last_messages(nc, stream, subjects)
        present: set[str] = set()
        for subject, message in stored.items():
            if message.deleted:
                continue
            key = subject.removeprefix(KV_PREFIX)
            entry = state_entry(key, message.data)
            if entry is None:
                continue
            present.add(key)
            self.model.apply(entry)
        for key in set(self.model.entries) - present:
            if self.model.entries[key].event.ts < started:  # not one that arrived live meanwhile
                del self.model.entries[key]

    async def discover(self, nc: Client, own: Replica) -> bool:
        """One discovery round of the other services; True when the set of replicas changed."""
        subjects = [f"$SRV.INFO.lifeline-{s.value}" for s in Service if s != Service.HTTP]
        found = await discover(nc, DISCOVERY_WAIT, subjects)
        now = time.monotonic()
        for replica in found:
            self.seen[(replica.node, replica.service)] = now
        replicas = sorted([*found, own], key=lambda r: (r.node, r.service, r.id))
        changed = [(r.node, r.service, r.id) for r in replicas] != [
            (r.node, r.service, r.id) for r in self.replicas
        ]
        self.replicas = replicas
        return changed

    def live(self, node: str, service: str) -> bool:
        """Did a replica of ``service`` on ``node`` answer within ``LIVE_FOR`` s?"""
        last = self.seen.get((node, service))
        return last is not None and time.monotonic() - last <= LIVE_FOR
