"""keepalived's notify FIFO, minus its one flaw: a full FIFO waits instead of dropping the line.

keepalived creates the FIFO (0644) if needed and opens it ``O_RDWR|O_NONBLOCK``:
opening never blocks, and with no reader lines wait in the pipe buffer.  When
the buffer is full keepalived drops the line (EAGAIN).  This sink waits for the
reader instead, for at most ``write_timeout`` seconds per line; past that bound
it raises a retryable ``DeliveryError`` (logged and counted in ``stats``), and
the core tries the same event again later.  Nothing is dropped and nothing is
written twice: a partially written line is finished before anything else, and
a re-delivery of the line last written is recognized by its event id.

The FIFO is created and opened through ``shared.safe_files.open_fifo``: never
through a symlink (``O_NOFOLLOW``), checked to be a FIFO on the descriptor,
its mode and owner set on the descriptor, in a directory others cannot swap
files in.  keepalived goes by path, so a symlink planted where the FIFO
belongs made it create and chown a file elsewhere; here that is refused with
a non-retryable ``DeliveryError`` naming the reason.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

from services.notifier.core.fifos import FifoScope
from services.notifier.core.formats import fifo_line, is_vrrp_event
from services.notifier.sinks.base import DeliveryContext, DeliveryError
from shared.events import Event, msg_id
from shared.safe_files import UnsafeFile, open_fifo

log = logging.getLogger("lifeline.notifier.fifo")

__all__ = ["FifoScope", "FifoSink", "FifoStats"]


@dataclass
class FifoStats:
    """What an operator needs to see a slow reader: lines written, waits, timeouts, seconds blocked."""

    lines: int = 0
    waits: int = 0
    timeouts: int = 0
    blocked_seconds: float = 0.0


class FifoSink:
    """Writes keepalived's FIFO lines to ``path``, in order, never dropping one."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        scope: FifoScope = "all",
        write_timeout: float = 10.0,
        mode: int = 0o644,
        owner: tuple[int, int] | None = None,
        report_deleted: bool = True,
        rs_init_notifies: bool = False,
        name: str = "fifo",
    ) -> None:
        """``owner``: (uid, gid) the FIFO is given to (``notify_fifo PATH user [group]``; needs root)."""
        self.name = name
        self.path = os.fspath(path)
        self.owner = owner
        self.scope = scope
        self.write_timeout = write_timeout
        self.mode = mode
        self.report_deleted = report_deleted
        self.rs_init_notifies = rs_init_notifies
        self.stats = FifoStats()
        self._fd: int | None = None
        self._pending = b""
        self._pending_id: str | None = None
        self._last_id: str | None = None
        self._writing = asyncio.Lock()
        """One writer at a time: deliveries and ``write_lines`` (a reload's state lines)."""

    def _wants(self, event: Event) -> bool:
        if self.scope == "all":
            return True
        return is_vrrp_event(event) == (self.scope == "vrrp")

    def open(self) -> int:
        """Create the FIFO if missing and open it like keepalived (never blocks), safely (see above).

        Raises ``DeliveryError`` (not retryable) when the path is unsafe, and
        ``OSError`` for what may pass (a missing directory, say).
        """
        if self._fd is None:
            try:
                self._fd = open_fifo(self.path, mode=self.mode, owner=self.owner)
            except UnsafeFile as exc:
                log.error("%s: refused: %s", self.name, exc)
                raise DeliveryError(f"FIFO refused: {exc}", retryable=False) from None
        return self._fd

    async def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    async def deliver(self, event: Event, context: DeliveryContext) -> None:
        if not self._wants(event):
            return
        line = fifo_line(event, report_deleted=self.report_deleted, rs_init_notifies=self.rs_init_notifies)
        if line is None:
            return
        event_id = msg_id(event)
        if event_id == self._last_id:
            return  # a re-delivery of the line already written whole
        async with self._writing:
            await self._write(line, event_id)

    async def write_lines(self, lines: Sequence[str]) -> None:
        """Write lines that are no event's (a reload's state lines), in order, between deliveries.

        Raises ``DeliveryError`` as ``deliver`` does (a full FIFO for
        ``write_timeout``); a line left half written is finished before the
        next delivery, so the FIFO never carries a broken line.
        """
        async with self._writing:
            for line in lines:
                await self._write(line, None)

    async def _write(self, line: str, event_id: str | None) -> None:
        try:
            fd = self.open()
        except OSError as exc:
            raise DeliveryError(f"cannot open FIFO {self.path}: {exc}", retryable=True) from exc
        if self._pending and (event_id is None or self._pending_id != event_id):
            await self._flush(fd, self._pending_id)  # finish the half-written line first
        if event_id is None or self._pending_id != event_id:
            self._pending, self._pending_id = line.encode("utf-8"), event_id
        await self._flush(fd, event_id)
        self.stats.lines += 1

    async def _flush(self, fd: int, event_id: str | None) -> None:
        """Write ``_pending`` completely, waiting for the reader up to ``write_timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.write_timeout
        while self._pending:
            try:
                written = os.write(fd, self._pending)
            except BlockingIOError:
                written = 0
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                raise DeliveryError(f"write to FIFO {self.path} failed: {exc}", retryable=True) from exc
            self._pending = self._pending[written:]
            if not self._pending:
                break
            remaining = deadline - loop.time()
            if remaining <= 0:
                self.stats.timeouts += 1
                log.warning("FIFO %s: reader too slow, line waited %.1fs", self.path, self.write_timeout)
                raise DeliveryError(
                    f"FIFO {self.path} full for {self.write_timeout}s (reader too slow)", retryable=True
                )
            self.stats.waits += 1
            started = loop.time()
            await _wait_writable(loop, fd, min(remaining, 0.05))
            self.stats.blocked_seconds += loop.time() - started
        self._pending_id = None
        if event_id is not None:  # a reload's line leaves the memory of the last event as it was
            self._last_id = event_id


async def _wait_writable(loop: asyncio.AbstractEventLoop, fd: int, timeout: float) -> None:
    """Wait until ``fd`` is writable or ``timeout`` passes.

    Why a timeout even with epoll: a pipe becomes writable as soon as one page
    is free, while a line needs room for all of it to be written atomically; the
    short timeout also keeps ``write_timeout`` accurate.
    """
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_writer(fd, wake)
    try:
        await asyncio.wait_for(ready, timeout)
    except TimeoutError:
        pass
    finally:
        loop.remove_writer(fd)
