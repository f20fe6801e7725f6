"""Which received messages a service may act on: the second check behind the server's permissions.

Why a second check: nats-server checks who may *publish* on a subject, but any
user allowed a JetStream API request or a JetStream publish chooses the reply
subject of that request, and the server sends its answer there, whatever it
is and whoever listens.  A direct get (``$JS.API.DIRECT.GET...``, even with
``no_hdr``), a pull request (``CONSUMER.MSG.NEXT``) or a publish acknowledgement
can so be made to land on a tracker, health or control subject.  None of those
looks like what the services exchange (docs/security.md, "The bus: who may do
what"):

- an event a service acts on (a tracker result, a real server's health, an
  instance's state) was published by a ``Publisher``: it carries
  ``Nats-Msg-Id``, none of the headers JetStream adds to what it hands out
  (``Nats-Stream``, ``Nats-Subject``, ``Status``), and no ``$JS.`` reply
  (a consumer's delivery has a ``$JS.ACK.`` one): ``live_event``;
- a control request names a reply inbox, ``_INBOX_<user>.`` (the private
  prefix only that user may subscribe to) or the shared ``_INBOX.``; an answer
  sent through ``allow_responses`` or by the JetStream API has no reply
  subject at all, and a consumer's delivery a ``$JS.`` one: ``control_caller``;
- replica traffic is republished by ``REPLICA_STREAM``, whose headers no
  client can forge (the server replaces them): ``republished``.

Pure functions of the message's subject, reply and headers, unit tested.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from shared.events import MSG_ID_HEADER

log = logging.getLogger("lifeline.bus.trust")

JETSTREAM_HEADERS = ("Nats-Stream", "Nats-Subject", "Nats-Sequence", "Status")
"""Headers the server puts on what JetStream hands out (direct gets, republished messages, statuses)."""

INBOX = "_INBOX"
"""nats-py's default inbox prefix, shared by every client that sets none."""


def inbox_prefix(user: str) -> str:
    """``_INBOX_<user>``: a user's private inbox prefix (``shared.bus.connect`` sets it)."""
    return f"{INBOX}_{user}"


def live_event(reply: str | None, headers: Mapping[str, str] | None) -> bool:
    """Was this message published by a client's ``Publisher``, not made by JetStream on request?"""
    h = headers or {}
    if not h.get(MSG_ID_HEADER):
        return False
    if any(name in h for name in JETSTREAM_HEADERS):
        return False
    return not (reply or "").startswith("$JS.")


def control_caller(reply: str | None) -> str | None:
    """The user whose inbox a control request names (``""`` for the shared one); None: refuse it.

    ``_INBOX_admin.x`` → ``admin``; ``_INBOX.x`` → ``""``; no reply, a
    ``$JS.`` reply or anything else that is not an inbox → None.
    """
    if not reply:
        return None
    if reply.startswith(f"{INBOX}."):
        return ""
    if not reply.startswith(f"{INBOX}_"):
        return None
    user, dot, rest = reply[len(INBOX) + 1 :].partition(".")
    if not (user and dot and rest):
        return None
    return user


def republished(headers: Mapping[str, str] | None, stream: str, say_subject: str) -> bool:
    """Did ``stream`` republish this, from a message first published on ``say_subject``?"""
    h = headers or {}
    return h.get("Nats-Stream") == stream and h.get("Nats-Subject") == say_subject


class Refusals:
    """Messages a service would not act on: counted (for its status), logged the 1st and every 100th time."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.count = 0

    def refuse(self, subject: str, why: str) -> None:
        self.count += 1
        if self.count == 1 or self.count % 100 == 0:
            log.warning(
                "%s: ignoring a message on %s: %s (%d so far)", self.service, subject, why, self.count
            )
