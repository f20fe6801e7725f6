"""keepalived.conf (and lifeline.toml) → the notifier's sinks, script targets and mail rules.

Why a module of its own: the sinks know nothing of the config model, and the
delivery core nothing of keepalived; this is the one place that knows both and
applies keepalived's rules:

- SMTP only when ``notification_email`` and ``smtp_server`` are set; per-object
  ``smtp_alert`` with the global ``smtp_alert`` / ``smtp_alert_vrrp`` /
  ``smtp_alert_checker`` defaults (real servers inherit their virtual server's);
  ``no_email_faults``; a mail only when the object's state differs from the
  state last mailed for it (``MailStateGate``).
- Scripts run through the one launcher (``shared.scripts``): their own user,
  else ``script_user``, else ``keepalived_script`` if it exists, else root; a
  script the launcher refuses (``enable_script_security``: the root fallback,
  or root from a path a non-root user can write) is left out, as keepalived
  drops it, and the launcher checks again before each run.
- ``notify_fifo`` gets VRRP and LVS lines, ``vrrp_notify_fifo`` VRRP only,
  ``lvs_notify_fifo`` LVS only; a FIFO is delivered in one global order;
  keepalived's rules for FIFOs sharing a path and the reader scripts
  (``*_notify_fifo_script``, FIFO path last) are in ``core.fifos``.

Which sinks exist, by name and with which feeds, is decided from the files
alone (``config_slots``, ``settings_slots``): the admin's provisioning
computes the same names for their durable consumers
(``services/notifier/consumers.py``) without running anything of the
notifier.  A script sink exists when keepalived.conf names a notify script,
even when script security then refuses to run every one of them.

Every plan carries a ``definition``: a plain value, equal for two builds that
would deliver alike, which is how a reload tells a kept sink from a changed
one (``core.sink_changes``).  keepalived.conf's sinks are rebuilt at every
reload (``config_sinks``); lifeline.toml's (``settings_sinks``) only at start,
since a reload re-reads keepalived.conf only.
"""

from __future__ import annotations

import grp
import logging
import os
import pwd
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from nats.aio.client import Client

from services.notifier.core.fifos import FifoScope, FifoSpec, fifo_plan
from services.notifier.core.real_servers import checker_mail
from services.notifier.core.targets import targets_definition
from services.notifier.delivery.dispatcher import RetryPolicy
from services.notifier.delivery.runner import RunnerOptions
from services.notifier.plugins import create_sink
from services.notifier.script_targets import allowed, build_targets
from services.notifier.sinks.base import ClosableSink, DeliveryContext, Sink
from services.notifier.sinks.fifo import FifoSink
from services.notifier.sinks.script import ScriptSink, script_request
from services.notifier.sinks.smtp import SmtpSink
from shared.config.lvs_keys import rs_key, vs_key
from shared.config.model import Config
from shared.config.model_global import NotifyFifo
from shared.config.script import script_policy
from shared.events import (
    Event,
    GroupState,
    InstanceState,
    PoolEvent,
    PoolEventKind,
    RealServerHealth,
)
from shared.notify_claim_files import ClaimDir
from shared.notify_claims import CLAIMS_DIR
from shared.scripts import ScriptPolicy, ScriptRequest
from shared.settings import Settings, node_state_dir

log = logging.getLogger("lifeline.notifier.wiring")

FeedName = Literal["events", "health"]


@dataclass
class SinkPlan:
    """One sink to run, how to deliver it, which streams it reads, and what it does (``definition``)."""

    sink: Sink
    options: RunnerOptions = field(default_factory=RunnerOptions)
    feeds: tuple[FeedName, ...] = ("events", "health")
    definition: object = None
    """Compared with ``==`` at a reload: equal means the running sink is kept as it is."""
    reader: ScriptRequest | None = None
    """The script that reads what the sink writes (``*_notify_fifo_script``), run by ``FifoReaders``."""


# --------------------------------------------------------------------------- which sinks


@dataclass(frozen=True)
class SinkSlot:
    """A sink the files ask for: its name (its consumer's), what it reads, its delivery options."""

    name: str
    kind: str
    feeds: tuple[FeedName, ...] = ("events", "health")
    delivery: Mapping[str, Any] = field(default_factory=dict)
    """Per-sink delivery options over the notifier's defaults (``RunnerOptions``/``RetryPolicy`` keys)."""


