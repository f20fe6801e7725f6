"""The notifier's durable consumers, from keepalived.conf and lifeline.toml alone (pure).

Why a function of the files: the notifier's NATS user may only pull from its
consumers, never create them (a user that may create a consumer may create one
that pushes onto any subject; docs/security.md).  So the admin's provisioning
(``shared.bus.provision``, ``lifeline bus provision``) creates them, and it
must find the same names and filters the notifier will bind to, without
running it: the sinks are the same ``SinkSlot``s the notifier's wiring builds
from (``services/notifier/wiring.py``), each read through ``notifier_<sink>``.

The notifier's flags that shape a consumer (``--no-health``, ``--ack-wait``)
have the same names on ``lifeline bus provision``; a notifier whose flags
differ from its consumer's says so in its log and status and goes on with the
consumer as it is (it skips what it did not ask for).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.notifier.wiring import FeedName, SinkSlot, config_slots, runner_options, settings_slots
from shared.bus.provision import ConsumerPlan
from shared.config.model import Config
from shared.events import EVENT_STREAM, NOTIFIER_CONSUMER_PREFIX, PREFIX, encode_token
from shared.settings import Settings


def durable_name(sink: str) -> str:
    """The consumer every replica shares for ``sink`` (one token: no dots or spaces)."""
    return f"{NOTIFIER_CONSUMER_PREFIX}{encode_token(sink)}"


def feed_subjects(node: str, feed: FeedName) -> tuple[str, ...]:
    """The event-stream subjects behind each feed a sink may read (see ``SinkPlan.feeds``).

    Only this node's events: with nodes sharing a server, or joined in a fleet,
    a notifier must never run another node's scripts or mail its transitions.
    """
    token = encode_token(node)
    kinds = ("vrrp", "lvs") if feed == "events" else ("health",)
    return tuple(f"{PREFIX}.{token}.{kind}.>" for kind in kinds)


def sink_subjects(node: str, feeds: tuple[FeedName, ...], *, health: bool = True) -> tuple[str, ...]:
    """Every subject a sink reads (``health`` False: the notifier's ``--no-health``)."""
    return tuple(s for f in feeds if f != "health" or health for s in feed_subjects(node, f))


def consumer_for(
    slot: SinkSlot, node: str, *, health: bool = True, delivery: Mapping[str, Any] | None = None
) -> ConsumerPlan | None:
    """The durable consumer of one sink; None when it reads nothing (health only, ``--no-health``)."""
    subjects = sink_subjects(node, slot.feeds, health=health)
    if not subjects:
        return None
    options = runner_options(slot, delivery)
    return ConsumerPlan(
        durable=durable_name(slot.name),
        filter_subjects=subjects,
        stream=EVENT_STREAM,
        ack_wait=options.ack_wait,
        max_ack_pending=options.max_held,
        deliver_policy=options.start,
    )


def sink_consumers(
    config: Config,
    settings: Settings,
    node: str,
    *,
    health: bool = True,
    delivery: Mapping[str, Any] | None = None,
) -> list[ConsumerPlan]:
    """Every consumer the notifier of ``node`` will read, for these files and these flags."""
    slots = [*config_slots(config), *settings_slots(settings)]
    plans = [consumer_for(slot, node, health=health, delivery=delivery) for slot in slots]
    return [p for p in plans if p is not None]
