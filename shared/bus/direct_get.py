"""Reading the last message of many subjects in one request: JetStream's batched direct get.

Why not a KV watch, ``keys()`` or an ordered consumer: each of those creates a
consumer, and a user that may create consumers may create a push consumer that
delivers onto any subject (a tracker's, a control endpoint's).  The services
hold no consumer rights at all (docs/security.md, "The bus: who may do what"),
so they read the state bucket with direct gets, which create nothing.

One request ``$JS.API.DIRECT.GET.<stream>`` with ``{"multi_last": [...]}``
(nats-server 2.11 and later) answers with the last message of every
matching subject, one message each on the request's reply inbox, then an
end-of-batch status (``204 EOB``); nothing matching is a ``404``.  It is a
plain request on the caller's own inbox (``nc.new_inbox()``: the private
``_INBOX_<user>.`` prefix), so it needs the right to publish on that API
subject and nothing else.  The stream must have ``allow_direct``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from nats.aio.client import Client
from nats.aio.msg import Msg

MAX_SUBJECTS = 256
"""Subjects per request (the server accepts up to 1024 matches; a chunk stays well inside)."""

KV_OPERATION = "KV-Operation"


class DirectGetError(Exception):
    """The server refused the request (a status other than end-of-batch or no messages)."""


@dataclass(frozen=True)
class StoredMessage:
    """One stored message: its subject in the stream, its sequence, data and headers."""

    subject: str
    seq: int
    data: bytes
    headers: dict[str, str]

    @property
    def deleted(self) -> bool:
        """A KV tombstone (``KeyValue.delete``/``purge``): the key has no value."""
        return self.headers.get(KV_OPERATION) in ("DEL", "PURGE")


async def last_messages(
    nc: Client, stream: str, subjects: Sequence[str], *, timeout: float = 5.0
) -> dict[str, StoredMessage]:
    """The last stored message of every subject matching ``subjects`` (wildcards allowed), by subject."""
    out: dict[str, StoredMessage] = {}
    unique = list(dict.fromkeys(subjects))
    for start in range(0, len(unique), MAX_SUBJECTS):
        chunk = unique[start : start + MAX_SUBJECTS]
        for message in await _batch(nc, stream, chunk, timeout):
            out[message.subject] = message
    return out


async def _batch(nc: Client, stream: str, subjects: list[str], timeout: float) -> list[StoredMessage]:
    queue: asyncio.Queue[Msg] = asyncio.Queue()

    async def collect(msg: Msg) -> None:
        queue.put_nowait(msg)

    sub = await nc.subscribe(inbox := nc.new_inbox(), cb=collect)
    try:
        body = json.dumps({"multi_last": subjects}).encode()
        await nc.publish(f"$JS.API.DIRECT.GET.{stream}", body, reply=inbox)
        found: list[StoredMessage] = []
        while True:
            msg = await asyncio.wait_for(queue.get(), timeout)
            status = (msg.headers or {}).get("Status")
            if status is None:
                found.append(_stored(msg))
            elif status in ("204", "404"):  # end of batch; nothing matches
                return found
            else:
                description = (msg.headers or {}).get("Description", "")
                raise DirectGetError(f"direct get on {stream}: {status} {description}".rstrip())
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()


def _stored(msg: Msg) -> StoredMessage:
    headers = dict(msg.headers or {})
    try:
        subject = headers["Nats-Subject"]
        seq = int(headers["Nats-Sequence"])
    except (KeyError, ValueError) as exc:
        raise DirectGetError(f"direct get answer without subject or sequence: {headers}") from exc
    return StoredMessage(subject, seq, msg.data, headers)
