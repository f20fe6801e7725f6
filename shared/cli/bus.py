"""``lifeline bus provision``: the admin creates every stream, bucket and consumer the node's services use.

Why a command of its own: the services hold no JetStream administration
right (docs/security.md, "The bus: who may do what"), so something with the
admin's credentials must make what they use, before they start and before a
reload that may add a notifier sink.  ``lifeline up`` calls ``provision_node``
itself; compose runs this command as a one-shot service the others wait for;
systemd as ``lifeline-provision.service``.  It is idempotent (only what
differs changes) and prints one line per object.

The notifier's consumers are computed from keepalived.conf and lifeline.toml
(``services/notifier/consumers.py``); ``--no-health`` and ``--ack-wait`` are
the notifier's flags of the same name, for a notifier started with them.
A file with errors provisions nothing (exit 78, every ``file:line``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from shared.bus.provision import LEASE_TTL, Plan, Report, node_plan, provision
from shared.cli.commands import help_of
from shared.cli.status import EXIT_OK, BusUnreachable, add_bus_options, open_bus, settings_from
from shared.config.model import Config
from shared.exit_codes import Exit
from shared.redact import redact
from shared.runner import config_policy
from shared.settings import Settings, SettingsError


def plan_for(
    node: str,
    config: Config | None,
    settings: Settings,
    *,
    health: bool = True,
    ack_wait: float | None = None,
    lease_ttl: float = LEASE_TTL,
) -> Plan:
    """What ``node`` needs for ``config`` (None: streams and buckets only; no consumer is deleted)."""
    if config is None:
        return node_plan(node, lease_ttl=lease_ttl, prune_consumers=False)
    from services.notifier.consumers import sink_consumers

    delivery = {"ack_wait": ack_wait} if ack_wait is not None else None
    consumers = sink_consumers(config, settings, node, health=health, delivery=delivery)
    return node_plan(node, consumers, lease_ttl=lease_ttl)


async def provision_with(settings: Settings, plan: Plan, timeout: float = 5.0, wait: float = 0.0) -> Report:
    """Connect with ``settings``'s credentials (an admin's) and provision ``plan``.

    ``wait``: seconds to keep trying to reach the server (it may be starting
    alongside, as under systemd or compose); 0: one attempt.
    """
    deadline = time.monotonic() + wait
    while True:
        try:
            async with open_bus(settings, "lifeline-provision", timeout=timeout) as nc:
                return await provision(nc, plan)
        except BusUnreachable:
            if time.monotonic() >= deadline:
                raise
        await asyncio.sleep(0.5)


def provision_node(settings: Settings, config: Config | None, **knobs: Any) -> Report:
    """``provision_with`` for ``settings.node``, from synchronous code (``lifeline up``)."""
    return asyncio.run(provision_with(settings, plan_for(settings.node, config, settings, **knobs)))


def register(commands: Any) -> None:
    """Add ``bus provision`` to the ``lifeline`` command's subparsers."""
    bus = commands.add_parser("bus", help=help_of("bus"))
    verbs = bus.add_subparsers(dest="verb", required=True, metavar="VERB")
    p = verbs.add_parser("provision", help="as admin: create/upgrade what the services use (idempotent)")
    add_bus_options(p)
    p.add_argument("--config", default=None, help="keepalived.conf (default: settings); for the consumers")
    p.add_argument("--config-id", default=None, help="keepalived's -i: which @id lines apply")
    p.add_argument("--node", default=None, help="node name (default: lifeline.toml, else the host name)")
    p.add_argument("--no-health", action="store_true", help="as the notifier's --no-health")
    p.add_argument("--ack-wait", type=float, default=None, help="as the notifier's --ack-wait (s)")
    p.add_argument("--wait", type=float, default=0.0, metavar="S", help="keep trying to reach NATS for S s")
    p.add_argument(
        "--lease-ttl", type=float, default=LEASE_TTL, help=f"notifier lease time, s ({LEASE_TTL:g})"
    )
    p.set_defaults(run=run_provision)


def run_provision(args: argparse.Namespace) -> int:
    try:
        settings = settings_from(args)
    except SettingsError as exc:
        print(f"lifeline: {redact(str(exc))}", file=sys.stderr)
        return Exit.CONFIG
    if args.node:
        settings.node = args.node
    path = args.config or settings.config
    checked = config_policy.read(path, args.config_id or settings.config_id, quiet=True)
    for diagnostic in checked.diagnostics:
        print(diagnostic, file=sys.stderr)
    if checked.config is None:
        print(
            f"lifeline bus provision: {path}: configuration has errors, nothing provisioned", file=sys.stderr
        )
        return Exit.CONFIG
    plan = plan_for(
        settings.node,
        checked.config,
        settings,
        health=not args.no_health,
        ack_wait=args.ack_wait,
        lease_ttl=args.lease_ttl,
    )
    try:
        report = asyncio.run(provision_with(settings, plan, wait=args.wait))
    except BusUnreachable as exc:
        print(f"lifeline: {exc}", file=sys.stderr)
        return Exit.PROBLEMS
    except Exception as exc:  # the server refused something (permissions: not an admin?)
        print(f"lifeline bus provision: {redact(f'{type(exc).__name__}: {exc}')}", file=sys.stderr)
        return Exit.PROBLEMS
    for line in report.lines:
        print(f"{settings.node}: {line}")
    return EXIT_OK
