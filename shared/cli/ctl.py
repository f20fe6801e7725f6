"""``lifeline reload [SERVICE]`` and ``lifeline health SERVICE``: the control endpoints, by hand.

Why through NATS and not signals: the services may run in other containers or
on another host of the fleet; their node-unique micro endpoints
(``lifeline.<node>.ctl.<service>.reload|status``) reach exactly the node asked
for.  ``health`` is what compose healthchecks call, so it answers with an exit
code only (0: the status endpoint answered in time) and never waits long.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import msgspec
import nats.errors

from shared.cli.status import (
    EXIT_OK,
    EXIT_PROBLEMS,
    BusUnreachable,
    add_bus_options,
    open_bus,
    run_on_bus,
    settings_from,
)
from shared.events import ReloadReply, Service, ServiceStatus, reload_subject, status_subject
from shared.redact import redact
from shared.settings import Settings, SettingsError

SERVICES = [s.value for s in Service]


def register(commands: Any) -> None:
    reload = commands.add_parser("reload", help="ask services to re-read their configuration")
    reload.add_argument("service", nargs="?", choices=SERVICES, help="one service (default: all)")
    _common(reload, timeout=10.0)
    reload.set_defaults(run=lambda args: run_on_bus(do_reload, args))

    health = commands.add_parser("health", help="exit 0 if SERVICE's status endpoint answers (healthchecks)")
    health.add_argument("service", choices=SERVICES)
    _common(health, timeout=2.0)
    health.add_argument("-q", "--quiet", action="store_true", help="print nothing; the exit code says it")
    health.set_defaults(run=run_health)


def _common(parser: argparse.ArgumentParser, timeout: float) -> None:
    add_bus_options(parser)
    parser.add_argument("--node", default=None, help="node to ask (default: this node, from lifeline.toml)")
    parser.add_argument("--timeout", type=float, default=timeout, metavar="S", help=f"default {timeout:g}")


async def request_reload(nc: Any, node: str, service: str, timeout: float) -> ReloadReply | str:
    """The service's ``ReloadReply``, or why there is none (one short phrase)."""
    try:
        msg = await nc.request(reload_subject(node, service), b"", timeout=timeout)
    except nats.errors.NoRespondersError:
        return "not running (no reload endpoint answers)"
    except nats.errors.TimeoutError:
        return f"no answer within {timeout:g}s"
    headers = msg.headers or {}
    if headers.get("Nats-Service-Error-Code"):
        return f"error {headers['Nats-Service-Error-Code']}: {redact(headers.get('Nats-Service-Error', ''))}"
    try:
        return msgspec.json.decode(msg.data, type=ReloadReply)
    except msgspec.DecodeError as exc:
        return f"unreadable reply: {exc}"


async def do_reload(args: argparse.Namespace, settings: Settings) -> int:
    node = args.node or settings.node
    services = [args.service] if args.service else SERVICES
    async with open_bus(settings, "lifeline-reload") as nc:
        replies = await asyncio.gather(*(request_reload(nc, node, s, args.timeout) for s in services))
    code, answered = EXIT_OK, 0
    for service, reply in zip(services, replies, strict=True):
        if isinstance(reply, str):
            print(f"{node} {service}: {reply}")
            if args.service:  # asked for this one: its absence is a failure
                code = EXIT_PROBLEMS
            continue
        answered += 1
        verdict = "reloaded" if reply.ok else "REFUSED"
        print(f"{node} {service}: {verdict}" + (f" ({redact(reply.detail)})" if reply.detail else ""))
        for error in reply.errors:
            print(f"  {redact(error)}")
        if not reply.ok:
            code = EXIT_PROBLEMS
    return code if answered else EXIT_PROBLEMS


async def check_health(settings: Settings, node: str, service: str, timeout: float) -> str | None:
    """None when healthy, else why not (for the one line ``health`` prints)."""
    try:
        async with open_bus(settings, f"lifeline-health-{service}", timeout=timeout) as nc:
            msg = await nc.request(status_subject(node, service), b"", timeout=timeout)
    except BusUnreachable as exc:
        return str(exc)
    except nats.errors.NoRespondersError:
        return "not running"
    except nats.errors.TimeoutError:
        return f"no answer within {timeout:g}s"
    try:
        status = msgspec.json.decode(msg.data, type=ServiceStatus)
    except msgspec.DecodeError:
        return "answered with an unreadable status"
    return None if status.service == service else f"answered as {status.service!r}"


def run_health(args: argparse.Namespace) -> int:
    """Exit 0 or 1 only (compose treats anything else as 1 anyway); NATS away is unhealthy too."""
    try:
        settings = settings_from(args)
    except SettingsError as exc:
        print(f"lifeline: {redact(str(exc))}", file=sys.stderr)
        return EXIT_PROBLEMS
    node = args.node or settings.node
    problem = asyncio.run(check_health(settings, node, args.service, args.timeout))
    if not args.quiet:
        print(f"{node} {args.service}: {'healthy' if problem is None else problem}")
    return EXIT_OK if problem is None else EXIT_PROBLEMS
