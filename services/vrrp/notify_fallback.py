"""The vrrp service's backup for notify scripts: run them itself when the notifier has not, within a bound.

Why here: keepalived runs ``notify_master`` within a second of becoming
master, always; lifeline's notifier runs it from the bus, so with NATS
stopped, the notifier dead or the stream full it ran late or never.  The vrrp
service publishes every transition anyway: the publisher's ``observe`` hook shows each
published event to ``NotifyFallback`` too, which, ``bound`` seconds after
the transition, settles the event's claim (``shared.notify_claims``): if the
notifier has claimed it, nothing happens (beyond waiting for it to finish, for
the order); else the vrrp service claims it and runs the same scripts with the
same arguments and environment through the same launcher.

Which scripts: the notifier's rules (``services.notifier.script_targets.build_targets``
and ``core.targets.script_runs``), resolved when the event is published, with
the file then in force; a reload keeps a removed instance's scripts for its
removal, as the notifier does (``NotifyTargets.retire``).  Mail, FIFOs and
webhooks stay with the notifier (docs/notifier.md, "Claims").

Per object the events are settled one after the other (a queue and a worker
per instance or group): event N+1 waits until N is done, whoever ran it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

import msgspec

from services.notifier.core.formats import event_env
from services.notifier.core.targets import NotifyTargets, script_runs
from services.notifier.script_targets import build_targets
from services.notifier.sinks.script import script_request
from shared.config.model import Config
from shared.config.script import script_policy
from shared.events import Event
from shared.notify_claim_files import ClaimDir
from shared.notify_claims import CLAIMS_DIR, FALLBACK_BOUND, claim_key, claimable
from shared.scripts import ScriptRequest
from shared.scripts.runner import ScriptRefused, run_script
from shared.settings import Settings, node_state_dir

log = logging.getLogger("lifeline.vrrp.notify")

E = TypeVar("E", bound=Event)

SCRIPT_TIMEOUT = 30.0
"""The notifier's default ``--script-timeout``: a hung script is killed after it."""
SWEEP_EVERY = 600.0
"""Seconds between two sweeps of old claims."""


@dataclass
class Pending:
    """An event waiting for its bound, with the scripts it runs if nobody else does."""

    event: Event
    requests: list[ScriptRequest]
    due: float


class NotifyFallback:
    """Per published VRRP event with notify scripts: settle its claim ``bound`` seconds later."""

    def __init__(
        self,
        claims: ClaimDir,
        config: Callable[[], Config],
        *,
        bound: float = FALLBACK_BOUND,
        timeout: float = SCRIPT_TIMEOUT,
    ) -> None:
        self.claims = claims
        self.config = config
        self.bound = bound
        self.timeout = timeout
        self.ran = 0
        """Events whose scripts this service ran (the notifier had not claimed them in time)."""
        self._for: Config | None = None
        self._targets = NotifyTargets()
        self._queues: dict[str, deque[Pending]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._sweeper: asyncio.Task[None] | None = None

    @classmethod
    def for_node(cls, settings: Settings, config: Callable[[], Config]) -> NotifyFallback:
        """The fallback over this node's claims folder (``state_dir/<node>/notify-claims``)."""
        return cls(ClaimDir(node_state_dir(settings) / CLAIMS_DIR, "vrrp"), config)

    def start(self) -> None:
        """Sweep old claims now and then (the notifier never needs one older than ``RETENTION``)."""
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep(), name="vrrp-notify-sweep")

    def observe(self, event: Event) -> None:
        """A published event: queue it if it runs scripts (synchronous, from the publisher's caller)."""
        if not claimable(event):
            return
        requests = self._requests(event)
        if not requests:
            return
        key = claim_key(event)
        loop = asyncio.get_running_loop()
        self._queues.setdefault(key, deque()).append(Pending(event, requests, loop.time() + self.bound))
        worker = self._workers.get(key)
        if worker is None or worker.done():
            self._workers[key] = loop.create_task(self._work(key), name=f"vrrp-notify-{key}")

    def _requests(self, event: Event) -> list[ScriptRequest]:
        config = self.config()
        if config is not self._for:
            fresh = build_targets(config, script_policy(config.global_defs))
            fresh.retire(self._targets)
            self._for, self._targets = config, fresh
        target = self._targets(event)
        if target is None:
            return []
        policy = script_policy(config.global_defs)
        return [script_request(r.script, r.argv, policy) for r in script_runs(event, target)]

    async def _work(self, key: str) -> None:
        queue = self._queues[key]
        loop = asyncio.get_running_loop()
        while queue:
            pending = queue[0]
            await asyncio.sleep(max(0.0, pending.due - loop.time()))
            try:
                settled = await self.claims.settle(pending.event, partial(self._run_all, pending))
            except OSError as exc:  # the folder is unusable: the notifier is the only one left
                log.error("notify claims in %s: %s: the notifier alone runs scripts", self.claims.path, exc)
                settled = None
            if settled is not None and settled.ran:
                self.ran += 1
            queue.popleft()

    def status(self) -> dict[str, object]:
        """For the vrrp status: events it ran itself, claims it took over, events waiting for their bound."""
        waiting = sum(len(q) for q in self._queues.values())
        return {"ran": self.ran, "taken_over": self.claims.taken_over, "waiting": waiting}

    async def _run_all(self, pending: Pending, attempt: int) -> str:
        event = pending.event
        log.warning(
            "%s: not claimed by the notifier within %gs: running its scripts", _label(event), self.bound
        )
        env = event_env(event, attempt=attempt)
        failures = []
        for request in pending.requests:
            failure = await self._run(request, env)
            if failure:
                failures.append(failure)
        return failures[0] if failures else "ok"

    async def _run(self, request: ScriptRequest, env: dict[str, str]) -> str:
        program = request.argv[0]
        try:
            outcome = await run_script(request, timeout=self.timeout, extra_env=env)
        except (ScriptRefused, OSError) as exc:
            log.error("%s not run: %s", program, exc)
            return f"{program} not run: {exc}"
        if outcome.timed_out:
            log.error("%s timed out after %gs (killed)", program, self.timeout)
            return f"{program} timed out after {self.timeout}s (killed)"
        if outcome.returncode != 0:
            log.warning("%s exited with %s", program, outcome.returncode)
            return f"{program} exited with {outcome.returncode}"
        return ""

    async def _sweep(self) -> None:
        while True:
            with contextlib.suppress(OSError):
                self.claims.sweep()
            await asyncio.sleep(SWEEP_EVERY)

    async def close(self, timeout: float) -> None:
        """At stop: settle what is queued (STOP events too) for up to ``timeout`` s, then give up.

        Given up: the claims not made are the notifier's to make from the stream;
        a script still running is killed with its group (``run_script``), its claim
        left ``running``, which the notifier takes over once it is stale.
        """
        workers = [w for w in self._workers.values() if not w.done()]
        if workers:
            await asyncio.wait(workers, timeout=timeout)
        for task in [*workers, *([self._sweeper] if self._sweeper is not None else [])]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _label(event: Event) -> str:
    fields = msgspec.structs.asdict(event)
    name = fields.get("instance") or fields.get("group")
    return f"({name}) {fields.get('state', '')} event {event.boot_id}:{event.seq}"
