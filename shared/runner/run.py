"""The runner proper: flags, settings, the start-up config check, and the ``Host`` that runs a service.

A service is anything with ``publisher``, ``start()``, ``apply(config)`` and
``stop()`` (``Managed``).  The runner reads and checks the file, builds the
service inside its event loop, starts it, prints the one ready line, and from
then on owns reloads: SIGHUP and the bus endpoint (``ServiceContext.reload``)
both end in ``Host.reload``, which re-reads the file under the configuration
policy and hands only a valid file to ``apply``.  Every reload, applied or
refused, is logged, printed as one line and published as ``ServiceReload``.
From start to stop the ``Host`` also keeps the service's liveness file
fresh (``alive.py``: what ``lifeline health SERVICE --local`` reads).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import logging
import sys
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from shared.bus.publisher import Publisher
from shared.config.model import Config
from shared.events import ReloadReply, ReloadTrigger, ServiceReload
from shared.exit_codes import Exit
from shared.redact import redact, register_secrets_of
from shared.runner import alive, config_policy, logs, signals, systemd
from shared.runner.netns import enter_namespace
from shared.runner.priorities import Priorities, settings_for
from shared.settings import Settings, SettingsError, load_settings, node_state_dir

log = logging.getLogger("lifeline.runner")

STOP_BOUND = 30.0
"""Seconds a service's ``stop`` may take (vrrp's hand-over takes a few): a stop never hangs forever."""


def stop_bound(service: object) -> float:
    """``STOP_BOUND``, or the service's own ``stop_bound`` (vrrp's grows by its ``shutdown_script``)."""
    bound = getattr(service, "stop_bound", None)
    return float(bound) if isinstance(bound, int | float) else STOP_BOUND


class Managed(Protocol):
    """What the runner needs of a service."""

    publisher: Publisher

    async def start(self) -> None:
        """Return once the service does its job (the ready line follows); may wait for NATS."""

    async def apply(self, config: Config) -> str:
        """Apply a valid configuration as a difference; a one-line summary, or raise ``ReloadRefused``."""

    async def stop(self) -> None:
        """Graceful stop; must also work after a start that was interrupted."""


class ReloadRefused(Exception):
    """``apply`` cannot take a valid file (e.g. the kernel refuses part of it); the old one stays."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(self.errors))


class StartFailed(Exception):
    """The service cannot run here (a missing kernel facility...): one line on stderr, exit 1."""


async def _no_reload(trigger: ReloadTrigger) -> ReloadReply:
    return ReloadReply(ok=False, errors=[f"no runner to reload ({trigger})"])


def _no_stop() -> None:
    log.warning("no runner to stop")


def exit_code(service: object) -> int:
    """``Exit.OK``, or the status the service asked for (vrrp's hitless exit: ``Exit.RESTART``)."""
    code = getattr(service, "exit_code", None)
    return int(code) if isinstance(code, int) else Exit.OK


@dataclass
class ServiceContext:
    """What a service learns from the runner: who it is, its settings and flags, how to reload."""

    service: str
    settings: Settings
    args: argparse.Namespace = field(default_factory=argparse.Namespace)
    replica: str | None = None
    reload: Callable[[ReloadTrigger], Awaitable[ReloadReply]] = _no_reload
    request_stop: Callable[[], None] = _no_stop
    """Stop as SIGTERM would (the service's own reason to exit, e.g. vrrp's hitless restart)."""

    @property
    def node(self) -> str:
        return self.settings.node

    @property
    def nats_url(self) -> str:
        return self.settings.nats_url

    @property
    def config_path(self) -> str:
        return self.settings.config

    @property
    def config_id(self) -> str | None:
        return self.settings.config_id

    @property
    def client_name(self) -> str:
        """``lifeline-<service>-<node>[-<replica>]``: how the service appears in nats-server's connz."""
        base = f"lifeline-{self.service}-{self.node}"
        return f"{base}-{self.replica}" if self.replica else base

    @property
    def outbox_path(self) -> Path:
        """``<state_dir>/<node>/outbox/<service>[-<replica>].log``: the durable outbox (docs/bus.md)."""
        name = f"{self.service}-{self.replica}" if self.replica else self.service
        return node_state_dir(self.settings) / "outbox" / f"{name}.log"

    def publisher(self) -> Publisher:
        """The service's publisher, with its durable outbox (a replica adopts those of replicas gone)."""
        adopt = f"{self.service}-*.log" if self.replica else None
        return Publisher(self.node, outbox_path=self.outbox_path, adopt=adopt, service=self.service)

    async def reload_request(self, _body: bytes) -> ReloadReply:
        """The ``reload`` micro endpoint's handler (register it with ``shared.bus.register_service``)."""
        return await self.reload(ReloadTrigger.REQUEST)


