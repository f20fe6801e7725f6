"""``lifeline events``: a live tail of the event stream, for people or for scripts.

Why an ordered ephemeral consumer: a tail must leave nothing behind on the
server (no durable to clean up) and must never show events out of order; the
ordered consumer re-creates itself on a gap, which a plain push consumer does
not.  ``--since`` starts from a time (DeliverPolicy by start time), otherwise
only new events are shown.
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Any, assert_never

import msgspec
import nats.errors
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from shared.cli.commands import help_of
from shared.cli.status import EXIT_OK, BusUnreachable, add_bus_options, open_bus, run_on_bus
from shared.events import (
    EVENT_STREAM,
    PREFIX,
    Event,
    GroupState,
    InstanceControl,
    InstanceEvent,
    InstanceState,
    OutboxOverflow,
    PoolEvent,
    RealServerHealth,
    ServiceReload,
    SplitBrain,
    TrackerResult,
    decode_for_subject,
)
from shared.exit_codes import Exit
from shared.redact import REDACTOR, redact
from shared.settings import Settings

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``30s``, ``10m``, ``2h``, ``1d`` ago, or an ISO-8601 timestamp (UTC when no zone is given)."""
    now = now or datetime.now(UTC)
    m = _DURATION.match(text.strip())
    if m:
        return now - timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--since {text!r}: expected a duration like 10m or an ISO timestamp") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def iso(ts_ns: int) -> str:
    """``2026-11-25T18:00:00Z`` (second precision: what people read)."""
    return datetime.fromtimestamp(ts_ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def human_line(event: Event) -> str:
    """One line per event, newest facts first after time and node: what changed, and why."""
    head = f"{iso(event.ts)} {event.node}"
    match event:
        case InstanceState():
            prev = f"{event.previous}->" if event.previous else ""
            what = f"{event.instance} {prev}{event.state} ({event.reason})"
            return f"{head} vrrp {what} prio {event.effective_priority}"
        case GroupState():
            prev = f"{event.previous}->" if event.previous else ""
            return f"{head} group {event.group} {prev}{event.state} ({event.reason})"
        case InstanceControl():
            prio = f" priority {event.priority}" if event.priority is not None else ""
            return f"{head} control {event.instance} {event.action}{prio} by {event.requested_by}"
        case SplitBrain():
            mine = f"ours {event.own_priority}, theirs {event.peer_priority}"
            return f"{head} split_brain {event.instance} vrid {event.vrid} peer {event.peer} ({mine})"
        case InstanceEvent():
            peer = f" from {event.peer} prio {event.peer_priority}" if event.peer else ""
            what = f"{event.instance} {event.kind} {event.state} prio {event.effective_priority}"
            return f"{head} vrrp {what}{peer}"
        case RealServerHealth():
            why = f": {event.detail}" if event.detail else ""
            up = "UP" if event.up else "DOWN"
            return f"{head} health {event.virtual} {event.real} {up} ({event.checker}{why})"
        case PoolEvent():
            real = f" {event.real}" if event.real else ""
            return f"{head} lvs {event.virtual} {event.kind}{real} weight_sum {event.weight_sum}"
        case TrackerResult():
            return f"{head} track {event.tracker} {'ok' if event.ok else 'FAILED'} {event.detail}".rstrip()
        case ServiceReload():
            if event.ok:
                return f"{head} {event.service} reloaded ({event.trigger}): {event.detail}"
            errors = "; ".join(event.errors)
            return f"{head} {event.service} RELOAD REFUSED ({event.trigger}), old config kept: {errors}"
        case OutboxOverflow():
            return f"{head} {event.service} OUTBOX OVERFLOW: {event.dropped} dropped (bound {event.bound})"
    assert_never(event)


def filter_subject(text: str | None) -> str | None:
    """``--subject``: a full subject, or one without the ``lifeline.`` prefix (``*.vrrp.>``)."""
    if not text:
        return None
    return text if text.startswith(f"{PREFIX}.") else f"{PREFIX}.{text}"


def register(commands: Any) -> None:
    p = commands.add_parser("events", help=help_of("events"))
    add_bus_options(p)
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--since", default=None, metavar="WHEN", help="start at a time: 10m, 2h, 1d, or ISO-8601")
    p.add_argument("--subject", default=None, metavar="FILTER", help="subject filter, e.g. 'n1.vrrp.>'")
    p.add_argument("-n", "--count", type=int, default=None, metavar="N", help="exit after N events")
    p.add_argument("--idle-exit", type=float, default=None, metavar="S", help="exit after S s without events")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        args.start = parse_since(args.since) if args.since else None
    except ValueError as exc:
        print(f"lifeline: {exc}", file=sys.stderr)
        return int(Exit.USAGE)
    return run_on_bus(tail, args)


async def tail(args: argparse.Namespace, settings: Settings) -> int:
    config = ConsumerConfig(filter_subject=filter_subject(args.subject))
    if args.start is not None:
        config.deliver_policy = DeliverPolicy.BY_START_TIME
        config.opt_start_time = args.start.isoformat().replace("+00:00", "Z")
    else:
        config.deliver_policy = DeliverPolicy.NEW
    async with open_bus(settings, "lifeline-events") as nc:
        js = nc.jetstream()
        try:
            sub = await js.subscribe(
                config.filter_subject or "", stream=EVENT_STREAM, ordered_consumer=True, config=config
            )
        except NotFoundError:
            print(f"lifeline: no event stream {EVENT_STREAM} yet (no service has started)", file=sys.stderr)
            return int(Exit.NOT_FOUND)
        shown = 0
        while args.count is None or shown < args.count:
            try:
                msg = await sub.next_msg(timeout=args.idle_exit if args.idle_exit is not None else 3600.0)
            except TimeoutError:
                if nc.is_closed:
                    raise _lost(settings, shown) from None
                if args.idle_exit is not None:
                    break
                continue
            except nats.errors.Error:
                raise _lost(settings, shown) from None
            try:
                event = decode_for_subject(msg.subject, msg.data)
            except (ValueError, msgspec.DecodeError):
                continue  # not ours (a newer contract, a foreign publisher): skip, do not die
            if args.json:
                record = REDACTOR.tree({"subject": msg.subject, **msgspec.to_builtins(event)})
                line = msgspec.json.encode(record).decode()
            else:
                line = redact(human_line(event))
            print(line, flush=True)
            shown += 1
        await sub.unsubscribe()
    return EXIT_OK


def _lost(settings: Settings, shown: int) -> BusUnreachable:
    """NATS went away under a tail: one line and exit 69, like NATS away at the start."""
    return BusUnreachable(f"lost the connection to NATS at {settings.nats_url} after {shown} event(s)")
