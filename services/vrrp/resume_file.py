"""The resume records on disk: one small mmap'd file per instance, stamped at every advert without a syscall.

Why mmap: a MASTER stamps its record at every advert (1,000 instances at
0.1 s is 10,000 stamps a second), and a store into a shared mapping is a
memory write, while ``write``/``pwrite`` would be a syscall each.  The
page belongs to the kernel's page cache, so what the last store wrote is
what the next process reads even after ``kill -9``; no ``fsync`` is needed,
because a record is worthless after a reboot anyway (``core/resume.py``
refuses another boot's).

Layout: eight native 64-bit words (64 bytes): a magic, the boot id (two
words), the plan's fingerprint (two words), the MASTER flag, then the
CLOCK_BOOTTIME of the last advert twice.  Each word is one aligned 8-byte
store, but a process can still die between two stores: the timestamp is
written twice and read only when both copies agree, and the MASTER flag is
set after the timestamps, cleared alone.  A torn or foreign file reads as no
record: the instance starts as today.

Files are named by a digest of the instance name under
``<state_dir>/<node>/vrrp-resume/``; a record is read once at start, before
the new process rewrites the file fresh (not MASTER).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import mmap
import os
import time
import uuid
from pathlib import Path

import msgspec

from services.vrrp.core.params import InstancePlan
from services.vrrp.core.resume import ResumeRecord

log = logging.getLogger("lifeline.vrrp")

SIZE = 64
MAGIC = int.from_bytes(b"LLVRRPR1", "little")
_MAGIC, _BOOT, _PRINT, _MASTER, _TS_A, _TS_B = 0, 1, 3, 5, 6, 7
BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")


def boot_id() -> bytes:
    """This boot's id (16 bytes): BOOTTIME restarts from zero at each boot, so a record names its boot."""
    return uuid.UUID(BOOT_ID_PATH.read_text().strip()).bytes


def now_ns() -> int:
    """CLOCK_BOOTTIME in ns: monotonic and counting across a suspend (vDSO, no syscall)."""
    return time.clock_gettime_ns(time.CLOCK_BOOTTIME)


def fingerprint(plan: InstancePlan) -> bytes:
    """A digest of everything the instance is built from: any change is another router, not a resume."""
    encoded = msgspec.msgpack.encode(plan, enc_hook=_as_text, order="deterministic")
    return hashlib.blake2b(encoded, digest_size=16).digest()


def _as_text(value: object) -> str:
    """Addresses and the like (msgpack has no type for them): their type and text, stable across processes."""
    return f"{type(value).__name__}:{value}"


def _file_name(instance: str) -> str:
    return hashlib.blake2b(instance.encode(), digest_size=12).hexdigest() + ".rec"


def _words(raw: bytes | bytearray | mmap.mmap) -> memoryview:
    return memoryview(raw).cast("Q")


class Slot:
    """One instance's mapped record; ``stamp`` is the per-advert hot path."""

    def __init__(self, path: Path, mapped: mmap.mmap) -> None:
        self.path = path
        self._map = mapped
        self._words = _words(mapped)

    def stamp(self, at_ns: int, master: bool) -> None:
        """An advert left at ``at_ns`` (taken before the send); ``master``: it was a MASTER's."""
        words = self._words
        if not master:
            words[_MASTER] = 0
            return
        words[_TS_A] = at_ns
        words[_TS_B] = at_ns
        words[_MASTER] = 1

    def describe(self, plan: InstancePlan) -> None:
        """A reload changed the instance in place: the record names the new plan (torn: reads as foreign)."""
        self._map[24:40] = fingerprint(plan)

    def clear(self) -> None:
        """No longer MASTER (a transition, a goodbye): a restart must not resume."""
        self._words[_MASTER] = 0

    def close(self) -> None:
        self._words.release()
        self._map.close()


class ResumeFiles:
    """The node's record directory: read the old records at start, map fresh ones for the new runners."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._boot: bytes | None = None
        self._failed = False

    @property
    def boot(self) -> bytes:
        if self._boot is None:
            self._boot = boot_id()
        return self._boot

    def read(self, instance: str) -> ResumeRecord | None:
        """The record the previous process left for ``instance``; None when missing, foreign or torn."""
        try:
            raw = (self.directory / _file_name(instance)).read_bytes()
        except OSError:
            return None
        if len(raw) != SIZE:
            return None
        words = _words(raw)
        if words[_MAGIC] != MAGIC or words[_TS_A] != words[_TS_B] or words[_MASTER] not in (0, 1):
            return None
        return ResumeRecord(
            boot_id=raw[8:24], fingerprint=raw[24:40], master=words[_MASTER] == 1, last_advert_ns=words[_TS_A]
        )

    def open(self, plan: InstancePlan) -> Slot | None:
        """A fresh record (not MASTER) for ``plan``, mapped; None (said once) if the directory is unusable."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            path = self.directory / _file_name(plan.name)
            content = bytearray(SIZE)
            words = _words(content)
            words[_MAGIC] = MAGIC
            words.release()
            content[8:24] = self.boot
            content[24:40] = fingerprint(plan)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(content)
            os.replace(tmp, path)  # a reader sees the old record or the new one, never half of one
            fd = os.open(path, os.O_RDWR)
            try:
                mapped = mmap.mmap(fd, SIZE)
            finally:
                os.close(fd)
        except OSError as exc:
            if not self._failed:
                log.warning("no resume records in %s (%s): restarts will not resume", self.directory, exc)
            self._failed = True
            return None
        return Slot(path, mapped)

    def forget(self, instance: str) -> None:
        """The instance is gone from the configuration: its record too."""
        with contextlib.suppress(OSError):
            (self.directory / _file_name(instance)).unlink()

    def prune(self, keep: set[str]) -> None:
        """Remove the records of instances not in ``keep`` (a process starting with a new file)."""
        wanted = {_file_name(name) for name in keep}
        with contextlib.suppress(OSError):
            for path in self.directory.glob("*.rec"):
                if path.name not in wanted:
                    path.unlink(missing_ok=True)
