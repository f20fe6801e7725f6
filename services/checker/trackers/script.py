"""``vrrp_script``: run a command every ``interval`` and turn exit codes into OK/KO.

Each run goes through the one script launcher (``shared.scripts.runner``):
keepalived's user resolution, a clean environment, its own session, the
parent-death signal.  On ``timeout`` the group gets SIGTERM and SIGKILL 2 s
later; the timeout counts as a failure and is reported at once, not after the
kill grace.  A run that is still going when the next is due is skipped
("already running"), as keepalived does.  A run the launcher refuses (the file
became unsafe after the configuration was read, the user is gone) fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from services.checker.core.risefall import RiseFall
from services.checker.trackers.base import Counters, Report, TrackerOutcome
from shared.config.model_vrrp import VrrpScript
from shared.events import TrackerKind
from shared.scripts import ScriptPolicy, ScriptRequest
from shared.scripts.runner import KILL_GRACE, ScriptRefused, run_script

log = logging.getLogger("lifeline.checker.script")


def script_request(spec: VrrpScript, policy: ScriptPolicy) -> ScriptRequest:
    """What a ``vrrp_script`` asks the launcher: its argv, its block's ``user [group]``, the global policy."""
    if spec.script is None:
        raise ValueError(f"vrrp_script {spec.name}: no script")
    return ScriptRequest(tuple(spec.script.argv), spec.user, spec.group, policy, f"vrrp_script {spec.name}")


class ScriptTracker:
    kind = TrackerKind.SCRIPT

    def __init__(
        self,
        spec: VrrpScript,
        report: Report,
        *,
        request: ScriptRequest | None = None,
        baseline: bool | None = None,
        kill_grace: float = KILL_GRACE,
    ) -> None:
        self.name = spec.name
        self.spec = spec
        self.request = request if request is not None else script_request(spec, ScriptPolicy())
        self.weight = spec.weight
        self.reverse = spec.weight_reverse
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

        def timed_out() -> None:
            self._result(False, f"timed out after {self.timeout:g}s", None, start)

        try:
            outcome = await run_script(
                self.request, timeout=self.timeout, grace=self.kill_grace, on_timeout=timed_out
            )
        except ScriptRefused as exc:
            self._result(False, f"not run: {exc}", None, start)
            return
        except OSError as exc:  # missing file, not executable...
            self._result(False, f"cannot run: {exc}", None, start)
            return
        status = outcome.returncode
        if status is None:
            return  # reported at the deadline
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
