"""The durable outbox's record format and bookkeeping (``shared.bus.core.outbox_log``) and its file shell."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from shared.bus import Publisher
from shared.bus.core.failures import FailureEpisode
from shared.bus.core.outbox_log import (
    COMPACT_SLACK,
    Kind,
    OutboxLog,
    Record,
    encode_record,
    parse,
    pending,
)
from shared.bus.outbox_file import OutboxBusy, OutboxFile
from shared.events import (
    CheckerKind,
    RealServerHealth,
    durable_transition,
    health_subject,
    msg_id,
    subject_for,
)
from shared.lab.wait import await_until


def _events(n: int) -> list[Record]:
    return [Record(Kind.EVENT, f"boot:{i}", b'{"seq":%d}' % i) for i in range(1, n + 1)]


def test_records_round_trip_in_order() -> None:
    records = [*_events(3), Record(Kind.ACKED, "boot:1"), Record(Kind.DROPPED, "boot:2")]
    parsed = parse(b"".join(encode_record(r) for r in records))
    assert parsed.records == tuple(records)
    assert not parsed.torn
    assert pending(parsed.records) == [records[2]]


@pytest.mark.parametrize("cut", [1, 5, 9, 12])
def test_a_torn_last_record_is_ignored_and_the_rest_kept(cut: int) -> None:
    whole = b"".join(encode_record(r) for r in _events(2))
    last = encode_record(_events(3)[2])
    parsed = parse(whole + last[:cut])
    assert [r.id for r in parsed.records] == ["boot:1", "boot:2"]
    assert parsed.torn and parsed.valid_length == len(whole)


def test_a_corrupted_record_ends_the_readable_part() -> None:
    data = bytearray(b"".join(encode_record(r) for r in _events(3)))
    first = len(encode_record(_events(1)[0]))
    data[first + 12] ^= 0xFF  # a byte inside the second record's content
    parsed = parse(bytes(data))
    assert [r.id for r in parsed.records] == ["boot:1"]
    assert parsed.torn


def test_a_huge_length_is_garbage_not_a_record() -> None:
    assert parse(b"\xff\xff\xff\xff" + b"\0" * 64).records == ()


def test_ids_with_a_newline_are_refused() -> None:
    with pytest.raises(ValueError, match="newline"):
        encode_record(Record(Kind.ACKED, "a\nb"))


def test_log_compacts_to_nothing_once_everything_is_acknowledged() -> None:
    log = OutboxLog()
    for r in _events(2):
        log.event(r.id, r.body)
    assert not log.compaction()
    log.acked("boot:1")
    assert not log.compaction() and len(log) == 1
    log.acked("boot:2")
    assert log.compaction() and log.snapshot() == b"" and log.size == 0
    assert log.acked("boot:2") == b""  # settling twice writes nothing


def test_log_rewrites_when_dead_records_outweigh_the_pending_ones() -> None:
    log = OutboxLog()
    body = b"x" * 1000
    log.event("keep", body)
    i = 0
    while not log.compaction():
        log.event(f"e{i}", body)
        log.dropped(f"e{i}")
        i += 1
    assert log.size > COMPACT_SLACK
    snapshot = log.snapshot()
    assert [r.id for r in parse(snapshot).records] == ["keep"] and log.size == len(snapshot)


def test_restore_keeps_only_pending_events_in_order() -> None:
    records = [*_events(4), Record(Kind.ACKED, "boot:2")]
    log = OutboxLog.restore(records)
    assert [r.id for r in parse(log.snapshot()).records] == ["boot:1", "boot:3", "boot:4"]


def test_file_survives_the_process_and_cuts_a_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "outbox" / "vrrp.log"
    first = OutboxFile(path)
    first.event("b:1", b"one")
    first.event("b:2", b"two")
    first.acked("b:1")
    first.event("b:3", b"three")
    # the process dies in the middle of the next write: no close(), half a record at the end
    with path.open("ab") as f:
        f.write(encode_record(Record(Kind.EVENT, "b:4", b"four"))[:7])
    _abandon(first)

    second = OutboxFile(path)
    assert [(r.id, r.body) for r in second.replay] == [("b:2", b"two"), ("b:3", b"three")]
    assert parse(path.read_bytes()).records == tuple(second.replay)  # rewritten compacted, tail cut
    second.acked("b:2")
    second.acked("b:3")
    assert path.stat().st_size == 0
    second.close()


def _abandon(f: OutboxFile) -> None:
    """What the death of its process does to a file: descriptors closed, nothing synced or compacted."""
    os.close(f._fd)
    os.close(f._lock_fd)


def test_one_process_per_file(tmp_path: Path) -> None:
    path = tmp_path / "checker.log"
    owner = OutboxFile(path)
    with pytest.raises(OutboxBusy):
        OutboxFile(path)
    owner.close()
    OutboxFile(path).close()


def test_failure_episode_says_start_summary_and_end_only() -> None:
    ep = FailureEpisode("bus: publishing", summary_every=60)
    said = [ep.failed(t, "TimeoutError") for t in (0.0, 1.0, 2.0, 61.0, 62.0)]
    assert [m is not None for m in said] == [True, False, False, True, False]
    assert ep.failing and ep.failures == 5
    assert said[3] is not None and "after 4 attempts in 61 s" in said[3]
    end = ep.succeeded(70.0)
    assert end is not None and "5 failed attempts" in end and not ep.failing
    assert ep.succeeded(71.0) is None and ep.total == 5


def test_a_replica_adopts_the_files_of_replicas_that_are_gone(tmp_path: Path) -> None:
    gone = OutboxFile(tmp_path / "checker-aaa.log")
    gone.event("a:1", b"from a")
    _abandon(gone)
    alive = OutboxFile(tmp_path / "checker-bbb.log")
    alive.event("b:1", b"from b")
    newcomer = OutboxFile(tmp_path / "checker-ccc.log", adopt="checker-*.log")
    assert [r.id for r in newcomer.replay] == ["a:1"]  # b is alive: its file stays its own
    assert not (tmp_path / "checker-aaa.log").exists()
    assert (tmp_path / "checker-bbb.log").exists()
    newcomer.close()
    alive.close()
    again = OutboxFile(tmp_path / "checker-ddd.log", adopt="checker-*.log")
    assert sorted(r.id for r in again.replay) == ["a:1", "b:1"]
    again.close()


def test_an_ack_while_a_sync_holds_the_file_is_kept_and_compacted_after_the_sync(tmp_path: Path) -> None:
    path = tmp_path / "vrrp.log"
    f = OutboxFile(path)
    f.event("b:1", b"one")
    with f._fd_lock:  # the syncer thread is in fsync: no compaction now
        f.acked("b:1")
    assert [r.kind for r in parse(path.read_bytes()).records] == [Kind.EVENT, Kind.ACKED]

    async def syncer_compacts() -> None:
        task = asyncio.create_task(f.sync_forever())
        try:
            await await_until("compacted after the sync", lambda: path.stat().st_size == 0, 10)
        finally:
            task.cancel()

    asyncio.run(syncer_compacts())
    f.close()


def test_replayed_events_keep_their_subject_and_id(tmp_path: Path) -> None:
    """A real-server transition comes back on ``health`` (it decodes as a plain ``RealServerHealth``)."""
    path = tmp_path / "checker.log"
    health = RealServerHealth(virtual="v", real="r", up=False, checker=CheckerKind.TCP_CHECK, changed=True)
    first = Publisher("n1", outbox_path=path)
    sent = [first.publish(durable_transition(health)), first.publish(health)]  # the heartbeat copy: not kept
    first._file.close()  # type: ignore[union-attr]  # the process is gone
    second = Publisher("n1", outbox_path=path)
    replayed = list(second._outbox._items)
    assert [msg_id(e) for e in replayed] == [msg_id(sent[0])]  # type: ignore[arg-type]
    assert subject_for(replayed[0]) == health_subject("n1", "v", "r")  # type: ignore[arg-type]
    second._file.close()  # type: ignore[union-attr]
