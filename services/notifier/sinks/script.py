"""Notify scripts: keepalived's argv, run as ``script_user``, bounded in time, whole tree killed.

Why it differs from keepalived: keepalived forks and forgets (no wait, no
timeout, no ordering).  Here a script is awaited, so the delivery core knows
it ran, runs the scripts of one object in order, and can retry; a hung script
is a delivery failure instead of a leaked process.  Every script runs in its own
session (so its process group can be killed with its children): SIGTERM at the
timeout, SIGKILL ``kill_grace`` seconds later.  The argv is keepalived's; the
environment adds ``LIFELINE_*`` (see ``formats.event_env``) so a script can be
idempotent across re-deliveries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pwd
import signal
from collections.abc import Mapping
from typing import Any

from services.notifier.core.formats import event_env
from services.notifier.core.targets import ScriptRun, TargetResolver, script_runs
from services.notifier.sinks.base import DeliveryContext, DeliveryError
from shared.events import Event

log = logging.getLogger("lifeline.notifier.script")


class ScriptSink:
    """Runs the notify scripts ``targets`` gives for each event.

    ``default_user``/``default_group`` are the resolved global ``script_user``
    (None: run as the notifier's own user).  A non-zero exit or a timeout is
    retryable (``failure_retryable``); a script that cannot start at all (missing,
    not executable, unknown user) is not.
    """

    def __init__(
        self,
        targets: TargetResolver,
        *,
        default_user: str | None = None,
        default_group: str | None = None,
        timeout: float = 30.0,
        kill_grace: float = 2.0,
        env: Mapping[str, str] | None = None,
        failure_retryable: bool = True,
        name: str = "script",
    ) -> None:
        self.name = name
        self.targets = targets
        self.default_user = default_user
        self.default_group = default_group
        self.timeout = timeout
        self.kill_grace = kill_grace
        self.base_env = dict(os.environ if env is None else env)
        self.failure_retryable = failure_retryable

    async def deliver(self, event: Event, context: DeliveryContext) -> None:
        target = self.targets(event)
        if target is None:
            return
        env = {**self.base_env, **event_env(event, attempt=context.attempt)}
        for run in script_runs(event, target):
            await self._run(run, env)

    async def _run(self, run: ScriptRun, env: dict[str, str]) -> None:
        try:
            proc = await asyncio.create_subprocess_exec(
                *run.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
                env=env,
                start_new_session=True,
                **self._credentials(run),
            )
        except (OSError, ValueError, KeyError) as exc:
            raise DeliveryError(f"cannot start {run.argv[0]}: {exc}", retryable=False) from exc
        try:
            code = await asyncio.wait_for(proc.wait(), self.timeout)
        except TimeoutError:
            await self._kill_tree(proc)
            raise DeliveryError(
                f"{run.argv[0]} timed out after {self.timeout}s (killed)", retryable=True
            ) from None
        except asyncio.CancelledError:
            await asyncio.shield(self._kill_tree(proc))
            raise
        if code != 0:
            raise DeliveryError(f"{run.argv[0]} exited with {code}", retryable=self.failure_retryable)

    def _credentials(self, run: ScriptRun) -> dict[str, Any]:
        """``user``/``group``/``extra_groups`` for the subprocess; empty when no switch is needed.

        Like keepalived: the script's own user, else ``script_user``; the group
        defaults to the user's primary group.  Supplementary groups are reset to
        the user's own, so a script never keeps root's groups.
        """
        user = run.script.user or self.default_user
        group = run.script.group or (self.default_group if run.script.user is None else None)
        if user is None:
            return {}
        entry = pwd.getpwnam(user)
        if entry.pw_uid == os.geteuid() and group is None:
            return {}
        creds: dict[str, Any] = {"user": entry.pw_uid, "group": group if group is not None else entry.pw_gid}
        if os.geteuid() == 0:
            creds["extra_groups"] = os.getgrouplist(user, entry.pw_gid)
        return creds

    async def _kill_tree(self, proc: asyncio.subprocess.Process) -> None:
        """SIGTERM the script's process group, then SIGKILL it if anything is left after the grace."""
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), self.kill_grace)
        except TimeoutError:
            log.warning("script pid %d ignored SIGTERM; sending SIGKILL", proc.pid)
        # Children of the script may outlive it; the group dies with SIGKILL either way.
        _signal_group(proc.pid, signal.SIGKILL)
        await proc.wait()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
