"""The notifier process: config and settings in, one ``SinkRunner`` per sink, a ``status`` endpoint.

Everything a sink reacts to is in the event stream (``shared.events``): VRRP
transitions, real-server up/down (the checker's durable ``health`` subject,
never its heartbeats) and LVS pool events, so one durable consumer per sink,
filtered to the feeds it needs, sees them all in one order.  The notifier
creates one stream of its own, ``DEAD_LETTER_STREAM``, for the dead letters
(both are in docs/bus.md).

Reload (``apply``): keepalived.conf's sinks are rebuilt and compared by name
and definition (``core.sink_changes``).  A kept sink is not touched; a changed
one is swapped behind its durable consumer (``SinkRunner.swap``), so its ack
floor goes on recording what was delivered: nothing is repeated or skipped;
a new sink gets a new consumer, which starts with the events published from
then on (keepalived too notifies only transitions after a reload); a removed
sink finishes what it holds, then its consumer is deleted, so that if it
comes back it starts afresh instead of replaying what happened meanwhile.
The bus ``reload`` endpoint reaches one replica; the library's replica reload
(``shared/bus/replica_reload.py``) passes it on to the others, which it knows
from their membership beats (``shared/bus/replicas.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any, Final

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError
from nats.js.kv import KeyValue
from nats.micro.service import Service as MicroService

from services.notifier.core.sink_changes import SinkChanges, diff
from services.notifier.delivery.lease import Lease, ensure_lease_bucket
from services.notifier.delivery.runner import FeedSpec, SinkRunner
from services.notifier.wiring import (
    FeedName,
    SinkPlan,
    check_names,
    config_sinks,
    discard,
    settings_sinks,
)
from shared.bus import Publisher, connect, ensure_event_stream, register_service
from shared.bus.replica_reload import ReloadFanout
from shared.bus.replicas import Membership
from shared.config.model import Config
from shared.config.support import Area
from shared.events import (
    DEAD_LETTER_STREAM,
    DEAD_LETTER_SUBJECTS,
    EVENT_STREAM,
    MSG_ID_HEADER,
    PREFIX,
    DeadLetter,
    ReloadReply,
    ReloadTrigger,
    Service,
    dead_letter_subject,
    encode,
    encode_token,
    reload_replicas_subject,
)
from shared.runner.run import ReloadRefused, ServiceContext, ServiceSpec
from shared.settings import Settings

log = logging.getLogger("lifeline.notifier")

VERSION: Final = "0.1.0"
_NAME_IN_USE: Final = 10058
DAY: Final = 86400.0


def feed_subjects(node: str, feed: FeedName) -> tuple[str, ...]:
    """The event-stream subjects behind each feed a sink may read (see ``SinkPlan.feeds``).

    Only this node's events: with nodes sharing a server, or joined in a fleet,
    a notifier must never run another node's scripts or mail its transitions.
    """
    token = encode_token(node)
    kinds = ("vrrp", "lvs") if feed == "events" else ("health",)
    return tuple(f"{PREFIX}.{token}.{kind}.>" for kind in kinds)


def dead_letter_stream_config() -> StreamConfig:
    return StreamConfig(
        name=DEAD_LETTER_STREAM,
        description="lifeline notifier: events a sink gave up on, with the reason",
        subjects=list(DEAD_LETTER_SUBJECTS),
        retention=RetentionPolicy.LIMITS,
        discard=DiscardPolicy.OLD,
        storage=StorageType.FILE,
        max_age=30 * DAY,
        max_bytes=64 * 1024 * 1024,
        duplicate_window=600.0,
    )


async def ensure_stream(js: JetStreamContext, config: StreamConfig) -> None:
    try:
        await js.add_stream(config)
    except BadRequestError as exc:
        if exc.err_code != _NAME_IN_USE:
            raise
        await js.update_stream(config)


@dataclass
class NotifierOptions:
    """Knobs beyond keepalived.conf and lifeline.toml (tests and benchmarks shorten them)."""

    health: bool = True
    lease_ttl: float = 6.0
    script_timeout: float = 30.0
    delivery: dict[str, Any] = field(default_factory=dict)
    """Defaults for every sink's ``RunnerOptions``/``RetryPolicy`` (``ack_wait``, ``initial_delay``...)."""
    replica_timeout: float = 8.0
    """How long a bus reload waits for the other replicas' answers (``lifeline reload`` waits 10 s)."""


@dataclass
class RunningSink:
    """A sink this process runs: the plan it came from (its definition), its runner and task."""

    plan: SinkPlan
    runner: SinkRunner
    task: asyncio.Task[None] | None = None


