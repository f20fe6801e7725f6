"""Re-publish each event to another NATS subject (another account, a leaf node, a bridge).

Why a sink and not a NATS mapping: a subject mapping moves every message, while
this runs after the notifier's filtering and ordering, and only acknowledges an
event once the server has it.  The payload is the event's bus JSON unchanged,
and ``Nats-Msg-Id`` stays ``boot_id:seq``, so a JetStream stream behind the
target subject de-duplicates the re-sends a retry may cause.
"""

from __future__ import annotations

from collections.abc import Callable

import nats.errors
from nats.aio.client import Client
from nats.js.errors import Error as JetStreamError

from services.notifier.sinks.base import DeliveryContext, DeliveryError
from shared.events import MSG_ID_HEADER, Event, encode, encode_token, msg_id, subject_for

SubjectFor = Callable[[Event, DeliveryContext], str]


class RepublishSink:
    """Publishes to ``subject``: a template or a function of the event.

    A template may use ``{subject}`` (the original subject), ``{node}`` (the
    node as a token) and ``{type}`` (``instance_state``...): the default
    ``mirror.{subject}`` keeps the original subject under a prefix.  With
    ``jetstream`` the publish waits for a stream's ack; otherwise a flush
    round-trip proves the server received it.
    """

    def __init__(
        self,
        nc: Client,
        subject: str | SubjectFor = "mirror.{subject}",
        *,
        jetstream: bool = False,
        timeout: float = 5.0,  # nats-py's flush takes whole seconds
        name: str = "republish",
    ) -> None:
        self.name = name
        self.nc = nc
        self.subject = subject
        self.jetstream = jetstream
        self.timeout = timeout

    def target_subject(self, event: Event, context: DeliveryContext) -> str:
        if callable(self.subject):
            return self.subject(event, context)
        original = context.subject or subject_for(event)
        kind = type(event).__struct_config__.tag
        return self.subject.format(subject=original, node=encode_token(event.node or "-"), type=kind)

    async def deliver(self, event: Event, context: DeliveryContext) -> None:
        subject = self.target_subject(event, context)
        headers = {MSG_ID_HEADER: msg_id(event)}
        payload = encode(event)
        try:
            if self.jetstream:
                await self.nc.jetstream().publish(subject, payload, timeout=self.timeout, headers=headers)
            else:
                await self.nc.publish(subject, payload, headers=headers)
                await self.nc.flush(timeout=max(1, round(self.timeout)))
        except (nats.errors.BadSubjectError, nats.errors.MaxPayloadError) as exc:
            raise DeliveryError(f"cannot publish to {subject!r}: {exc!r}", retryable=False) from exc
        except (nats.errors.Error, JetStreamError, TimeoutError, OSError) as exc:
            raise DeliveryError(f"publish to {subject!r} failed: {exc!r}", retryable=True) from exc
