"""The notify FIFO scripts: each reads its FIFO while this process delivers that FIFO.

keepalived starts ``notify_fifo_script`` (``vrrp_``, ``lvs_``) once the FIFO
exists, with the FIFO's path as its last argument, never waits for it, logs
when it ends, and sends it SIGTERM when keepalived stops; at a reload it sends
SIGTERM and starts the script again with the new configuration.  Here the
same, with three choices:

- **One reader per FIFO**: the script runs in the replica that delivers the
  FIFO (the one holding its sink's lease; ``SinkRunner`` calls ``lead``), since
  two readers of one FIFO would share its lines between them.  keepalived too
  runs the global FIFO's script in one process only.
- **Through the script launcher** (``shared.scripts.runner.start_script``):
  the script's user, ``script_user`` or ``keepalived_script``, script
  security checked again at each start, the clean environment, a process
  group of its own, the parent-death signal.
- **At a stop the lines come first**: the sink finishes what it holds before
  the reader gets SIGTERM (keepalived sends SIGTERM, then its STOP lines; its
  sample script reads on until the FIFO closes), SIGKILL ``grace`` seconds
  later if it is still there.

A script that ends by itself is logged with its status and not started again
until the next reload or the next time this replica takes the FIFO over
(keepalived restarts it at a reload only).  At a reload the old script has
exited before the new one starts, so two readers never share the FIFO.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from shared.scripts import ScriptRequest
from shared.scripts.runner import KILL_GRACE, RunningScript, ScriptRefused, start_script

log = logging.getLogger("lifeline.notifier.fifo_script")


@dataclass(frozen=True)
class ReaderSpec:
    """A FIFO's reader: the request (argv ends with the FIFO's path) and how to make the FIFO exist first."""

    request: ScriptRequest
    ensure_fifo: Callable[[], object]
    """The FIFO sink's ``open``: keepalived starts the script only once the FIFO was created."""


class FifoReaders:
    """Starts, restarts and stops the reader of every FIFO this replica delivers, by sink name."""

    def __init__(self, *, grace: float = KILL_GRACE) -> None:
        self.grace = grace
        self._wanted: dict[str, ReaderSpec] = {}
        self._leading: set[str] = set()
        self._running: dict[str, RunningScript] = {}
        self._watchers: dict[str, asyncio.Task[None]] = {}
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    def want(self, readers: Mapping[str, ReaderSpec]) -> None:
        """The readers the configuration asks for (at start, and at each reload before ``restart``)."""
        self._wanted = dict(readers)

    def pids(self) -> dict[str, int]:
        """Sink name → the pid of its running reader (``status``, tests)."""
        return {name: r.pid for name, r in self._running.items() if r.returncode is None}

    async def lead(self, name: str, leading: bool) -> None:
        """``SinkRunner``'s hook: this replica starts (True) or stops (False) delivering sink ``name``."""
        async with self._locks[name]:
            if leading:
                self._leading.add(name)
                if name not in self._running:
                    await self._start(name)
            else:
                self._leading.discard(name)
                await self._stop(name)

    async def restart(self) -> None:
        """A reload: every reader gets SIGTERM and, if still configured here, starts again (keepalived)."""
        for name in sorted(set(self._running) | self._leading):
            async with self._locks[name]:
                await self._stop(name)
                if name in self._leading:
                    await self._start(name)

    async def stop(self) -> None:
        """SIGTERM to every reader left (the sinks stopped first), SIGKILL after ``grace``."""
        self._leading.clear()
        await asyncio.gather(*(self._stop_locked(name) for name in list(self._running)))

    async def _stop_locked(self, name: str) -> None:
        async with self._locks[name]:
            await self._stop(name)

    async def _start(self, name: str) -> None:
        spec = self._wanted.get(name)
        if spec is None:
            return
        program = spec.request.argv[0]
        try:
            spec.ensure_fifo()
        except Exception as exc:
            log.error("%s: %s not started: no FIFO (%s)", name, program, exc)
            return
        try:
            running = await start_script(spec.request)
        except ScriptRefused as exc:
            log.error("%s: %s not run: %s", name, program, exc)
            return
        except OSError as exc:
            log.error("%s: cannot start %s: %s", name, program, exc)
            return
        self._running[name] = running
        self._watchers[name] = asyncio.create_task(self._watch(name, running), name=f"fifo-script-{name}")
        log.info("%s: started %s (pid %d)", name, " ".join(spec.request.argv), running.pid)

    async def _watch(self, name: str, running: RunningScript) -> None:
        """keepalived's "notify fifo script terminated": log a reader that ended by itself."""
        code = await running.wait()
        script = running.launch.request.name
        log.warning("%s: FIFO script %s (pid %d) ended with status %d", name, script, running.pid, code)
        if self._running.get(name) is running:
            del self._running[name]
            self._watchers.pop(name, None)

    async def _stop(self, name: str) -> None:
        watcher = self._watchers.pop(name, None)
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        running = self._running.pop(name, None)
        if running is None:
            return
        code = await running.stop(self.grace)
        log.info("%s: FIFO script (pid %d) stopped, status %s", name, running.pid, code)