@dataclass(frozen=True)
class ServiceSpec:
    """A service as the runner sees it: name, factory, its own flags, its event loop."""

    name: str
    description: str
    build: Callable[[ServiceContext, Config], Managed]
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    replicas: bool = False
    """Several may run per node (``--replica-id``, random when not given)."""
    areas: frozenset[str] = frozenset()
    """Whose keywords are this service's (``shared.config.support.Area``): it logs their compat lines."""


def _facility(value: str) -> str:
    try:
        logs.facility(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def build_parser(spec: ServiceSpec) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"python -m services.{spec.name}", description=spec.description)
    p.add_argument(
        "--config", help="keepalived.conf (default: settings, else /etc/keepalived/keepalived.conf)"
    )
    p.add_argument("--node", help="node name on the bus (default: settings, else the host name)")
    p.add_argument("--nats", dest="nats_url", help="NATS URL (default: settings, else nats://127.0.0.1:4222)")
    p.add_argument("--settings", help="lifeline.toml (default: $LIFELINE_SETTINGS or /etc/lifeline/)")
    p.add_argument("--config-id", help="keepalived's -i: which @id lines apply (default: host name)")
    if spec.replicas:
        p.add_argument("--replica-id", help="this replica's id among the node's (default: random)")
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default INFO)")
    p.add_argument(
        "--log-facility",
        type=_facility,
        help="log to syslog with this facility (keepalived's -S: 0-7, local0-7, daemon, user)",
    )
    if spec.add_arguments is not None:
        spec.add_arguments(p)
    return p


def run_service(spec: ServiceSpec, argv: Sequence[str] | None = None) -> int:
    """Flags, settings, the start-up check, then the service in its loop; returns the exit status."""
    args = build_parser(spec).parse_args(argv)
    logs.setup(spec.name, args.log_level, args.log_facility)
    prefix = f"lifeline-{spec.name}"
    try:
        settings = load_settings(
            Path(args.settings) if args.settings else None,
            required=bool(args.settings),
            node=args.node,
            nats_url=args.nats_url,
            config=args.config,
            config_id=args.config_id,
        )
    except SettingsError as exc:
        print(f"{prefix}: {redact(str(exc))}", file=sys.stderr)
        return Exit.CONFIG
    register_secrets_of(settings)  # from here on no log line, reply or event shows them
    to_syslog = args.log_facility is not None
    checked = config_policy.read(settings.config, settings.config_id, quiet=True, areas=spec.areas)
    namespace = config_policy.net_namespace(checked, settings.config_id)
    if namespace is not None:
        try:
            enter_namespace(namespace)
        except OSError as exc:  # keepalived: "Unable to set network namespace NAME - exiting"
            print(f"{prefix}: net_namespace: {exc}", file=sys.stderr)
            return Exit.PROBLEMS
        # read again inside: interfaces named in the file are the namespace's (keepalived checks them there)
        checked = config_policy.read(settings.config, settings.config_id, quiet=True, areas=spec.areas)
    if to_syslog:
        config_policy.log_diagnostics(checked)
    else:  # at start the operator is looking at stderr: every problem, once, at file:line
        for diagnostic in checked.diagnostics:
            print(diagnostic, file=sys.stderr)
    if checked.config is None:
        print(f"{prefix}: {settings.config}: configuration has errors, not starting", file=sys.stderr)
        return Exit.CONFIG
    _name_the_instance(spec.name, args, checked.config.global_defs.instance)
    replica = (getattr(args, "replica_id", None) or uuid.uuid4().hex[:12]) if spec.replicas else None
    ctx = ServiceContext(spec.name, settings, args, replica)
    try:
        with asyncio.Runner(loop_factory=spec.loop_factory) as runner:
            return runner.run(Host(spec, ctx).serve(checked.config))
    except KeyboardInterrupt:
        return Exit.INTERRUPTED


