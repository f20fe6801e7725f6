"""The durable outbox's file format and bookkeeping (pure: bytes in, bytes out).

A service's events that NATS has not acknowledged yet must outlive the
process (``kill -9`` while the node's nats-server is down), so the publisher
appends each durable event to a file before it tries to send it, and notes the
acknowledgement after.  This module decides *what* goes into that file; the
shell (``shared.bus.outbox_file``) writes it.

Format: a sequence of records, each ``length (4 bytes, big endian) | crc32
(4 bytes) | kind (1 byte) | id (UTF-8) | b"\\n" | body``, where length and
crc cover everything after the crc.  Kinds: ``E`` an event (id
``boot_id:seq``, body the event's JSON, exactly what goes on the wire), ``A``
acknowledged by the stream, ``D`` dropped by the outbox's bound.  Why a
length and a checksum: a crash can leave the last record half written (a torn
write); reading stops at the first record that is short or does not check out,
and everything before it is kept.  Why ids in the ack records instead of
rewriting the file on every ack: appending is one ``write`` and cannot tear
an earlier record; the file is compacted when nothing is pending (truncated to
zero, the usual case while NATS is up) or when it holds much more than what is
pending.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Final

_HEADER: Final = struct.Struct(">II")
MAX_RECORD: Final = 16 * 1024 * 1024
"""A length beyond this is garbage, not a record (NATS payloads are at most a few MiB)."""

COMPACT_SLACK: Final = 1024 * 1024
"""Bytes of acknowledged or dropped records tolerated beside the pending ones before a rewrite."""


class Kind(Enum):
    EVENT = b"E"
    ACKED = b"A"
    DROPPED = b"D"


@dataclass(frozen=True, slots=True)
class Record:
    kind: Kind
    id: str
    body: bytes = b""


def encode_record(record: Record) -> bytes:
    """One framed record."""
    ident = record.id.encode()
    if b"\n" in ident:
        raise ValueError(f"record id contains a newline: {record.id!r}")
    content = record.kind.value + ident + b"\n" + record.body
    return _HEADER.pack(len(content), zlib.crc32(content)) + content


@dataclass(frozen=True, slots=True)
class Parsed:
    """What a file holds: its good records and where they end (``valid_length`` ≤ the file's size)."""

    records: tuple[Record, ...]
    valid_length: int
    torn: bool
    """True when bytes after the last good record were ignored (a crash in mid-write)."""


def parse(data: bytes) -> Parsed:
    """Every good record up to the first one that is short, too long or fails its checksum."""
    records: list[Record] = []
    pos = 0
    while pos + _HEADER.size <= len(data):
        length, crc = _HEADER.unpack_from(data, pos)
        start = pos + _HEADER.size
        content = data[start : start + length]
        if not 2 <= length <= MAX_RECORD or len(content) < length or zlib.crc32(content) != crc:
            break
        record = _decode_content(content)
        if record is None:
            break
        records.append(record)
        pos = start + length
    return Parsed(tuple(records), pos, torn=pos != len(data))


def _decode_content(content: bytes) -> Record | None:
    try:
        kind = Kind(content[:1])
    except ValueError:
        return None
    ident, sep, body = content[1:].partition(b"\n")
    if not sep:
        return None
    try:
        return Record(kind, ident.decode(), body)
    except UnicodeDecodeError:
        return None


def pending(records: Iterable[Record]) -> list[Record]:
    """The events neither acknowledged nor dropped, in the order they were written."""
    events: dict[str, Record] = {}
    for record in records:
        if record.kind is Kind.EVENT:
            events.setdefault(record.id, record)
        else:
            events.pop(record.id, None)
    return list(events.values())


@dataclass(slots=True)
class OutboxLog:
    """The file's bookkeeping: which events are pending, how many bytes the file has, when to compact.

    Every method returns the bytes to append (the shell writes them as they
    are); ``compaction`` says when the file should be replaced by
    ``snapshot()`` (empty when nothing is pending).
    """

    size: int = 0
    _pending: dict[str, int] = field(default_factory=dict)
    """id → its record's length, in write order."""
    _bodies: dict[str, bytes] = field(default_factory=dict)

    @classmethod
    def restore(cls, records: Iterable[Record]) -> OutboxLog:
        """The state after a fresh, compacted file holding ``pending(records)``."""
        log = cls()
        for record in pending(records):
            log.event(record.id, record.body)
        return log

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, ident: object) -> bool:
        return ident in self._pending

    def event(self, ident: str, body: bytes) -> bytes:
        """A new event to keep until ``acked`` or ``dropped``."""
        data = encode_record(Record(Kind.EVENT, ident, body))
        self._pending[ident] = len(data)
        self._bodies[ident] = body
        self.size += len(data)
        return data

    def acked(self, ident: str) -> bytes:
        return self._settle(Kind.ACKED, ident)

    def dropped(self, ident: str) -> bytes:
        return self._settle(Kind.DROPPED, ident)

    def _settle(self, kind: Kind, ident: str) -> bytes:
        if self._pending.pop(ident, None) is None:
            return b""
        del self._bodies[ident]
        data = encode_record(Record(kind, ident))
        self.size += len(data)
        return data

    def live_bytes(self) -> int:
        """Bytes the pending events take in a compacted file."""
        return sum(self._pending.values())

    def compaction(self) -> bool:
        """Time to replace the file: nothing pending (and something to remove), or too much dead weight."""
        if not self._pending:
            return self.size > 0
        return self.size > 2 * self.live_bytes() + COMPACT_SLACK

    def snapshot(self) -> bytes:
        """The compacted file: the pending events only, in order (the shell then sets ``size``)."""
        data = b"".join(encode_record(Record(Kind.EVENT, i, self._bodies[i])) for i in self._pending)
        self.size = len(data)
        return data