def fifo_feeds(scope: FifoScope) -> tuple[FeedName, ...]:
    """What a FIFO of ``scope`` reads: ``vrrp_notify_fifo`` gets no health lines."""
    return ("events",) if scope == "vrrp" else ("events", "health")


def config_slots(config: Config) -> list[SinkSlot]:
    """The sinks keepalived.conf asks for, from the file alone (no script, user or path is looked at)."""
    slots: list[SinkSlot] = []
    named = build_targets(config, screened=False)
    if any((named.instances, named.groups, named.real_servers, named.virtual_servers)):
        slots.append(SinkSlot("script", "script"))
    gd = config.global_defs
    if gd.notification_email and gd.smtp_server is not None:
        slots.append(SinkSlot("smtp", "smtp"))
    for spec in fifo_plan(gd).specs:  # after keepalived's same-path rules
        slots.append(SinkSlot(spec.keyword, "fifo", fifo_feeds(spec.scope), {"ordering": "global"}))
    return slots


def settings_slots(settings: Settings) -> list[SinkSlot]:
    """The extra sinks of lifeline.toml (``[[sinks]]``), by name, with their ``delivery`` table."""
    return [
        SinkSlot(extra.name, extra.kind, delivery=dict(extra.options.get("delivery", {})))
        for extra in settings.sinks
    ]


# --------------------------------------------------------------------------- mail


def _pick(*values: bool | None) -> bool:
    """The first configured value; objects default to off (keepalived)."""
    return next((v for v in values if v is not None), False)


@dataclass(frozen=True)
class AlertFilter:
    """The resolved per-object ``smtp_alert``; objects not in the config take the global default.

    A value rather than a closure so that a reload can compare the old mail
    rules with the new ones.
    """

    vrrp_default: bool
    checker_default: bool
    instances: Mapping[str, bool]
    groups: Mapping[str, bool]
    virtuals: Mapping[str, bool]
    reals: Mapping[tuple[str, str], bool]

    def __call__(self, event: Event) -> bool:
        match event:
            case InstanceState():
                return self.instances.get(event.instance, self.vrrp_default)
            case GroupState():
                return self.groups.get(event.group, self.vrrp_default)
            case RealServerHealth():
                fallback = self.virtuals.get(event.virtual, self.checker_default)
                return self.reals.get((event.virtual, event.real), fallback)
            case PoolEvent():
                return self.virtuals.get(event.virtual, self.checker_default)
        return False


def alert_filter(config: Config) -> AlertFilter:
    """keepalived's defaults: instances and groups ``smtp_alert_vrrp`` then ``smtp_alert``, and so on."""
    gd = config.global_defs
    vrrp_default = _pick(gd.smtp_alert_vrrp, gd.smtp_alert)
    checker_default = _pick(gd.smtp_alert_checker, gd.smtp_alert)
    instances = {n: _pick(vi.smtp_alert, vrrp_default) for n, vi in config.vrrp.instances.items()}
    groups = {n: _pick(sg.smtp_alert, vrrp_default) for n, sg in config.vrrp.sync_groups.items()}
    virtuals: dict[str, bool] = {}
    reals: dict[tuple[str, str], bool] = {}
    for vs in config.lvs.virtual_servers:
        vkey = vs_key(vs)
        virtuals[vkey] = _pick(vs.smtp_alert, checker_default)
        for rs in vs.real_servers:
            reals[(vkey, rs_key(vs, rs))] = _pick(rs.smtp_alert, virtuals[vkey])
    return AlertFilter(vrrp_default, checker_default, instances, groups, virtuals, reals)


def mailed_state(event: Event) -> tuple[str, str] | None:
    """(object, state) for the "only when the state differs from the last mailed" rule."""
    match event:
        case InstanceState():
            return (f"i:{event.node}:{event.instance}", event.state.value)
        case GroupState():
            return (f"g:{event.node}:{event.group}", event.state.value)
        case RealServerHealth():
            return (f"r:{event.node}:{event.virtual}:{event.real}", "UP" if event.up else "DOWN")
        case PoolEvent() if event.kind in (PoolEventKind.QUORUM_UP, PoolEventKind.QUORUM_DOWN):
            return (f"v:{event.node}:{event.virtual}", event.kind.value)
    return None


