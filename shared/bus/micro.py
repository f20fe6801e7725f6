"""Registering a service's NATS micro endpoints under node-unique subjects.

Why node-unique subjects: nats-py puts every micro endpoint in queue group
``q``, so if every node listened on ``lifeline.vrrp.status`` one random node
would answer.  ``lifeline.<node>.ctl.<service>.status`` reaches exactly the node
asked for (``ctl`` keeps it out of the event stream's subjects), while
``$SRV.PING|INFO|STATS.lifeline-<service>`` still discovers all of them
(metadata carries node, boot_id and contract version).  Every reply is
redacted here (``shared.redact``): a service's status detail (a sink's
``last_error`` with a webhook URL, a check's detail) never carries a secret.

Only admins may publish on ``ctl`` subjects; what reaches an endpoint some
other way (an answer sent through ``allow_responses``, a JetStream API answer
aimed at the endpoint) has no inbox to answer to, and is dropped here
unread (``caller``, ``shared.bus.trust.control_caller``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from nats.aio.client import Client
from nats.micro import add_service
from nats.micro.request import Request, ServiceError
from nats.micro.service import EndpointConfig, Service, ServiceConfig

from shared.bus.publisher import Publisher
from shared.bus.trust import control_caller
from shared.events import (
    CONTRACT_VERSION,
    ReloadReply,
    ServiceStatus,
    encode_reply,
    reload_subject,
    status_subject,
)
from shared.redact import REDACTOR, redact

log = logging.getLogger("lifeline.bus")

StatusHandler = Callable[[], Awaitable[Mapping[str, object]]]
"""Returns the service's own status detail (JSON-encodable values)."""

ReloadHandler = Callable[[bytes], Awaitable[ReloadReply]]
"""Gets the request body (empty: reload from the usual file) and says whether the reload applied."""


def micro_name(service: str) -> str:
    """NATS micro service name of a lifeline service (``lifeline-vrrp``); the same on every node."""
    return f"lifeline-{service}"


async def register_service(
    nc: Client,
    *,
    node: str,
    service: str,
    version: str,
    status: StatusHandler,
    reload: ReloadHandler | None = None,
    publisher: Publisher | None = None,
    description: str = "",
) -> Service:
    """Start a micro service with ``status`` (and ``reload`` if given) on node-unique subjects.

    The status reply is a ``ServiceStatus``: identity, the publisher's bus
    counters, and whatever ``status()`` returns as ``detail``.  A handler that
    raises answers with a micro error (code 500) and is logged.
    """
    boot_id = publisher.boot_id if publisher is not None else ""

    async def on_status(request: Request) -> None:
        if caller(request, service) is None:
            return
        try:
            detail = REDACTOR.tree(dict(await status()))
        except Exception as exc:
            log.exception("%s status handler failed", service)
            raise _redacted_error(exc) from exc
        reply = ServiceStatus(
            node=node,
            service=service,
            boot_id=boot_id,
            bus=publisher.counters if publisher is not None else None,
            detail=detail,
        )
        await request.respond(encode_reply(reply))

    async def on_reload(request: Request) -> None:
        assert reload is not None
        if caller(request, service) is None:
            return
        try:
            reply = REDACTOR.struct(await reload(request.data))
        except Exception as exc:
            log.exception("%s reload handler failed", service)
            raise _redacted_error(exc) from exc
        await request.respond(encode_reply(reply))

    svc = await add_service(
        nc,
        ServiceConfig(
            name=micro_name(service),
            version=version,
            description=description or f"lifeline {service} on {node}",
            metadata={"node": node, "boot_id": boot_id, "contract": str(CONTRACT_VERSION)},
        ),
    )
    await svc.add_endpoint(
        EndpointConfig(name="status", handler=on_status, subject=status_subject(node, service))
    )
    if reload is not None:
        await svc.add_endpoint(
            EndpointConfig(name="reload", handler=on_reload, subject=reload_subject(node, service))
        )
    await nc.flush()  # the server has our subscriptions: a request sent after we return finds us
    return svc


def caller(request: Request, service: str) -> str | None:
    """The user whose inbox the request names (``""``: the shared one); None: not a request, dropped.

    nats-py's ``Request`` keeps the message it wraps as ``_msg``; the reply
    subject is only there.
    """
    reply = request._msg.reply
    who = control_caller(reply)
    if who is None:
        log.warning("%s: dropped %s: no inbox to answer (reply %r)", service, request.subject, reply)
    return who


def _redacted_error(exc: Exception) -> ServiceError:
    """The micro error a failing handler answers with (nats-py would send ``repr(exc)`` unredacted)."""
    return ServiceError(code="500", description=redact(f"{type(exc).__name__}: {exc}"))