class NotifierService:
    """Connects, prepares streams, runs every sink, answers ``status``; ``stop`` drains gracefully."""

    def __init__(
        self,
        config: Config,
        settings: Settings,
        *,
        node: str | None = None,
        nats_url: str | None = None,
        options: NotifierOptions | None = None,
        ctx: ServiceContext | None = None,
    ) -> None:
        self.ctx = ctx
        self.config = config
        self.settings = settings
        self.node = node or settings.node
        self.nats_url = nats_url or settings.nats_url
        self.options = options or NotifierOptions()
        self.replica = ctx.replica if ctx is not None and ctx.replica else uuid.uuid4().hex[:12]
        """This replica's id among the node's (``--replica-id``, random when not given)."""
        self.owner = f"{self.node}:{self.replica}"
        """The holder written into sink leases."""
        self.sinks: dict[str, RunningSink] = {}
        self.publisher = Publisher(self.node)
        """Only for the notifier's own events (``ServiceReload``); deliveries are acked, not published."""
        self.nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._kv: KeyValue | None = None
        self._settings_plans: list[SinkPlan] = []
        self._micro: MicroService | None = None
        self._members: Membership | None = None
        self._fan_out: ReloadFanout | None = None

    @property
    def runners(self) -> list[SinkRunner]:
        return [s.runner for s in self.sinks.values()]

    async def start(self) -> None:
        """Return once every sink's durable consumer exists: events published after this are kept."""
        name = self.ctx.client_name if self.ctx else f"lifeline-notifier-{self.node}"
        self.nc = await connect(self.nats_url, name, settings=self.settings)
        await self.publisher.start(self.nc)
        self._js = js = self.nc.jetstream(timeout=5.0)
        await ensure_event_stream(js, node=self.node)
        await ensure_stream(js, dead_letter_stream_config())
        self._kv = await ensure_lease_bucket(js, self.options.lease_ttl)
        self._settings_plans = settings_sinks(self.settings, nc=self.nc, delivery=self.options.delivery)
        plans = [*self._config_sinks(self.config), *self._settings_plans]
        check_names(plans)
        for plan in plans:
            running = RunningSink(plan, self._runner(plan))
            await running.runner.ensure_consumers()
            self.sinks[plan.sink.name] = running
        if self.ctx is not None:  # reloads come through the runner; without one, only ``apply`` is called
            members = self._members = Membership(self.nc, self.node, Service.NOTIFIER.value, self.replica)
            await members.start()
            self._fan_out = ReloadFanout(
                self.nc,
                reload_replicas_subject(self.node, Service.NOTIFIER.value),
                members.id,
                self._reload_here,
                members.members,
                timeout=self.options.replica_timeout,
            )
            await self._fan_out.start()
        self._micro = await register_service(
            self.nc,
            node=self.node,
            service=Service.NOTIFIER,
            version=VERSION,
            status=self.status,
            reload=self._fan_out.request if self._fan_out is not None else None,
        )
        for running in self.sinks.values():
            self._run(running)
        log.info("notifier %s: %d sink(s): %s", self.owner, len(plans), ", ".join(_names(plans)))

    def _config_sinks(self, config: Config) -> list[SinkPlan]:
        return config_sinks(
            config,
            self.settings,
            script_timeout=self.options.script_timeout,
            delivery=self.options.delivery,
        )

    def _runner(self, plan: SinkPlan) -> SinkRunner:
        assert self._js is not None and self._kv is not None and self.nc is not None
        lease = Lease(self._kv, plan.sink.name, self.owner, self.options.lease_ttl)
        return SinkRunner(
            self._js,
            plan.sink,
            self._feeds(plan),
            node=self.node,
            options=plan.options,
            lease=lease if plan.options.exclusive else None,
            dead_letter=self._dead_letter(self._js),
            flush=self.nc.flush,
        )

    @staticmethod
    def _run(running: RunningSink) -> None:
        running.task = asyncio.create_task(running.runner.run(), name=f"sink-{running.plan.sink.name}")

    async def _reload_here(self, trigger: ReloadTrigger) -> ReloadReply:
        """This process's reload through its runner (file policy, ``apply``, ``ServiceReload``)."""
        assert self.ctx is not None
        return await self.ctx.reload(trigger)

    def _feeds(self, plan: SinkPlan) -> list[FeedSpec]:
        """One consumer on the event stream, filtered to the sink's feeds (``--no-health`` drops health)."""
        names = [f for f in plan.feeds if f != "health" or self.options.health]
        subjects = [s for f in names for s in feed_subjects(self.node, f)]
        return [FeedSpec(EVENT_STREAM, subjects)] if subjects else []

    def _dead_letter(self, js: JetStreamContext) -> Any:
        node = self.node

        async def publish(letter: DeadLetter) -> None:
            await js.publish(
                dead_letter_subject(node, letter.sink),
                encode(letter),
                headers={MSG_ID_HEADER: f"{letter.sink}:{letter.event_id}"},
                stream=DEAD_LETTER_STREAM,
            )

        return publish

    async def status(self) -> dict[str, object]:
        """Per sink: backlog (consumer pending + unacked), held here, counters, last success and error."""
        sinks = {r.sink.name: await r.status() for r in self.runners}
        return {"owner": self.owner, "sinks": sinks}

    async def apply(self, config: Config) -> str:
        """Keep, swap, add and remove sinks so that they follow ``config``; every event once per sink.

        The steps that can fail come first: a new sink's consumer must exist
        before anything changes, else the reload is refused and what ran runs
        on.  Then, with no await in between, the swaps and the new runners;
        last the removed sinks drain (``drain_timeout``) and lose their consumers.
        """
        fresh = self._config_sinks(config)
        wanted = {p.sink.name: p for p in [*fresh, *self._settings_plans]}
        try:
            check_names([*fresh, *self._settings_plans])
        except ValueError as exc:
            await discard(fresh)
            raise ReloadRefused([str(exc)]) from None
        running = {name: s.plan.definition for name, s in self.sinks.items()}
        changes = diff(running, {name: p.definition for name, p in wanted.items()})
        await discard([wanted[n] for n in changes.kept if wanted[n] is not self.sinks[n].plan])
        added = [RunningSink(wanted[n], self._runner(wanted[n])) for n in changes.added]
        try:
            for new in added:
                await new.runner.ensure_consumers()
        except Exception as exc:  # consumers made so far stay: a peer replica may have made them too
            await discard([wanted[n] for n in (*changes.added, *changes.changed)])
            raise ReloadRefused([f"cannot create the consumers of new sinks: {exc}"]) from None
        for name in changes.changed:
            self.sinks[name].runner.swap(wanted[name].sink)
            self.sinks[name].plan = wanted[name]
        for new in added:
            self.sinks[new.plan.sink.name] = new
            self._run(new)
        removed = [self.sinks.pop(name) for name in changes.removed]
        await asyncio.gather(*(self._remove(r) for r in removed))
        self.config = config
        self._log(changes)
        return changes.summary()

    async def _remove(self, running: RunningSink) -> None:
        """Finish what it holds (acked), hand its lease back, delete its consumer (see the module doc)."""
        await running.runner.stop()
        if running.task is not None:
            running.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await running.task
        try:
            await running.runner.delete_consumers()
        except Exception as exc:
            log.warning("sink %s removed; its consumer stays (%s)", running.plan.sink.name, exc)

    def _log(self, changes: SinkChanges) -> None:
        log.info("notifier %s reloaded: %s", self.owner, changes.details())

    async def stop(self) -> None:
        """Finish what is in hand (acked), hand leases over, close."""
        if self._fan_out is not None:
            await self._fan_out.stop()
        await asyncio.gather(*(r.stop() for r in self.runners), return_exceptions=True)
        tasks = [s.task for s in self.sinks.values() if s.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._members is not None:
            await self._members.stop()
        if self._micro is not None:
            with contextlib.suppress(Exception):
                await self._micro.stop()
        with contextlib.suppress(Exception):
            await self.publisher.close()
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self.nc.drain()


def _names(plans: list[SinkPlan]) -> list[str]:
    return [p.sink.name for p in plans]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-health", action="store_true", help="do not consume real-server health")
    p.add_argument("--lease-ttl", type=float, default=6.0, help="sink lease time between replicas, s")
    p.add_argument("--ack-wait", type=float, default=10.0, help="JetStream ack wait per event, s")
    p.add_argument("--retry-initial", type=float, default=0.5, help="first retry delay, s")
    p.add_argument("--retry-max", type=float, default=30.0, help="longest retry delay, s")
    p.add_argument("--max-attempts", type=int, default=25, help="attempts before dead-lettering (0: never)")
    p.add_argument("--script-timeout", type=float, default=30.0, help="notify script timeout, s")


def options_from(args: argparse.Namespace) -> NotifierOptions:
    delivery = {
        "ack_wait": args.ack_wait,
        "initial_delay": args.retry_initial,
        "max_delay": args.retry_max,
        "max_attempts": args.max_attempts,
    }
    return NotifierOptions(
        health=not args.no_health,
        lease_ttl=args.lease_ttl,
        script_timeout=args.script_timeout,
        delivery=delivery,
    )


def build(ctx: ServiceContext, config: Config) -> NotifierService:
    return NotifierService(config, ctx.settings, options=options_from(ctx.args), ctx=ctx)


SPEC = ServiceSpec(
    name="notifier",
    description="lifeline notifier service: scripts, mail, FIFO, webhooks, plugins (docs/notifier.md)",
    build=build,
    add_arguments=add_arguments,
    replicas=True,
    areas=frozenset({Area.NOTIFY}),
)
"""What ``python -m services.notifier`` runs (``shared.runner``)."""