def _name_the_instance(service: str, args: argparse.Namespace, instance: str | None) -> None:
    """``instance NAME``: the log ident gets ``_NAME``, as keepalived 2.2.7's does (``Keepalived_vrrp_NAME``).

    So the services of two files on one host (keepalived's reason for the
    keyword) can be told apart in syslog and the journal.  The ready line
    keeps its fixed form: supervisors wait for it.
    """
    if instance is None:
        return
    logs.setup(f"{service}_{instance}", args.log_level, args.log_facility)
    log.info("Changing syslog ident to lifeline-%s_%s", service, instance)


class Host:
    """Runs one service: start, ready line, reloads one at a time, stop on TERM/INT."""

    def __init__(self, spec: ServiceSpec, ctx: ServiceContext) -> None:
        self.spec = spec
        self.ctx = ctx
        self.prefix = f"lifeline-{spec.name}"
        self.service: Managed | None = None
        self.config: Config | None = None
        """The configuration running now (the last one ``apply`` took)."""
        self.priorities = Priorities()
        self._stop = asyncio.Event()
        self._ready = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        self._hup_before_ready = False
        self._tasks: set[asyncio.Task[ReloadReply]] = set()
        self.alive_path = alive.alive_path(spec.name, ctx.replica)
        self._alive_failed = False

    async def serve(self, config: Config) -> int:
        loop = asyncio.get_running_loop()
        signals.take_over(loop, stop=self._on_stop, reload=self._on_hup)
        self.ctx.reload = self.reload
        self.ctx.request_stop = self._stop.set
        beating = loop.create_task(self._keep_alive(), name=f"{self.spec.name}-alive")
        try:
            return await self._serve(config)
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating
            alive.remove(self.alive_path)
            signals.release(loop)

    async def _keep_alive(self) -> None:
        """The liveness file, rewritten by the event loop itself: a stuck loop leaves it stale."""
        while True:
            try:
                alive.write(self.alive_path, ready=self._ready.is_set())
                self._alive_failed = False
            except OSError as exc:
                if not self._alive_failed:
                    log.warning("liveness file %s not written: %s", self.alive_path, exc)
                self._alive_failed = True
            if self._ready.is_set():
                await asyncio.sleep(alive.EVERY)
                continue
            with contextlib.suppress(TimeoutError):  # written again at once when it becomes ready
                await asyncio.wait_for(self._ready.wait(), alive.EVERY)

    async def _serve(self, config: Config) -> int:
        if self._stop.is_set():  # TERM before anything started: nothing to undo
            return Exit.OK
        self.config = config
        try:
            self.service = self.spec.build(self.ctx, config)
        except StartFailed as exc:
            print(f"{self.prefix}: {redact(str(exc))}", file=sys.stderr)
            return Exit.PROBLEMS
        code = await self._start(self.service)
        if code is None:
            self._apply_priorities()
            self._ready.set()
            print(f"{self.prefix} ready", flush=True)  # supervisors and tests wait for this line
            systemd.ready(f"node {self.ctx.node}")
            if self._hup_before_ready:
                self._on_hup()
            await self._stop.wait()
        systemd.stopping()
        log.info("stopping")
        bound = stop_bound(self.service)
        async with self._reload_lock:  # a reload in progress finishes first
            try:
                await asyncio.wait_for(self.service.stop(), bound)
            except TimeoutError:
                log.error("stop did not finish within %g s; exiting anyway", bound)
        return exit_code(self.service) if code is None else code

    async def _start(self, service: Managed) -> int | None:
        """None once started; an exit status when start failed or a stop came first."""
        starting = asyncio.create_task(service.start(), name=f"{self.spec.name}-start")
        stopping = asyncio.create_task(self._stop.wait())
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not starting.done():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await starting
            return Exit.OK
        exc = starting.exception()
        if exc is None:
            return None
        if isinstance(exc, StartFailed | OSError):
            print(f"{self.prefix}: cannot start: {redact(str(exc))}", file=sys.stderr)
        else:
            log.error("start failed", exc_info=exc)
        return Exit.PROBLEMS

    def _namespace_change(self, config: Config) -> str | None:
        """keepalived refuses it too: "Cannot change network namespace at a reload - please restart"."""
        before = None if self.config is None else self.config.global_defs.net_namespace
        after = config.global_defs.net_namespace
        if after == before:
            return None
        return f"net_namespace cannot change at a reload ({before or 'none'} -> {after or 'none'}): restart"

    def _apply_priorities(self) -> None:
        """The running configuration's ``<family>_priority``... keywords (``priorities.py``)."""
        wanted = None if self.config is None else settings_for(self.spec.name, self.config.global_defs)
        if wanted is not None and wanted.configured:
            self.priorities.apply(wanted)

    def _on_stop(self, signum: int) -> None:
        log.info("signal %d: stopping", signum)
        self._stop.set()

    def _on_hup(self) -> None:
        if not self._ready.is_set():
            self._hup_before_ready = True  # applied once started: the file may have changed meanwhile
            return
        task = asyncio.get_running_loop().create_task(self.reload(ReloadTrigger.SIGNAL))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def reload(self, trigger: ReloadTrigger) -> ReloadReply:
        """Re-read the file; a file with errors (or one ``apply`` refuses) leaves everything as it was."""
        await self._ready.wait()
        async with self._reload_lock:
            assert self.service is not None
            systemd.reloading()
            path = self.ctx.config_path
            log.info("reloading %s (%s)", path, trigger.value)
            self.priorities.reset()  # keepalived: "use standard scheduling while reloading"
            try:
                checked = await asyncio.to_thread(
                    functools.partial(config_policy.read, path, self.ctx.config_id, areas=self.spec.areas)
                )
                if checked.config is None:
                    reply = ReloadReply(ok=False, errors=checked.errors)
                elif (moved := self._namespace_change(checked.config)) is not None:
                    reply = ReloadReply(ok=False, errors=[moved])
                else:
                    reply = await self._apply(self.service, checked.config)
                    if reply.ok:
                        self.config = checked.config
            finally:
                self._apply_priorities()
            self._announce(reply, trigger)
            systemd.ready()
            return reply

    async def _apply(self, service: Managed, config: Config) -> ReloadReply:
        try:
            return ReloadReply(ok=True, detail=await service.apply(config))
        except ReloadRefused as exc:
            return ReloadReply(ok=False, errors=exc.errors)
        except Exception as exc:  # a bug in apply: the service keeps running what it had
            log.exception("reload failed")
            return ReloadReply(ok=False, errors=[f"internal error: {type(exc).__name__}: {exc}"])

    def _announce(self, reply: ReloadReply, trigger: ReloadTrigger) -> None:
        """Log, one stdout line, and a ``ServiceReload`` event (queued if NATS is away)."""
        if reply.ok:
            log.info("reload applied: %s", reply.detail)
            print(f"{self.prefix} reloaded: {redact(reply.detail)}", flush=True)
        else:
            log.error("reload refused (%d error(s)); the running configuration stays", len(reply.errors))
            print(f"{self.prefix} reload refused: {len(reply.errors)} error(s)", flush=True)
        assert self.service is not None
        self.service.publisher.publish(
            ServiceReload(
                service=self.spec.name,
                ok=reply.ok,
                trigger=trigger,
                config=self.ctx.config_path,
                detail=reply.detail,
                errors=tuple(reply.errors),
            )
        )
