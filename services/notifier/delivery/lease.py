"""A per-sink lease in a JetStream KV bucket: one replica delivers a sink at a time.

Why not let every replica pull from the shared consumer at once: JetStream
would hand VI_1's BACKUP to one replica and its MASTER to another, and the two
scripts would race, which is exactly keepalived's flaw.  Per-key order across
processes would need a lock per key; a lease per sink is that lock at the
coarsest useful grain.  Replicas still share the work (each leads the sinks it
won, and takes over a dead one's sinks when the lease expires), every one
binds the same durable consumer, so whichever replica holds the lease, an
event is delivered once per sink.

The lease is a KV key whose bucket ``ttl`` is the lease time (the bucket is
provisioned by an admin, ``shared.bus.provision``): the holder
rewrites it (compare-and-set on its revision) every ``ttl / 3``; a holder that
cannot renew stops delivering before the key can expire, so two replicas never
deliver the same sink at once.  A graceful stop deletes the key so a standby
takes over at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from nats.js import JetStreamContext
from nats.js.errors import KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from shared.bus.provision import open_bucket
from shared.events import LEASE_BUCKET, encode_token

log = logging.getLogger("lifeline.notifier.lease")


async def open_lease_bucket(js: JetStreamContext, bucket: str = LEASE_BUCKET) -> tuple[KeyValue, float]:
    """The provisioned lease bucket and its lease time (the bucket's ``max_age``), or ``NotProvisioned``."""
    kv = await open_bucket(js, bucket)
    info = await js.stream_info(f"KV_{bucket}")
    return kv, float(info.config.max_age or 0.0)


class Lease:
    """The right to deliver one sink; ``hold()`` returns when it is lost."""

    def __init__(self, kv: KeyValue, sink: str, owner: str, ttl: float) -> None:
        self.kv = kv
        self.key = f"sink.{encode_token(sink)}"
        self.owner = owner
        self.ttl = ttl
        self.revision: int | None = None

    async def try_acquire(self) -> bool:
        try:
            self.revision = await self.kv.create(self.key, self.owner.encode())
        except KeyWrongLastSequenceError:
            return False
        except Exception as exc:
            log.info("lease %s: cannot ask (%s)", self.key, exc)
            return False
        log.info("lease %s: taken by %s", self.key, self.owner)
        return True

    async def acquire(self) -> None:
        """Wait until this replica holds the lease."""
        while not await self.try_acquire():
            await asyncio.sleep(self.ttl / 4)

    async def hold(self) -> None:
        """Renew until the lease is lost; returns at the moment this replica must stop delivering."""
        renewed = time.monotonic()
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                self.revision = await self.kv.update(self.key, self.owner.encode(), last=self.revision)
                renewed = time.monotonic()
            except KeyWrongLastSequenceError:
                log.warning("lease %s: taken over by another replica", self.key)
                return
            except Exception as exc:
                if time.monotonic() - renewed > self.ttl * 0.7:
                    log.warning("lease %s: not renewed in time (%s); stepping down", self.key, exc)
                    return

    async def release(self) -> None:
        if self.revision is None:
            return
        with contextlib.suppress(Exception):
            await self.kv.delete(self.key, last=self.revision)
        self.revision = None
