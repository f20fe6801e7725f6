"""Runtime control over the bus: set an instance's priority, put it in maintenance, clear both.

Why it exists: operators move mastership for maintenance windows without
editing keepalived.conf (and without a reload that would lose the reason).
Endpoints are node-unique like ``status`` (``lifeline.<node>.ctl.vrrp.set_priority``,
``.maintenance``, ``.clear``); a request is JSON::

    {"instance": "VI_1", "priority": 200, "requested_by": "alice"}
    {"instance": "VI_1", "duration": 600, "requested_by": "alice"}   # maintenance, seconds
    {"instance": "VI_1", "requested_by": "alice"}                    # clear

Semantics an operator expects (docs/vrrp.md, "Runtime control"):

* ``set_priority`` replaces the configured base priority (1-254; an address
  owner's 255 cannot be changed); trackers still adjust it.  Mastership then
  moves by the normal protocol (a higher backup preempts at its down timer).
* ``maintenance`` hands over at once (a MASTER sends priority 0 and drops its
  VIPs) and the instance stays BACKUP, not competing, until the duration ends
  or ``clear``; then it competes again (and preempts a lower master).
* ``clear`` drops both overrides.
* Overrides are kept across reloads (also when the instance is restarted by
  one) until cleared; a restart of the service forgets them.

Every accepted change is an ``InstanceControl`` event naming ``requested_by``
and ``nats_user`` (in the event stream, through the service's ordered outbox
like ``InstanceState``) and shows in ``status`` under ``control``.

Control is for admins, checked twice: the server lets only admin users
publish on ``lifeline.<node>.ctl.>``, and here a request counts only if it
names an inbox to answer to (``shared.bus.trust.control_caller``): what lands
on these subjects any other way (an answer sent through ``allow_responses``,
a JetStream API answer or a consumer's delivery aimed here) has none, or a
``$JS.`` one, and is dropped unread.  The inbox's user (``_INBOX_admin.`` →
``admin``) is recorded as ``nats_user`` beside the ``requested_by`` the
request claims.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import msgspec
from nats.micro.service import EndpointConfig, Service

from services.vrrp.core.machine_events import Maintenance, SetPriority
from services.vrrp.core.machine_types import OWNER_PRIORITY
from services.vrrp.instance import InstanceRunner
from shared.bus.micro import caller
from shared.events import ControlReply, InstanceControl, Notice, encode_reply, service_subject

if TYPE_CHECKING:
    from nats.micro.request import Request

log = logging.getLogger("lifeline.vrrp")

MAX_MAINTENANCE = 7 * 24 * 3600.0
"""A week: longer is more likely a typo (milliseconds) than an intent."""


class ControlRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The body of every control request (fields not used by an endpoint must be absent)."""

    instance: str
    requested_by: str
    priority: int | None = None
    duration: float | None = None


@dataclass
class Override:
    """What an operator set on one instance; ``maintenance_until`` is wall-clock seconds."""

    requested_by: str
    priority: int | None = None
    maintenance_until: float | None = None


class Host(Protocol):
    """The service as control sees it."""

    runners: dict[str, InstanceRunner]
    node: str

    def notice(self, event: Notice) -> None:
        """Publish an operator event (``VrrpService.notice``)."""


class Control:
    """The three endpoints and the overrides they leave (kept across reloads)."""

    def __init__(self, host: Host) -> None:
        self._host = host
        self.overrides: dict[str, Override] = {}

    async def register(self, svc: Service) -> None:
        """Add ``set_priority``, ``maintenance`` and ``clear`` to the vrrp micro service."""
        for name in ("set_priority", "maintenance", "clear"):
            subject = service_subject(self._host.node, "vrrp", name)
            await svc.add_endpoint(EndpointConfig(name=name, handler=self._handler(name), subject=subject))

    def _handler(self, action: str) -> Callable[[Request], Awaitable[None]]:
        async def handle(request: Request) -> None:
            user = caller(request, "vrrp")
            if user is None:
                return
            reply = self.apply(action, request.data, nats_user=user)
            await request.respond(encode_reply(reply))

        return handle

    # ------------------------------------------------------------------ the rules

    def apply(self, action: str, body: bytes, *, nats_user: str = "") -> ControlReply:
        """Validate and apply one request; the reply says what is now in force.

        ``nats_user``: who asked as the server knows it (the user of the reply inbox).
        """
        try:
            req = msgspec.json.decode(body, type=ControlRequest)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return ControlReply(ok=False, error=f"bad request: {exc}")
        runner = self._host.runners.get(req.instance)
        if runner is None:
            return ControlReply(
                ok=False, error=f"no running instance {req.instance!r}", instance=req.instance
            )
        if not req.requested_by.strip():
            return ControlReply(ok=False, error="requested_by is required", instance=req.instance)
        error = self._check(action, req, runner)
        if error:
            return ControlReply(ok=False, error=error, instance=req.instance)
        current = self.overrides.get(req.instance, Override(requested_by=req.requested_by))
        current.requested_by = req.requested_by
        if action == "set_priority":
            current.priority = req.priority
        elif action == "maintenance":
            assert req.duration is not None
            current.maintenance_until = time.time() + req.duration
        else:
            current = Override(requested_by=req.requested_by)
        self.overrides[req.instance] = current
        self._push(runner, current, clear=action == "clear")
        if action == "clear":
            del self.overrides[req.instance]
        who = f"{req.requested_by} (NATS user {nats_user or '?'})"
        log.info("(%s) %s requested by %s", req.instance, action, who)
        until = current.maintenance_until
        self._host.notice(
            InstanceControl(
                instance=req.instance,
                action=action,
                requested_by=req.requested_by,
                priority=req.priority,
                base_priority=runner.machine.base_priority,
                maintenance_until=None if until is None else int(until * 1e9),
                nats_user=nats_user,
            )
        )
        return ControlReply(
            ok=True,
            instance=req.instance,
            base_priority=runner.machine.base_priority,
            maintenance_until=None if until is None else int(until * 1e9),
        )

    @staticmethod
    def _check(action: str, req: ControlRequest, runner: InstanceRunner) -> str:
        if action == "set_priority":
            if req.priority is None or not 1 <= req.priority <= 254:
                return "priority must be 1..254"
            if runner.plan.params.priority == OWNER_PRIORITY:
                return "an address owner (priority 255) keeps its priority"
        elif action == "maintenance":
            if req.duration is None or not 0 < req.duration <= MAX_MAINTENANCE:
                return f"duration must be 0 < seconds <= {MAX_MAINTENANCE:g}"
        elif action != "clear":
            return f"unknown action {action!r}"
        return ""

    def _push(self, runner: InstanceRunner, o: Override, *, clear: bool = False) -> None:
        """Feed the machine the override (clear: the configured priority, no maintenance)."""
        if clear:
            runner.feed(SetPriority(priority=None))
            runner.feed(Maintenance(until=None))
            runner.control = {}
            return
        runner.feed(SetPriority(priority=o.priority))
        remaining = None if o.maintenance_until is None else o.maintenance_until - time.time()
        if remaining is not None and remaining > 0:
            runner.feed(Maintenance(until=runner.now() + remaining))
        active = o.maintenance_until is not None and remaining is not None and remaining > 0
        runner.control = {
            "requested_by": o.requested_by,
            "priority": o.priority,
            "maintenance_until": int(o.maintenance_until * 1e9) if active and o.maintenance_until else None,
        }

    def restore(self, runner: InstanceRunner) -> None:
        """Re-apply an instance's override before its ``Start`` (a reload keeps overrides)."""
        o = self.overrides.get(runner.name)
        if o is not None:
            self._push(runner, o)
