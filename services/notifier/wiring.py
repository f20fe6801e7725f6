"""keepalived.conf (and lifeline.toml) → the notifier's sinks, script targets and mail rules.

Why a module of its own: the sinks know nothing of the config model, and the
delivery core nothing of keepalived; this is the one place that knows both and
applies keepalived's rules:

- SMTP only when ``notification_email`` and ``smtp_server`` are set; per-object
  ``smtp_alert`` with the global ``smtp_alert`` / ``smtp_alert_vrrp`` /
  ``smtp_alert_checker`` defaults (real servers inherit their virtual server's);
  ``no_email_faults``; a mail only when the object's state differs from the
  state last mailed for it (``MailStateGate``).
- Scripts run as their own user, else ``script_user``, else
  ``keepalived_script`` if it exists, else root; with
  ``enable_script_security`` a script that would fall back to root, or run as
  root from a path a non-root user can write, is not run (as keepalived).
- ``notify_fifo`` gets VRRP and LVS lines, ``vrrp_notify_fifo`` VRRP only,
  ``lvs_notify_fifo`` LVS only; a FIFO is delivered in one global order.

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

from services.notifier.core.targets import NotifyTarget, NotifyTargets, targets_definition
from services.notifier.delivery.dispatcher import RetryPolicy
from services.notifier.delivery.runner import RunnerOptions
from services.notifier.plugins import create_sink
from services.notifier.sinks.base import ClosableSink, DeliveryContext, Sink
from services.notifier.sinks.fifo import FifoScope, FifoSink
from services.notifier.sinks.script import ScriptSink
from services.notifier.sinks.smtp import SmtpSink
from shared.config.lvs_keys import rs_key, vs_key
from shared.config.model import Config
from shared.config.model_global import GlobalDefs, NotifyFifo
from shared.config.script import DEFAULT_SCRIPT_USER, LocalScriptFiles, Script, path_is_unsafe
from shared.events import (
    Event,
    GroupState,
    InstanceState,
    PoolEvent,
    PoolEventKind,
    RealServerHealth,
)
from shared.settings import Settings

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


# --------------------------------------------------------------------------- which sinks


@dataclass(frozen=True)
class SinkSlot:
    """A sink the files ask for: its name (its consumer's), what it reads, its delivery options."""

    name: str
    kind: str
    feeds: tuple[FeedName, ...] = ("events", "health")
    delivery: Mapping[str, Any] = field(default_factory=dict)
    """Per-sink delivery options over the notifier's defaults (``RunnerOptions``/``RetryPolicy`` keys)."""


FIFOS: tuple[tuple[str, FifoScope, tuple[FeedName, ...]], ...] = (
    ("notify_fifo", "all", ("events", "health")),
    ("vrrp_notify_fifo", "vrrp", ("events",)),
    ("lvs_notify_fifo", "lvs", ("events", "health")),
)
"""keepalived's three FIFOs: global_defs keyword (also the sink's name), scope, feeds."""


def config_slots(config: Config) -> list[SinkSlot]:
    """The sinks keepalived.conf asks for, from the file alone (no script, user or path is looked at)."""
    slots: list[SinkSlot] = []
    named = build_targets(config, ScriptUsers(None, None, root_fallback=False, security=False))
    if any((named.instances, named.groups, named.real_servers, named.virtual_servers)):
        slots.append(SinkSlot("script", "script"))
    gd = config.global_defs
    if gd.notification_email and gd.smtp_server is not None:
        slots.append(SinkSlot("smtp", "smtp"))
    for name, _scope, feeds in FIFOS:
        if getattr(gd, name) is not None:
            slots.append(SinkSlot(name, "fifo", feeds, {"ordering": "global"}))
    return slots


def settings_slots(settings: Settings) -> list[SinkSlot]:
    """The extra sinks of lifeline.toml (``[[sinks]]``), by name, with their ``delivery`` table."""
    return [
        SinkSlot(extra.name, extra.kind, delivery=dict(extra.options.get("delivery", {})))
        for extra in settings.sinks
    ]


# --------------------------------------------------------------------------- scripts


@dataclass(frozen=True)
class ScriptUsers:
    """Who runs scripts naming no user: ``default_user`` None means the notifier's own user."""

    default_user: str | None
    default_group: str | None
    root_fallback: bool  # no script_user and no keepalived_script: root by fallback
    security: bool


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def script_users(gd: GlobalDefs) -> ScriptUsers:
    """keepalived's default script user; switching users needs root, else scripts run as ourselves."""
    root = os.geteuid() == 0
    if gd.script_user is not None:
        user, group, fallback = gd.script_user.user, gd.script_user.group, False
    elif _user_exists(DEFAULT_SCRIPT_USER):
        user, group, fallback = DEFAULT_SCRIPT_USER, None, False
    else:
        user, group, fallback = None, None, True
    if not root:
        user, group = None, None
    return ScriptUsers(user, group, fallback, gd.enable_script_security)


def allowed(script: Script | None, users: ScriptUsers) -> Script | None:
    """The script if keepalived would run it under script security, else None (logged)."""
    if script is None or not users.security:
        return script
    if script.user is None and users.root_fallback:
        log.error("%s:%d: no script_user for %s: not run (enable_script_security)", *_at(script))
        return None
    runs_as_root = (script.user or users.default_user or "root") == "root"
    resolved = LocalScriptFiles().resolve_script(script.argv[0])
    if runs_as_root and resolved is not None and path_is_unsafe(resolved, LocalScriptFiles()):
        log.error("%s:%d: %s is writable by a non-root user: not run as root", *_at(script), resolved)
        return None
    return script


def _at(script: Script) -> tuple[str, int, str]:
    return script.file or "?", script.line, script.argv[0] if script.argv else script.command


def _target(users: ScriptUsers, scripts: Mapping[str, Script | None], **kw: Any) -> NotifyTarget | None:
    kept = {state: s for state, raw in scripts.items() if (s := allowed(raw, users)) is not None}
    generic = allowed(kw.pop("generic", None), users)
    if not kept and generic is None:
        return None
    return NotifyTarget(scripts=kept, generic=generic, **kw)


def build_targets(config: Config, users: ScriptUsers | None = None) -> NotifyTargets:
    """One ``NotifyTarget`` per instance, group, virtual server and real server that has scripts."""
    users = users or script_users(config.global_defs)
    instances: dict[str, NotifyTarget] = {}
    for name, vi in config.vrrp.instances.items():
        states = {
            "MASTER": vi.notify_master,
            "BACKUP": vi.notify_backup,
            "FAULT": vi.notify_fault,
            "STOP": vi.notify_stop,
            "DELETED": vi.notify_deleted,
        }
        report = vi.notify_deleted_set or vi.notify_deleted is not None
        if (t := _target(users, states, generic=vi.notify, report_deleted=report)) is not None:
            instances[name] = t
    groups: dict[str, NotifyTarget] = {}
    for name, sg in config.vrrp.sync_groups.items():
        states = {
            "MASTER": sg.notify_master,
            "BACKUP": sg.notify_backup,
            "FAULT": sg.notify_fault,
            "STOP": sg.notify_stop,
        }
        if (t := _target(users, states, generic=sg.notify)) is not None:
            groups[name] = t
    virtuals: dict[str, NotifyTarget] = {}
    reals: dict[tuple[str, str], NotifyTarget] = {}
    for vs in config.lvs.virtual_servers:
        vkey = vs_key(vs)
        if (t := _target(users, {"UP": vs.quorum_up, "DOWN": vs.quorum_down})) is not None:
            virtuals[vkey] = t
        for rs in vs.real_servers:
            if (t := _target(users, {"UP": rs.notify_up, "DOWN": rs.notify_down})) is not None:
                reals[(vkey, rs_key(vs, rs))] = t
    return NotifyTargets(instances=instances, groups=groups, real_servers=reals, virtual_servers=virtuals)


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
        if state is not None and self.last.get(state[0]) == state[1]:
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
        "no_email_faults": gd.no_email_faults,
        "alert_filter": alert_filter(config),
    }


