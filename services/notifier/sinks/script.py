"""Notify scripts: keepalived's argv and users, bounded in time, whole tree killed, clean environment.

Why it differs from keepalived: keepalived forks and forgets (no wait, no
timeout, no ordering).  Here a script is awaited, so the delivery core knows
it ran, runs the scripts of one object in order, and can retry; a hung script
is a delivery failure instead of a leaked process.  Each run goes through the
one script launcher (``shared.scripts.runner``): the script's own user, else
``script_user``, else ``keepalived_script``, else root; its own session (SIGTERM
to the group at the timeout, SIGKILL ``kill_grace`` seconds later); an
allow-listed environment plus ``LIFELINE_*`` (see ``formats.event_env``), so a
script can be idempotent across re-deliveries and never sees the bus credentials.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from services.notifier.core.formats import event_env
from services.notifier.core.targets import NotifyTargets, TargetResolver, script_runs
from services.notifier.sinks.base import DeliveryContext, DeliveryError, Sink
from shared.config.script import Script
from shared.events import Event
from shared.scripts import ScriptPolicy, ScriptRequest
from shared.scripts.runner import KILL_GRACE, ScriptRefused, run_script

log = logging.getLogger("lifeline.notifier.script")


def script_request(script: Script, argv: Sequence[str], policy: ScriptPolicy) -> ScriptRequest:
    """What a notify script asks the launcher: the final argv, the line's user and group, the policy."""
    label = f"{script.keyword or 'notify'} {script.argv[0]}"
    return ScriptRequest(tuple(argv), script.user, script.group, policy, label)


class ScriptSink:
    """Runs the notify scripts ``targets`` gives for each event.

    ``policy`` is ``global_defs``' part in who runs a script (``script_user``,
    ``enable_script_security``).  A non-zero exit or a timeout is retryable
    (``failure_retryable``); a script that cannot start at all (missing, not
    executable) or may not run (refused by the launcher) is not.
    ``rs_init_notifies`` runs ``notify_up`` for a real server's start as well.
    """

    def __init__(
        self,
        targets: TargetResolver,
        *,
        policy: ScriptPolicy | None = None,
        timeout: float = 30.0,
        kill_grace: float = KILL_GRACE,
        failure_retryable: bool = True,
        rs_init_notifies: bool = False,
        name: str = "script",
    ) -> None:
        self.name = name
        self.rs_init_notifies = rs_init_notifies
        self.targets = targets
        self.policy = policy if policy is not None else ScriptPolicy()
        self.timeout = timeout
        self.kill_grace = kill_grace
        self.failure_retryable = failure_retryable

    def take_over(self, previous: Sink) -> None:
        """A reload that removed an instance keeps its scripts for its removal (``NotifyTargets.retire``)."""
        old = previous.targets if isinstance(previous, ScriptSink) else None
        if isinstance(self.targets, NotifyTargets) and isinstance(old, NotifyTargets):
            self.targets.retire(old)

    async def deliver(self, event: Event, context: DeliveryContext) -> None:
        target = self.targets(event)
        if target is None:
            return
        env = event_env(event, attempt=context.attempt)
        for run in script_runs(event, target, rs_init_notifies=self.rs_init_notifies):
            await self._run(script_request(run.script, run.argv, self.policy), env)

    async def _run(self, request: ScriptRequest, env: dict[str, str]) -> None:
        program = request.argv[0]
        try:
            outcome = await run_script(request, timeout=self.timeout, grace=self.kill_grace, extra_env=env)
        except ScriptRefused as exc:
            raise DeliveryError(f"{program} not run: {exc}", retryable=False) from exc
        except OSError as exc:
            raise DeliveryError(f"cannot start {program}: {exc}", retryable=False) from exc
        if outcome.timed_out:
            raise DeliveryError(f"{program} timed out after {self.timeout}s (killed)", retryable=True)
        if outcome.returncode != 0:
            code = outcome.returncode
            raise DeliveryError(f"{program} exited with {code}", retryable=self.failure_retryable)
