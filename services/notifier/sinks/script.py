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

With ``claims`` (the node's claims folder, ``shared.notify_claims``) the scripts
of a VRRP event are claimed before they run, because the vrrp service runs
them itself when nobody has one second after the transition: an event already
claimed is not run again (and is acked), an event claimed and still running
is waited for, so the next one of the same object starts after it.  A script
that ran and failed is then a dead letter, not a retry: the claim says it ran,
and keepalived never runs a notify script twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from services.notifier.core.formats import event_env
from services.notifier.core.targets import NotifyTargets, TargetResolver, script_runs
from services.notifier.sinks.base import DeliveryContext, DeliveryError, Sink
from shared.config.script import Script
from shared.events import Event
from shared.notify_claim_files import ClaimDir
from shared.notify_claims import claimable, forgotten
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
        claims: ClaimDir | None = None,
    ) -> None:
        self.name = name
        self.rs_init_notifies = rs_init_notifies
        self.targets = targets
        self.policy = policy if policy is not None else ScriptPolicy()
        self.timeout = timeout
        self.kill_grace = kill_grace
        self.failure_retryable = failure_retryable
        self.claims = claims

    def take_over(self, previous: Sink) -> None:
        """A reload that removed an instance keeps its scripts for its removal (``NotifyTargets.retire``)."""
        old = previous.targets if isinstance(previous, ScriptSink) else None
        if isinstance(self.targets, NotifyTargets) and isinstance(old, NotifyTargets):
            self.targets.retire(old)

    async def deliver(self, event: Event, context: DeliveryContext) -> None:
        target = self.targets(event)
        if target is None:
            return
        runs = script_runs(event, target, rs_init_notifies=self.rs_init_notifies)
        requests = [script_request(run.script, run.argv, self.policy) for run in runs]
        if self.claims is not None and requests and claimable(event):
            await self._claimed(self.claims, event, requests)
            return
        env = event_env(event, attempt=context.attempt)
        for request in requests:
            await self._run(request, env)

    async def _claimed(self, claims: ClaimDir, event: Event, requests: list[ScriptRequest]) -> None:
        """Run the event's scripts if we claim them first; else wait until the owner has."""
        if forgotten(event, time.time_ns(), claims.retention):
            log.warning("%s: older than the claims are kept: not run (the vrrp service ran it)", event)
            return

        async def run_all(attempt: int) -> str:
            env = event_env(event, attempt=attempt)
            failures = []
            for request in requests:  # each one, as keepalived: a failed notify_master still runs notify
                try:
                    await self._run(request, env)
                except DeliveryError as exc:
                    failures.append(str(exc))
            return failures[0] if failures else "ok"

        try:
            settled = await claims.settle(event, run_all)
        except OSError as exc:
            raise DeliveryError(f"cannot claim in {claims.path}: {exc}", retryable=True) from exc
        if settled.ran and settled.claim is not None and settled.claim.outcome != "ok":
            raise DeliveryError(settled.claim.outcome, retryable=False)

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
