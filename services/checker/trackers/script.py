"""``vrrp_script``: run a command every ``interval`` and turn exit codes into OK/KO.

Why asyncio subprocesses in their own session: a timed-out script may have
children, and only a process group can be signalled as a whole.  On
``timeout`` the group gets SIGTERM and SIGKILL 2 s later (``probes.misc``'s
``terminate_group``, shared with MISC_CHECK); the timeout counts as a failure
and is reported at once, not after the kill grace.  A run that is still going
when the next is due is skipped ("already running"), as keepalived does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time

from services.checker.core.risefall import RiseFall
from services.checker.parent_death import die_with_parent
from services.checker.probes.misc import KILL_GRACE, terminate_group
from services.checker.trackers.base import Counters, Report, TrackerOutcome
from shared.config.model_vrrp import VrrpScript
from shared.events import TrackerKind

log = logging.getLogger("lifeline.checker.script")


class ScriptTracker:
    kind = TrackerKind.SCRIPT

    def __init__(
        self,
        spec: VrrpScript,
        report: Report,
        *,
        user: str | None = None,
        group: str | None = None,
        baseline: bool | None = None,
        kill_grace: float = KILL_GRACE,
    ) -> None:
        if spec.script is None:
            raise ValueError(f"vrrp_script {spec.name}: no script")
        self.name = spec.name
        self.spec = spec
        self.argv = list(spec.script.argv)
        self.weight = spec.weight
        self.reverse = spec.weight_reverse
        self.user = user
        self.group = group
        self.interval = max(0.01, spec.interval)
        self.timeout = spec.timeout if spec.timeout is not None else self.interval
        self.kill_grace = kill_grace
        self.risefall = RiseFall(spec.rise, spec.fall, init_fail=spec.init_fail, baseline=baseline)
        self.counters = Counters()
        self._report = report
        self._running: asyncio.Task[None] | None = None

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        try:
            while True:
                if self._running is None or self._running.done():
                    self._running = asyncio.create_task(self._once(), name=f"vrrp_script {self.name}")
                else:
                    self.counters.skipped += 1
                    log.info("vrrp_script %s: previous run still going, skipped", self.name)
                next_at += self.interval
                await asyncio.sleep(max(0.0, next_at - loop.time()))
        finally:
            if self._running is not None and not self._running.done():
                self._running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._running

    async def _once(self) -> None:
        start = time.perf_counter()
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=die_with_parent,
                user=self.user,
                group=self.group,
            )
        except (OSError, ValueError, KeyError) as exc:  # missing file, bad user...
            self._result(False, f"cannot run: {exc}", None, start)
            return
        try:
            async with asyncio.timeout(self.timeout):
                status = await proc.wait()
        except TimeoutError:
            self._result(False, f"timed out after {self.timeout:g}s", None, start)
            await terminate_group(proc, self.kill_grace)
            return
        finally:
            if proc.returncode is None:  # cancelled: never leave the script behind
                await asyncio.shield(terminate_group(proc, self.kill_grace))
        if status < 0:
            self._result(False, f"killed by signal {-status}", status, start)
        else:
            self._result(status == 0, f"exit {status}", status, start)

    def _result(self, success: bool, detail: str, code: int | None, start: float) -> None:
        latency = round((time.perf_counter() - start) * 1000.0, 3)
        self.counters.record(success, detail, latency)
        ok = self.risefall.feed(success)
        self._report(TrackerOutcome(ok=ok, detail=detail, exit_code=code))

    def state(self) -> dict[str, object]:
        return {"counter": self.risefall.counter, "rise": self.risefall.rise, "fall": self.risefall.fall}


def run_as(
    spec: VrrpScript, default_user: str | None, default_group: str | None
) -> tuple[str | None, str | None]:
    """Who runs the script: its own ``user``, else the global ``script_user``; None when that is us."""
    user = spec.user or (spec.script.user if spec.script else None) or default_user
    group = spec.group or (spec.script.group if spec.script else None)
    if user is None:
        return None, None
    if spec.user is None and (spec.script is None or spec.script.user is None):
        group = group or default_group
    if user == "root" and os.geteuid() == 0 and group in (None, "root"):
        return None, None
    return user, group
