"""``lifeline reload [SERVICE]`` and ``lifeline health SERVICE``: the control endpoints, by hand.

Why through NATS and not signals: the services may run in other containers or
on another host of the fleet; their node-unique micro endpoints
(``lifeline.<node>.ctl.<service>.reload|status``) reach exactly the node asked
for.  Control subjects are for admins: run these with the admin's settings.

``health`` answers with an exit code only and never waits long.  With
``--local`` (compose's healthcheck, run inside the service's container with
the service's own user, who may not publish on control subjects) it reads
the service's liveness file instead (``shared.runner.alive``): healthy when
fresh and ready.  That path imports almost nothing (``run_local_health``;
``shared.cli.main`` takes it before importing the other commands): about
20 ms of imports instead of 370 ms (``python -X importtime``).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from shared.cli.commands import help_of

if TYPE_CHECKING:
    from nats.aio.client import Client

    from shared.events import ReloadReply
    from shared.settings import Settings

SERVICES = ["vrrp", "checker", "lvs", "notifier", "http", "bfd"]
"""``shared.events.Service``'s values (spelled out: the local health check does not import the contract)."""
EXIT_OK = 0
EXIT_PROBLEMS = 1


def register(commands: Any) -> None:
    from shared.cli.status import run_on_bus

    reload = commands.add_parser("reload", help=help_of("reload"))
    reload.add_argument("service", nargs="?", choices=SERVICES, help="one service (default: all)")
    _common(reload, timeout=10.0)
    reload.set_defaults(run=lambda args: run_on_bus(do_reload, args))

    health = commands.add_parser("health", help=help_of("health"))
    _health_arguments(health)
    _common(health, timeout=2.0)
    health.set_defaults(run=run_health)


def _health_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("service", choices=SERVICES)
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing; the exit code says it")
    parser.add_argument(
        "--local",
        action="store_true",
        help="read its liveness file here (no bus; container checks)",
    )
    parser.add_argument("--replica-id", default=None, help="--local: the replica's id, if it was given one")


def run_local_health(argv: list[str]) -> int:
    """``lifeline health SERVICE --local``: the liveness file only; imports the standard library only."""
    from shared.runner import alive

    parser = argparse.ArgumentParser(prog="lifeline health", add_help=True)
    _health_arguments(parser)
    args, _ignored = parser.parse_known_args(argv)
    problem = _local_problem(alive, args.service, args.replica_id)
    if not args.quiet:
        print(f"{args.service}: {'healthy' if problem is None else problem}")
    return EXIT_OK if problem is None else EXIT_PROBLEMS


def _local_problem(alive: Any, service: str, replica: str | None) -> str | None:
    """A replica's own file; without ``--replica-id``, healthy when any of the service's files is."""
    if replica:
        problem: str | None = alive.check(alive.alive_path(service, replica))
        return problem
    directory = alive.run_dir()
    paths = [alive.alive_path(service, None, directory), *sorted(directory.glob(f"{service}-*.alive"))]
    problems: list[str | None] = [alive.check(path) for path in paths]
    if any(p is None for p in problems):
        return None
    return problems[0]


def _common(parser: argparse.ArgumentParser, timeout: float) -> None:
    from shared.cli.status import add_bus_options

    add_bus_options(parser)
    parser.add_argument("--node", default=None, help="node to ask (default: this node, from lifeline.toml)")
    parser.add_argument("--timeout", type=float, default=timeout, metavar="S", help=f"default {timeout:g}")
    parser.add_argument("--json", action="store_true", help="one JSON object for scripts")


async def request_reload(nc: Client, node: str, service: str, timeout: float) -> ReloadReply | str:
    """The service's ``ReloadReply``, or why there is none (one short phrase)."""
    import msgspec
    import nats.errors

    from shared.events import ReloadReply, reload_subject
    from shared.redact import redact

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
    import asyncio

    from shared.cli.status import open_bus
    from shared.redact import redact

    node = args.node or settings.node
    services = [args.service] if args.service else SERVICES
    async with open_bus(settings, "lifeline-reload") as nc:
        replies = await asyncio.gather(*(request_reload(nc, node, s, args.timeout) for s in services))
    if args.json:
        return _reload_json(node, services, replies, required=bool(args.service))
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


def _reload_json(node: str, services: list[str], replies: list[ReloadReply | str], *, required: bool) -> int:
    """``reload --json``: ``{"node", "ok", "services": [{"service", "answered", "ok", ...}]}``."""
    import msgspec

    from shared.redact import REDACTOR

    rows: list[dict[str, Any]] = []
    for service, reply in zip(services, replies, strict=True):
        if isinstance(reply, str):
            rows.append({"service": service, "answered": False, "ok": not required, "problem": reply})
        else:
            rows.append({"service": service, "answered": True, **msgspec.to_builtins(reply)})
    ok = all(r["ok"] for r in rows) and any(r["answered"] for r in rows)
    print(msgspec.json.encode(REDACTOR.tree({"node": node, "ok": ok, "services": rows})).decode())
    return EXIT_OK if ok else EXIT_PROBLEMS


async def check_health(settings: Settings, node: str, service: str, timeout: float) -> str | None:
    """None when healthy, else why not (for the one line ``health`` prints)."""
    import msgspec
    import nats.errors

    from shared.cli.status import BusUnreachable, open_bus
    from shared.events import ServiceStatus, status_subject

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
    import asyncio

    from shared.cli.status import settings_from
    from shared.redact import redact
    from shared.settings import SettingsError

    if args.local:
        from shared.runner import alive

        local = _local_problem(alive, args.service, args.replica_id)
        if not args.quiet:
            print(f"{args.service}: {'healthy' if local is None else local}")
        return EXIT_OK if local is None else EXIT_PROBLEMS
    try:
        settings = settings_from(args)
    except SettingsError as exc:
        print(f"lifeline: {redact(str(exc))}", file=sys.stderr)
        return EXIT_PROBLEMS
    node = args.node or settings.node
    problem = asyncio.run(check_health(settings, node, args.service, args.timeout))
    if args.json:
        import json

        healthy = problem is None
        print(json.dumps({"node": node, "service": args.service, "healthy": healthy, "problem": problem}))
    elif not args.quiet:
        print(f"{node} {args.service}: {'healthy' if problem is None else problem}")
    return EXIT_OK if problem is None else EXIT_PROBLEMS
