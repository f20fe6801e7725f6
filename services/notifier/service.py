"""The notifier process: config and settings in, one ``SinkRunner`` per sink, a ``status`` endpoint.

Everything a sink reacts to is in the event stream (``shared.events``): VRRP
transitions, real-server up/down (the checker's durable ``health`` subject,
never its heartbeats) and LVS pool events, so one durable consumer per sink,
filtered to the feeds it needs, sees them all in one order.  The notifier
creates nothing on the bus: the event stream, its dead-letter stream, its
lease bucket and its sinks' consumers are provisioned by an admin
(``shared.bus.provision``; the consumers' names and filters come from the same
files, ``services/notifier/consumers.py``), and until they exist it says so
and waits (docs/bus.md).

Reload (``apply``): keepalived.conf's sinks are rebuilt and compared by name
and definition (``core.sink_changes``).  A kept sink is not touched; a changed
one is swapped behind its durable consumer (``SinkRunner.swap``), so its ack
floor goes on recording what was delivered: nothing is repeated or skipped;
a new sink reads the consumer the provisioning made for it before the
reload (``lifeline up``, systemd's ``ExecReload`` and ``lifeline bus
provision`` run it first), which starts with the events published from then
on (keepalived too notifies only transitions after a reload); until it exists
the sink waits and the reload's reply says so; a removed sink finishes what
it holds, and the provisioning deletes its consumer, so that if it comes back
it starts afresh instead of replaying what happened meanwhile.
The bus ``reload`` endpoint reaches one replica; the library's replica reload
(``shared/bus/replica_reload.py``) passes it on to the others, which it knows
from their membership beats (``shared/bus/replicas.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any, Final

import nats.errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.kv import KeyValue
from nats.micro.service import Service as MicroService

from services.notifier.consumers import sink_subjects
from services.notifier.core.sink_changes import SinkChanges, diff
from services.notifier.delivery.lease import Lease, open_lease_bucket
from services.notifier.delivery.runner import FeedSpec, SinkRunner
from services.notifier.fifo_readers import FifoReaders, ReaderSpec
from services.notifier.reload_states import write_states
from services.notifier.sinks.fifo import FifoSink
from services.notifier.wiring import (
    SinkPlan,
    check_names,
    config_sinks,
    discard,
    settings_sinks,
)
from shared.bus import NotProvisioned, Publisher, connect, register_service
from shared.bus.provision import PROVISION_HINT, require_stream
from shared.bus.replica_reload import ReloadFanout
from shared.bus.replicas import Membership
from shared.config.model import Config
from shared.config.support import Area
from shared.events import (
    DEAD_LETTER_STREAM,
    EVENT_STREAM,
    MSG_ID_HEADER,
    DeadLetter,
    ReloadReply,
    ReloadTrigger,
    Service,
    dead_letter_subject,
    encode,
)
from shared.runner.run import ReloadRefused, ServiceContext, ServiceSpec
from shared.settings import Settings

log = logging.getLogger("lifeline.notifier")

VERSION: Final = "0.1.0"
WAIT: Final = 2.0
"""Seconds between looks for what is not provisioned yet."""


@dataclass
class NotifierOptions:
    """Knobs beyond keepalived.conf and lifeline.toml (tests and benchmarks shorten them)."""

    health: bool = True
    lease_ttl: float = 6.0
    """The lease time this notifier expects; the provisioned bucket's (its ``max_age``) wins."""
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
        self.publisher = ctx.publisher() if ctx is not None else Publisher(self.node)
        """Only for the notifier's own events (``ServiceReload``); deliveries are acked, not published."""
        self.nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._kv: KeyValue | None = None
        self._settings_plans: list[SinkPlan] = []
        self._micro: MicroService | None = None
        self._members: Membership | None = None
        self._fan_out: ReloadFanout | None = None
        self.readers = FifoReaders()
        """The notify FIFO scripts, each running while this replica delivers its FIFO."""

    @property
    def runners(self) -> list[SinkRunner]:
        return [s.runner for s in self.sinks.values()]

    async def start(self) -> None:
        """Return once every sink's durable consumer exists: events published after this are kept."""
        name = self.ctx.client_name if self.ctx else f"lifeline-notifier-{self.node}"
        self.nc = await connect(self.nats_url, name, settings=self.settings)
        await self.publisher.start(self.nc)
        self._js = js = self.nc.jetstream(timeout=5.0)
        self._kv = await self._provisioned(js)
        self._settings_plans = settings_sinks(self.settings, nc=self.nc, delivery=self.options.delivery)
        plans = [*self._config_sinks(self.config), *self._settings_plans]
        check_names(plans)
        for plan in plans:
            self.sinks[plan.sink.name] = RunningSink(plan, self._runner(plan))
        self.readers.want(self._reader_specs())
        if self.ctx is not None:  # reloads come through the runner; without one, only ``apply`` is called
            members = self._members = Membership(self.nc, self.node, Service.NOTIFIER.value, self.replica)
            await members.start()
            self._fan_out = ReloadFanout(
                self.nc,
                self.node,
                Service.NOTIFIER.value,
                replica_id=members.id,
                reload=self._reload_here,
                peers=members.members,
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
            publisher=self.publisher,  # its own events' counters: failing, stored (a full JetStream store)
        )
        for running in self.sinks.values():
            self._run(running)
        log.info("notifier %s: %d sink(s): %s", self.owner, len(plans), ", ".join(_names(plans)))

    async def _provisioned(self, js: JetStreamContext) -> KeyValue:
        """The lease bucket (waited for: a sink cannot lead without it); the dead-letter stream checked.

        The lease time is the bucket's: every replica must renew by the same clock.
        """
        told = False
        while True:
            try:
                kv, ttl = await open_lease_bucket(js)
                break
            except NotProvisioned as exc:
                if not told:
                    log.error("notifier: %s; waiting", exc)
                told = True
            except (nats.errors.Error, TimeoutError) as exc:  # JetStream disabled or not answering
                if not told:  # (its store was full): wait for it, never exit in a loop over it
                    log.error("notifier: JetStream unavailable (%s: %s); waiting", type(exc).__name__, exc)
                told = True
            await asyncio.sleep(WAIT)
        if ttl and abs(ttl - self.options.lease_ttl) > 1e-3:
            log.info(
                "lease time %gs (the provisioned bucket's; --lease-ttl said %gs)", ttl, self.options.lease_ttl
            )
            self.options.lease_ttl = ttl
        try:
            await require_stream(js, DEAD_LETTER_STREAM)
        except NotProvisioned as exc:
            log.error("notifier: %s: a sink that gives up on an event cannot keep it", exc)
        except (nats.errors.Error, TimeoutError) as exc:
            log.warning("notifier: stream %s not checked (%s)", DEAD_LETTER_STREAM, exc)
        return kv

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
            on_lead=functools.partial(self.readers.lead, plan.sink.name),
        )

    def _reader_specs(self) -> dict[str, ReaderSpec]:
        """The FIFO scripts of the sinks as they run now (a kept sink's own object opens its FIFO)."""
        return {
            name: ReaderSpec(s.plan.reader, s.plan.sink.open)
            for name, s in self.sinks.items()
            if s.plan.reader is not None and isinstance(s.plan.sink, FifoSink)
        }

    @staticmethod
    def _run(running: RunningSink) -> None:
        running.task = asyncio.create_task(running.runner.run(), name=f"sink-{running.plan.sink.name}")

    async def _reload_here(self, trigger: ReloadTrigger) -> ReloadReply:
        """This process's reload through its runner (file policy, ``apply``, ``ServiceReload``)."""
        assert self.ctx is not None
        return await self.ctx.reload(trigger)

    def _feeds(self, plan: SinkPlan) -> list[FeedSpec]:
        """One consumer on the event stream, filtered to the sink's feeds (``--no-health`` drops health)."""
        subjects = list(sink_subjects(self.node, plan.feeds, health=self.options.health))
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
        waiting: list[str] = []
        for new in added:
            try:
                waiting += await new.runner.missing_consumers()
            except Exception as exc:  # the bus is away: the sink's feed looks again when it runs
                log.warning("reload: consumers of %s not checked (%s)", new.plan.sink.name, exc)
        for name in changes.changed:
            self.sinks[name].runner.swap(wanted[name].sink)
            self.sinks[name].plan = wanted[name]
        for new in added:
            self.sinks[new.plan.sink.name] = new
        removed = [self.sinks.pop(name) for name in changes.removed]
        self.readers.want(self._reader_specs())
        await self.readers.restart()  # keepalived: SIGTERM to every FIFO script, then started again
        for new in added:
            self._run(new)  # its reader starts when it leads
        await asyncio.gather(*(self._remove(r) for r in removed))
        self.config = config
        if config.global_defs.fifo_write_vrrp_states_on_reload:
            await self._write_reload_states(config)
        self._log(changes)
        if waiting:
            log.error(
                "reload: %s not provisioned: those sinks wait (%s)",
                ", ".join(waiting),
                PROVISION_HINT,
            )
            return f"{changes.summary()}; waiting for consumer(s) {', '.join(waiting)} (not provisioned)"
        return changes.summary()

    async def _write_reload_states(self, config: Config) -> None:
        """``fifo_write_vrrp_states_on_reload``: to the FIFOs this replica delivers (``reload_states``)."""
        assert self.nc is not None
        fifos = [s.runner.sink for s in self.sinks.values() if s.runner.leading]
        await write_states(self.nc, self.node, config, [f for f in fifos if isinstance(f, FifoSink)])

    async def _remove(self, running: RunningSink) -> None:
        """Finish what it holds (acked), hand its lease back; the provisioning deletes its consumer."""
        await running.runner.stop()
        if running.task is not None:
            running.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await running.task

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
        await self.readers.stop()  # after the sinks: their last lines are in the FIFO first
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
