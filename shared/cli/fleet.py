"""Reading the state KV bucket of this node, or of every node of a fleet.

Why JetStream domains: in a fleet every node's nats-server is a leaf node of a
hub and has its own JetStream domain (the node's name), so each node's stream
and bucket stay on that node and keep working while the hub is away.  Plain
subjects (events, notices, ``$SRV.INFO`` discovery, control requests) flow
over the leaf connections, so the hub and every node see them; the buckets do
not merge.  ``lifeline status --domain a --domain b ...`` therefore reads each
node's bucket through its domain's API prefix (``$JS.<domain>.API``), which the
leaf connections route to that node, and merges the answers.  A domain that
does not answer is reported, not fatal: the rest of the fleet is still shown.
See docs/operations.md, "Fleet".
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

import msgspec
import nats.errors
from nats.aio.client import Client
from nats.js.errors import BucketNotFoundError, NotFoundError

from shared.events import PREFIX, STATE_BUCKET, Event, decode_for_subject, parse_subject

FLEET_DOMAINS_ENV = "LIFELINE_FLEET_DOMAINS"
SETTLE_SECONDS = 0.15  # how long status reads on after the watcher says the initial values are done
"""Comma-separated JetStream domains ``status`` reads by default (``--domain`` overrides)."""


class StateEntry(msgspec.Struct, kw_only=True):
    """One KV entry, decoded: which node, what kind, which names, the event behind it."""

    key: str
    node: str
    kind: str
    names: tuple[str, ...]
    event: Event


async def read_state(
    nc: Client, bucket: str = STATE_BUCKET, timeout: float = 2.0, domain: str | None = None
) -> list[StateEntry]:
    """Every current entry of the state bucket (empty when the bucket does not exist yet).

    ``domain``: the bucket of that JetStream domain (a fleet node's), else the local one.
    """
    js = nc.jetstream(timeout=timeout, domain=domain)
    try:
        kv = await js.key_value(bucket)
    except (BucketNotFoundError, NotFoundError):
        return []
    watcher = await kv.watchall(ignore_deletes=True)
    latest: dict[str, StateEntry] = {}
    try:
        await _drain(watcher, timeout, latest)
    finally:
        with contextlib.suppress(Exception):
            await watcher.stop()  # type: ignore[no-untyped-call]
    entries = list(latest.values())
    return sorted(entries, key=lambda e: (e.node, e.kind, e.names))


async def _drain(watcher: Any, timeout: float, latest: dict[str, StateEntry]) -> None:
    """Initial values, then whatever keeps arriving for a moment, newest per key.

    The watcher's "initial values done" marker can come early while services
    write heartbeats into the bucket (the pending count reaches 0 mid-read), so
    reading on briefly after it is what makes the view complete on a busy bus.
    """
    wait, settled = timeout, False
    while True:
        try:
            entry = await watcher.updates(wait)
        except (TimeoutError, nats.errors.TimeoutError):
            if settled:
                return
            raise
        if entry is None:  # initial values done (perhaps early): read on briefly
            wait, settled = SETTLE_SECONDS, True
            continue
        if entry.value is None or entry.operation is not None:
            continue
        parsed = _entry(entry)
        if parsed is not None:
            latest[entry.key] = parsed


def _entry(entry: Any) -> StateEntry | None:
    return state_entry(entry.key, entry.value)


def state_entry(key: str, value: bytes) -> StateEntry | None:
    """The entry behind state-bucket ``key``, or None for a foreign key or another contract version."""
    subject = f"{PREFIX}.{key}"
    try:
        info = parse_subject(subject)
        event = decode_for_subject(subject, value)
    except (ValueError, msgspec.DecodeError):
        return None  # another contract version or a foreign key: not ours to show
    return StateEntry(key=key, node=info.node, kind=info.kind, names=info.names, event=event)


def parse_domains(values: Sequence[str] | None) -> list[str]:
    """``--domain a --domain b,c`` → ``["a", "b", "c"]`` (order kept, duplicates and blanks dropped)."""
    out: list[str] = []
    for value in values or ():
        for part in value.split(","):
            name = part.strip()
            if name and name not in out:
                out.append(name)
    return out


def merge(batches: Sequence[list[StateEntry]]) -> list[StateEntry]:
    """One entry per key, the newest (a key can come from two buckets when subjects overlap)."""
    newest: dict[str, StateEntry] = {}
    for batch in batches:
        for e in batch:
            seen = newest.get(e.key)
            if seen is None or e.event.ts > seen.event.ts:
                newest[e.key] = e
    return sorted(newest.values(), key=lambda e: (e.node, e.kind, e.names))


async def read_fleet_state(
    nc: Client, domains: Sequence[str], bucket: str = STATE_BUCKET, timeout: float = 2.0
) -> tuple[list[StateEntry], dict[str, str]]:
    """The local bucket plus every domain's, merged; and ``{domain: why it did not answer}``."""

    async def one(domain: str | None) -> list[StateEntry] | str:
        try:
            return await read_state(nc, bucket, timeout, domain=domain)
        except (nats.errors.Error, TimeoutError) as exc:
            return f"{type(exc).__name__}: {exc}".rstrip(": ")

    targets: list[str | None] = [None, *domains]
    results = await asyncio.gather(*(one(d) for d in targets))
    batches: list[list[StateEntry]] = []
    problems: dict[str, str] = {}
    for domain, result in zip(targets, results, strict=True):
        if isinstance(result, str):
            problems[domain or "(local)"] = result
        else:
            batches.append(result)
    return merge(batches), problems
