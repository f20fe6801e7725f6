"""The one interface between the notifier's delivery core and every sink.

Why this small: like an aiosmtpd handler, a sink is policy behind a tiny
surface.  The delivery core owns consuming, ordering, acknowledging, retrying
and giving up; a sink only turns one event into one effect (a script run, a
mail, a FIFO line, a POST) and says whether a failure is worth retrying.  So a
third-party sink is a class with a ``name`` and one coroutine, and a sink can be
tested alone against a real server without any NATS.

Contract for ``deliver``:

- return normally: the effect happened (or the sink has nothing to do for this
  event: a FIFO has no line for a tracker heartbeat);
- raise ``DeliveryError(retryable=True)``: try this same event again later;
- raise ``DeliveryError(retryable=False)``: retrying cannot help (bad address,
  refused recipient, missing script); the core dead-letters it;
- any other exception is a sink bug, treated as retryable by the core;
- the core calls ``deliver`` for one sink one event at a time, in order, and
  may call it again with the same event (``context.attempt`` > 1): sinks make
  re-deliveries recognizable (Message-ID, ``Idempotency-Key``, ``LIFELINE_SEQ``).

At a reload a changed sink is replaced by a new object behind the same durable
consumer (docs/notifier.md, "Reload").  A sink whose state must survive that
(the mail gate's memory of the last state mailed per object) implements
``HandoverSink.take_over``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from shared.events import Event


class DeliveryError(Exception):
    """A sink could not deliver an event; ``retryable`` tells the core whether to try again."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class DeliveryContext:
    """What the core knows about one delivery attempt, beyond the event itself.

    ``subject`` is the NATS subject the event arrived on; ``attempt`` counts
    from 1; ``stream_seq`` is the JetStream stream sequence when there is one.
    """

    subject: str = ""
    attempt: int = 1
    stream_seq: int | None = None


@runtime_checkable
class Sink(Protocol):
    """A delivery target.  ``name`` identifies it in logs, metrics and its durable consumer."""

    name: str

    async def deliver(self, event: Event, context: DeliveryContext) -> None:
        """Deliver one event, or raise ``DeliveryError``."""
        ...


@runtime_checkable
class ClosableSink(Sink, Protocol):
    """A sink holding resources (a FIFO fd, a connection); the core awaits ``close`` at shutdown."""

    async def close(self) -> None: ...


@runtime_checkable
class HandoverSink(Sink, Protocol):
    """A sink that inherits state from the sink it replaces at a reload.

    The core calls ``take_over(previous)`` once, after the last delivery on
    ``previous`` has finished and before the first one on this sink, so
    neither runs meanwhile; ``previous`` is closed (if closable) afterwards, so
    take what must stay open (and leave ``previous`` nothing to close).
    ``previous`` may be of another class: check before taking anything.
    """

    def take_over(self, previous: Sink) -> None: ...