# --------------------------------------------------------------------------- FIFOs


def fifo_sink(fifo: NotifyFifo, scope: FifoScope, name: str) -> FifoSink:
    """A FIFO sink, created now with keepalived's owner (``notify_fifo PATH [user [group]]``)."""
    sink = FifoSink(fifo.path, scope=scope, name=name)
    try:
        sink.open()
        if fifo.user is not None and os.geteuid() == 0:
            entry = pwd.getpwnam(fifo.user)
            gid = grp.getgrnam(fifo.group).gr_gid if fifo.group else entry.pw_gid
            os.chown(fifo.path, entry.pw_uid, gid)
    except Exception as exc:  # a FIFO problem must not stop the notifier
        log.warning("%s %s: %s (will retry when delivering)", name, fifo.path, exc)
    return sink


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
    users = script_users(config.global_defs)
    targets = build_targets(config, users)
    if "script" in slots:  # every script refused by script security: the sink delivers nothing
        scripts = ScriptSink(
            targets,
            default_user=users.default_user,
            default_group=users.default_group,
            timeout=script_timeout,
        )
        definition: object = ("script", targets_definition(targets), users.default_user, users.default_group)
        plans.append(SinkPlan(scripts, _options_from(base), definition=definition))
    if (mail := smtp_sink(config, settings)) is not None:
        definition = ("smtp", smtp_params(config, settings), settings.smtp.cafile)
        plans.append(SinkPlan(MailStateGate(mail), _options_from(base), definition=definition))
    gd = config.global_defs
    for name, scope, _feeds in FIFOS:
        fifo: NotifyFifo | None = getattr(gd, name)
        if fifo is not None:
            slot = slots[name]
            options = _options_from({**base, **slot.delivery})
            sink = fifo_sink(fifo, scope, name)
            plans.append(SinkPlan(sink, options, slot.feeds, definition=("fifo", scope, fifo)))
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
