"""``fifo_write_vrrp_states_on_reload``: at a reload, the VRRP state lines written again to the FIFOs.

keepalived writes them right after its reload, when the FIFO scripts were
just started again, so that a new reader knows where every group and
instance stands (which lines: ``core.fifos.reload_lines``).  The notifier is
not the process that runs the instances, so it reads where they stand from
the state bucket (``lifeline_state``, one batched direct get), where vrrp writes every transition
under its subject's key: this node's entries for the groups and instances of
the new configuration, in its order.  An instance the bucket does not know
yet (a new one) gets no line; its first transition comes as an event.

The lines go through the FIFO sink, between two deliveries (``write_lines``),
and only in the replica delivering that FIFO.  A failure (NATS away, a FIFO
full past its write timeout) is logged: the reload itself stands.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from typing import TypeVar

import msgspec
from nats.aio.client import Client

from services.notifier.core.fifos import reload_lines
from services.notifier.sinks.base import DeliveryError
from services.notifier.sinks.fifo import FifoSink
from shared.bus.direct_get import last_messages
from shared.config.model import Config
from shared.events import (
    STATE_BUCKET,
    GroupState,
    InstanceState,
    decode,
    group_subject,
    instance_subject,
    kv_key_for_subject,
)

log = logging.getLogger("lifeline.notifier.reload_states")

S = TypeVar("S", GroupState, InstanceState)


async def current_states(
    nc: Client, node: str, config: Config
) -> tuple[list[GroupState], list[InstanceState]]:
    """The state bucket's last group and instance states of ``config``'s names, in the file's order.

    One batched direct get (``shared.bus.direct_get``): the notifier may not
    create the consumer a KV watch or ``keys()`` would need.
    """
    groups = [group_subject(node, n) for n in config.vrrp.sync_groups]
    instances = [instance_subject(node, n) for n in config.vrrp.instances]
    keys = {subject: f"$KV.{STATE_BUCKET}.{kv_key_for_subject(subject)}" for subject in [*groups, *instances]}
    stored = await last_messages(nc, f"KV_{STATE_BUCKET}", list(keys.values())) if keys else {}

    def last(subject: str, kind: type[S]) -> S | None:
        message = stored.get(keys[subject])
        if message is None or message.deleted or not message.data:
            return None
        with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError):
            event = decode(message.data)
            return event if isinstance(event, kind) else None
        return None

    return (
        [g for subject in groups if (g := last(subject, GroupState))],
        [i for subject in instances if (i := last(subject, InstanceState))],
    )


async def write_states(nc: Client, node: str, config: Config, fifos: Iterable[FifoSink]) -> int:
    """Write the reload lines to every VRRP-carrying FIFO in ``fifos``; the number of lines per FIFO."""
    targets = [f for f in fifos if f.scope in ("all", "vrrp")]
    if not targets:
        return 0
    try:
        groups, instances = await current_states(nc, node, config)
    except Exception as exc:
        log.warning("fifo_write_vrrp_states_on_reload: cannot read the state bucket: %s", exc)
        return 0
    lines = reload_lines(groups, instances)
    for fifo in targets:
        try:
            await fifo.write_lines(lines)
        except DeliveryError as exc:
            log.warning("fifo_write_vrrp_states_on_reload: %s: %s", fifo.name, exc)
    names = ", ".join(f.name for f in targets)
    log.info("fifo_write_vrrp_states_on_reload: %d line(s) to %s", len(lines), names)
    return len(lines)
