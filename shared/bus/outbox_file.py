"""The durable outbox's file: the IO shell around ``shared.bus.core.outbox_log``.

Durability policy (docs/bus.md, "Durable outbox"):

- a durable event is written (one ``write`` to the file, no buffering in the
  process) by ``Publisher.publish`` before it returns: from then on it
  survives the death of the process, ``kill -9`` included, because the kernel
  holds it;
- ``fsync`` runs in a worker thread, coalesced (one ``fsync`` covers every
  write before it), so a power loss can lose only what was written during the
  last ``fsync`` -- and the VRRP loop never waits on the disk;
- heartbeats (tracker results, real-server checks) are not written: the next
  one supersedes them, and the checker publishes one on start anyway.

One process owns a file at a time: an exclusive ``flock`` on ``<file>.lock``
(a second process of the same service and replica gets ``OutboxBusy``).
Replicas (checker, notifier) get a random id per start unless told one, so a
replica also *adopts* its service's files that no live process holds
(``adopt``, a glob such as ``checker-*.log``): their pending events move into
its own file, oldest file first, and the orphan is removed.  A
failing disk (full, read-only) never stops the publisher: the error is logged
once, counted, and events go on in memory only.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import threading
from pathlib import Path

from shared.bus.core.outbox_log import OutboxLog, Record, parse, pending
from shared.state_dirs import make_shared_dirs

log = logging.getLogger("lifeline.bus")


class OutboxBusy(RuntimeError):
    """Another live process holds this outbox file."""


class OutboxFile:
    """Append-only record file with a lock, coalesced fsync and compaction."""

    def __init__(self, path: Path, adopt: str | None = None) -> None:
        """Lock ``path``, read it (and the orphans ``adopt`` matches), write it back compacted.

        A torn last record (a crash in mid-write) is cut off there.
        """
        self.path = path
        self.errors = 0
        """Writes or syncs that failed (disk full, read-only...): those events live in memory only."""
        self.syncs = 0
        self._adopted_locks: list[int] = []
        make_shared_dirs(path.parent)
        self._lock_fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise OutboxBusy(f"{path} is in use by another process") from None
        try:
            self._open(path, adopt)
        except BaseException:
            os.close(self._lock_fd)
            raise
        finally:
            for fd in self._adopted_locks:
                os.close(fd)

    def _open(self, path: Path, adopt: str | None) -> None:
        self.replay: list[Record] = _read(path)
        """The events previous processes left unacknowledged, oldest first."""
        orphans = self._adopt(adopt) if adopt else []
        for orphan in orphans:
            self.replay += _read(orphan)
        self._log = OutboxLog.restore(self.replay)
        self._fd = -1
        self._fd_lock = threading.Lock()
        self._dirty = asyncio.Event()
        self._failing = False
        self._replace(self._log.snapshot())
        for orphan in orphans:  # only now that their events are safe in our file
            log.info("bus outbox %s: adopted %s (a replica that is gone)", path, orphan.name)
            orphan.unlink(missing_ok=True)
            Path(f"{orphan}.lock").unlink(missing_ok=True)

    def _adopt(self, pattern: str) -> list[Path]:
        """The other files ``pattern`` matches whose lock is free, oldest first; their locks stay held."""
        found: list[Path] = []
        candidates = sorted(self.path.parent.glob(pattern), key=lambda p: p.stat().st_mtime)
        for other in candidates:
            if other == self.path or other.suffix != self.path.suffix:
                continue
            fd = os.open(f"{other}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self._adopted_locks.append(fd)
            found.append(other)
        return found

    def __len__(self) -> int:
        """Events in the file waiting for an acknowledgement."""
        return len(self._log)

    # ------------------------------------------------------------------ records

    def event(self, ident: str, body: bytes) -> None:
        if not self._append(self._log.event(ident, body)):
            self._log.dropped(ident)  # not in the file: nothing to settle there later
            self._log.size = os.fstat(self._fd).st_size

    def acked(self, ident: str) -> None:
        self._settled(self._log.acked(ident))

    def dropped(self, ident: str) -> None:
        self._settled(self._log.dropped(ident))

    def _settled(self, data: bytes) -> None:
        if data and not (self._log.compaction() and self._compact()):
            self._append(data)  # no compaction now (or a sync holds the file): note it, compact later

    def _append(self, data: bytes) -> bool:
        """Append whole records or nothing: a short write (disk full) is cut off again."""
        before = self._log.size - len(data)
        try:
            written = os.write(self._fd, data)
            if written != len(data):
                os.ftruncate(self._fd, before)
                raise OSError(errno.ENOSPC, f"short write ({written} of {len(data)} bytes)")
        except OSError as exc:
            self._log.size = before
            self._failed("write", exc)
            return False
        self._dirty.set()
        self._recovered()
        return True

    # ------------------------------------------------------------------ compaction

    def _compact(self) -> bool:
        """Truncate (nothing pending) or rewrite; False if a sync holds the file (then after the sync)."""
        if not self._fd_lock.acquire(blocking=False):
            return False
        try:
            if not len(self._log):
                os.ftruncate(self._fd, 0)
                self._log.size = 0
            else:
                self._replace(self._log.snapshot())
        except OSError as exc:
            self._failed("compact", exc)
            return False
        finally:
            self._fd_lock.release()
        return True

    def _replace(self, data: bytes) -> None:
        """Write ``data`` to a new file, sync it, rename it over the old one, and append to it from now on."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_CLOEXEC, 0o640)
        try:
            os.write(fd, data)
            os.fsync(fd)
            os.rename(tmp, self.path)
        except BaseException:
            os.close(fd)
            raise
        _sync_dir(self.path.parent)
        old, self._fd = self._fd, fd
        if old >= 0:
            os.close(old)

    # ------------------------------------------------------------------ fsync

    async def sync_forever(self) -> None:
        """Fsync after writes, in a thread, one fsync for every write made before it starts."""
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            await asyncio.to_thread(self._sync)
            if self._log.compaction():  # one an ack could not do while this sync held the file
                self._compact()

    def sync_now(self) -> None:
        """A synchronous fsync (close, tests)."""
        self._sync()

    def _sync(self) -> None:
        with self._fd_lock:
            try:
                os.fsync(self._fd)
                self.syncs += 1
            except OSError as exc:
                self.errors += 1
                log.warning("bus outbox %s: fsync failed: %s", self.path, exc)

    def _failed(self, what: str, exc: OSError) -> None:
        self.errors += 1
        if not self._failing:
            log.error("bus outbox %s: %s failed (%s); events stay in memory only", self.path, what, exc)
        self._failing = True

    def _recovered(self) -> None:
        if self._failing:
            log.warning("bus outbox %s: writing works again (%d failures)", self.path, self.errors)
        self._failing = False

    def close(self) -> None:
        """Sync and release the file (what is pending stays for the next process)."""
        with contextlib.suppress(OSError):
            self.sync_now()
        os.close(self._fd)
        os.close(self._lock_fd)


def _read(path: Path) -> list[Record]:
    """The pending events of one file (none if it does not exist); a torn tail is logged and ignored."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    parsed = parse(data)
    if parsed.torn:
        log.warning(
            "bus outbox %s: %d bytes after the last whole record ignored (cut short by a crash)",
            path,
            len(data) - parsed.valid_length,
        )
    return pending(parsed.records)


def _sync_dir(path: Path) -> None:
    """Make a rename durable: fsync the directory that holds the entry."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
