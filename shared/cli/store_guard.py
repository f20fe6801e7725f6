"""``lifeline up``: reopen JetStream once its store's filesystem has room again (no nats-server restart).

What nats-server 2.x does when the filesystem under its store is full (seen
with 2.15.1; docs/operations.md, "Disk space"): the write fails with ENOSPC,
the stream's file store records a *critical write error* and keeps it: every
later publish to that stream goes unanswered (clients time out), even after
space is freed, and a plain config reload (SIGHUP) changes nothing.  What
reopens the stores without a restart (clients stay connected, nothing
stored is lost) is a reload with JetStream disabled followed by one with it
enabled again: the server shuts JetStream down and recovers every stream
from disk.  The supervisor owns the server's config file, so it can do that.

When: the server gives no signal a client can read (standalone, the error is
only logged), so the supervisor watches the free space under the store.  Once
it fell below ``LOW`` (the server may have failed a write), the store is
reopened as soon as there is ``HIGH`` free again.  A reopen the server did not
need costs a few milliseconds of JetStream answering "unavailable", which every
service rides out (they retry).
"""

from __future__ import annotations

import enum
import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MIB = 1024 * 1024
LOW = 8 * MIB
"""Free bytes under which nats-server may fail a write (a message, an index, a consumer's state)."""
HIGH = 32 * MIB
"""Free bytes that make reopening worthwhile (room for the backlog the services resend)."""


class Step(enum.Enum):
    FULL = "full"
    """Free space fell below ``LOW``: say so once."""
    REOPEN = "reopen"
    """There is room again: disable and re-enable JetStream."""


@dataclass(slots=True)
class StoreWatch:
    """The decision, from free-space readings (pure)."""

    low: int = LOW
    high: int = HIGH
    tripped: bool = False

    def observe(self, free: int) -> Step | None:
        if free < self.low:
            if self.tripped:
                return None
            self.tripped = True
            return Step.FULL
        if self.tripped and free >= self.high:
            self.tripped = False
            return Step.REOPEN
        return None


# --------------------------------------------------------------------------- the supervisor's side


def jetstream_enabled(port: int) -> bool | None:
    """What the server's INFO greeting says (``"jetstream": true`` while JetStream runs); None: no answer."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            line = s.recv(65536).split(b"\r\n", 1)[0]
    except OSError:
        return None
    if not line.startswith(b"INFO "):
        return None
    try:
        info = json.loads(line[5:])
    except ValueError:
        return None
    return bool(info.get("jetstream")) if isinstance(info, dict) else None


def _reload_until(proc: subprocess.Popen[bytes], port: int, enabled: bool, timeout: float) -> bool:
    """SIGHUP the server, then poll its greeting until JetStream is ``enabled`` (False on timeout)."""
    proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if jetstream_enabled(port) is enabled:
            return True
        time.sleep(0.05)
    return False


def reopen_jetstream(
    proc: subprocess.Popen[bytes], port: int, write_config: Callable[[bool], None], timeout: float = 10.0
) -> bool:
    """Reload the server with JetStream off, then on: every stream is recovered from disk, write errors gone.

    ``write_config(enabled)`` writes the server's config file with JetStream
    enabled or not; the file is left enabled whatever happens.
    """
    try:
        write_config(False)
        off = _reload_until(proc, port, False, timeout)
    finally:
        write_config(True)
    return _reload_until(proc, port, True, timeout) and off


class StoreGuard:
    """Watch the store's free space every tick; reopen JetStream when it is back (``Supervisor.watch``)."""

    def __init__(self, store: Path, port: int, write_config: Callable[[bool], None]) -> None:
        self.store, self.port, self.write_config = store, port, write_config
        self.watch = StoreWatch()
        self.reopened = 0

    def tick(self, proc: subprocess.Popen[bytes] | None) -> None:
        try:
            free = shutil.disk_usage(self.store).free
        except OSError:
            return
        step = self.watch.observe(free)
        if step is Step.FULL:
            print(
                f"lifeline up: the JetStream store {self.store} has {free // 1024} KiB free: nats-server "
                "cannot store events; the services keep them, JetStream is reopened once there is room",
                file=sys.stderr,
            )
        elif step is Step.REOPEN and proc is not None and proc.poll() is None:
            ok = reopen_jetstream(proc, self.port, self.write_config)
            self.reopened += 1
            said = "reopened" if ok else "could not be reopened (see nats-server's log)"
            print(f"lifeline up: JetStream {said}: {free // MIB} MiB free in {self.store}", file=sys.stderr)