class MailStateGate:
    """Wraps the SMTP sink: no mail when the object's state equals the one last mailed for it.

    The memory is this process's (keepalived's is too): after a restart or a
    lease takeover the first mail per object is sent again; a reload that
    changes the mail settings keeps it (``take_over``).  A suppressed mail
    (``smtp_alert`` off, ``no_email_faults``) does not change the memory.
    """

    def __init__(self, inner: SmtpSink) -> None:
        self.inner = inner
        self.name = inner.name
        self.last: dict[str, str] = {}

    def take_over(self, previous: Sink) -> None:
        """At a reload the memory of what was mailed stays: a changed mail setup sends no repeat."""
        if isinstance(previous, MailStateGate):
            self.last = previous.last

    async def deliver(self, event: Event, context: DeliveryContext) -> None:
        if self.inner.message_for(event) is None:
            return
        state = mailed_state(event)
        repeat = state is not None and self.last.get(state[0]) == state[1]
        if repeat and not (isinstance(event, RealServerHealth) and checker_mail(event)):
            return
        await self.inner.deliver(event, context)
        if state is not None:
            self.last[state[0]] = state[1]


def smtp_sink(config: Config, settings: Settings) -> SmtpSink | None:
    """keepalived's SMTP alerts, or None when ``notification_email`` or ``smtp_server`` is missing."""
    params = smtp_params(config, settings)
    if params is None:
        return None
    cafile = settings.smtp.cafile
    return SmtpSink(**params, tls_context=ssl.create_default_context(cafile=cafile) if cafile else None)


def smtp_params(config: Config, settings: Settings) -> dict[str, Any] | None:
    """``SmtpSink``'s arguments but the TLS context (``settings.smtp.cafile`` stands for it)."""
    gd = config.global_defs
    if not gd.notification_email or gd.smtp_server is None:
        return None
    tls = settings.smtp
    return {
        "host": gd.smtp_server.host,
        "port": gd.smtp_server.port,
        "sender": gd.effective_email_from(),
        "recipients": list(gd.notification_email),
        "router_id": gd.effective_router_id(),
        "helo_name": gd.effective_helo_name(),
        "connect_timeout": float(gd.smtp_connect_timeout),
        "starttls": tls.starttls,
        "use_tls": tls.use_tls,
        "username": tls.username,
        "password": tls.password,
        "allow_plaintext_auth": tls.allow_plaintext_auth,
        "no_email_faults": gd.no_email_faults,
        "no_checker_emails": gd.no_checker_emails,
        "alert_filter": alert_filter(config),
    }


# --------------------------------------------------------------------------- FIFOs


def fifo_sink(fifo: NotifyFifo, scope: FifoScope, name: str, *, rs_init_notifies: bool = False) -> FifoSink:
    """A FIFO sink, created now with keepalived's owner (``notify_fifo PATH [user [group]]``)."""
    owner = fifo_owner(fifo, name)
    sink = FifoSink(fifo.path, scope=scope, name=name, owner=owner, rs_init_notifies=rs_init_notifies)
    try:
        sink.open()
    except Exception as exc:  # a FIFO problem must not stop the notifier
        log.warning("%s %s: %s (will retry when delivering)", name, fifo.path, exc)
    return sink


def fifo_reader(spec: FifoSpec, policy: ScriptPolicy) -> ScriptRequest | None:
    """The FIFO's ``*_notify_fifo_script`` with the FIFO's path last, if the launcher would run it."""
    argv = spec.reader_argv
    if spec.script is None or argv is None or allowed(spec.script, policy) is None:
        return None
    return script_request(spec.script, argv, policy)


def fifo_owner(fifo: NotifyFifo, name: str) -> tuple[int, int] | None:
    """(uid, gid) of ``notify_fifo``'s user and group when we may give it away (root), else None."""
    if fifo.user is None or os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(fifo.user)
        gid = grp.getgrnam(fifo.group).gr_gid if fifo.group else entry.pw_gid
    except KeyError as exc:
        log.warning("%s %s: unknown user or group %s: the FIFO stays root's", name, fifo.path, exc)
        return None
    return entry.pw_uid, gid


# --------------------------------------------------------------------------- everything


def runner_options(slot: SinkSlot, base: Mapping[str, Any] | None = None) -> RunnerOptions:
    """A slot's delivery options over the notifier's defaults ``base`` (its flags)."""
    return _options_from({**(base or {}), **slot.delivery})


def _options_from(raw: Mapping[str, Any]) -> RunnerOptions:
    """``delivery = {max_attempts=..., initial_delay=..., ordering="global", exclusive=false}``."""
    policy_keys = {"max_attempts", "initial_delay", "max_delay", "multiplier", "jitter"}
    policy = RetryPolicy(**{k: v for k, v in raw.items() if k in policy_keys})
    rest = {k: v for k, v in raw.items() if k not in policy_keys}
    return RunnerOptions(policy=policy, **rest)


def build_sinks(
    config: Config,
    settings: Settings,
    *,
    nc: Client | None = None,
    script_timeout: float = 30.0,
    delivery: Mapping[str, Any] | None = None,
) -> list[SinkPlan]:
    """Every sink keepalived.conf and lifeline.toml ask for, each with its delivery options."""
    plans = [
        *config_sinks(config, settings, script_timeout=script_timeout, delivery=delivery),
        *settings_sinks(settings, nc=nc, delivery=delivery),
    ]
    check_names(plans)
    return plans


def config_sinks(
    config: Config,
    settings: Settings,
    *,
    script_timeout: float = 30.0,
    delivery: Mapping[str, Any] | None = None,
) -> list[SinkPlan]:
    """The sinks keepalived.conf asks for: notify scripts, SMTP alerts, the notify FIFOs.

    Building them has effects a reload may not keep (a FIFO is created and
    opened, with its owner): ``discard`` the plans not used.
    """
    base = dict(delivery or {})
    plans: list[SinkPlan] = []
    slots = {slot.name: slot for slot in config_slots(config)}
    policy = script_policy(config.global_defs)
    targets = build_targets(config, policy)
    if "script" in slots:  # every script refused by script security: the sink delivers nothing
        init = config.global_defs.rs_init_notifies
        claims = ClaimDir(node_state_dir(settings) / CLAIMS_DIR, "notifier")  # vrrp backs these up
        scripts = ScriptSink(
            targets, policy=policy, timeout=script_timeout, rs_init_notifies=init, claims=claims
        )
        definition: object = ("script", targets_definition(targets), policy, init)
        plans.append(SinkPlan(scripts, _options_from(base), definition=definition))
    if (mail := smtp_sink(config, settings)) is not None:
        definition = ("smtp", smtp_params(config, settings), settings.smtp.cafile)
        plans.append(SinkPlan(MailStateGate(mail), _options_from(base), definition=definition))
    plan = fifo_plan(config.global_defs)
    for note in plan.notes:
        log.info("%s", note)
    for spec in plan.specs:
        slot = slots[spec.keyword]
        options = _options_from({**base, **slot.delivery})
        init = config.global_defs.rs_init_notifies
        sink = fifo_sink(spec.fifo, spec.scope, spec.keyword, rs_init_notifies=init)
        reader = fifo_reader(spec, policy)
        definition = ("fifo", spec.scope, spec.fifo, reader, init)
        plans.append(SinkPlan(sink, options, slot.feeds, definition=definition, reader=reader))
    return plans


def settings_sinks(
    settings: Settings, *, nc: Client | None = None, delivery: Mapping[str, Any] | None = None
) -> list[SinkPlan]:
    """The extra sinks of lifeline.toml (``[[sinks]]``: webhooks, republish, plugins)."""
    base = dict(delivery or {})
    plans: list[SinkPlan] = []
    for extra, slot in zip(settings.sinks, settings_slots(settings), strict=True):
        opts = dict(extra.options)
        opts.pop("delivery", None)
        if extra.kind == "republish" and "nc" not in opts:
            opts["nc"] = nc
        sink = create_sink(extra.kind, name=extra.name, **opts)
        definition = ("settings", extra.kind, extra.options)
        plans.append(SinkPlan(sink, runner_options(slot, base), slot.feeds, definition=definition))
    return plans


def check_names(plans: list[SinkPlan]) -> None:
    """Raise ``ValueError`` when two sinks share a name: each name is one durable consumer."""
    names = [p.sink.name for p in plans]
    if len(set(names)) != len(names):
        raise ValueError(f"two sinks share a name (each names its durable consumer): {names}")


async def discard(plans: list[SinkPlan]) -> None:
    """Close the sinks of plans that will not run (a reload keeping the running ones)."""
    for plan in plans:
        if isinstance(plan.sink, ClosableSink):
            try:
                await plan.sink.close()
            except Exception as exc:
                log.warning("sink %s: closing an unused build failed: %s", plan.sink.name, exc)
