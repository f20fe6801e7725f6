"""``lifeline instance set-priority|maintenance|clear``: runtime control of a VRRP instance.

Why a command and not a raw ``nats req``: the request needs ``requested_by``
(every change is an ``InstanceControl`` event naming who asked), the node is
part of the subject, and a refusal must end in an exit code a script can test.
The endpoints and their rules are ``services/vrrp/control.py`` (docs/vrrp.md,
"Runtime control"); this module only builds the request and prints the reply.
"""

from __future__ import annotations

import argparse
import getpass
import os
import re
import socket
import sys
from datetime import UTC, datetime
from typing import Any

import msgspec
import nats.errors

from shared.cli.commands import help_of
from shared.cli.status import EXIT_OK, EXIT_PROBLEMS, add_bus_options, open_bus, run_on_bus
from shared.events import ControlReply, service_subject
from shared.redact import REDACTOR, redact
from shared.settings import Settings

DEFAULT_MAINTENANCE = "1h"
"""How long ``maintenance`` lasts when ``--for`` is not given."""

ACTIONS = {"set-priority": "set_priority", "maintenance": "maintenance", "clear": "clear"}
"""Command word → endpoint name."""

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``10m``, ``2h``, ``1d`` → seconds (``argparse`` type: bad input is a usage error)."""
    m = _DURATION.match(text.strip())
    if not m or float(m.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a positive duration like 600, 90s, 10m, 2h, 1d")
    return float(m.group(1)) * _UNITS[m.group(2)]


def base_priority(text: str) -> int:
    """1..254, checked here: 255 belongs to the address owner and 0 means "resign" (use maintenance)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 1 <= value <= 254:
        raise argparse.ArgumentTypeError(
            f"{value} is outside 1..254 (0: use maintenance; 255 is the owner's)"
        )
    return value


def default_requester(env: dict[str, str] | None = None) -> str:
    """``$SUDO_USER`` (the human behind sudo) or ``$USER``, at this host: what the event records."""
    env = dict(os.environ) if env is None else env
    user = env.get("SUDO_USER") or env.get("USER")
    if not user:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = "unknown"
    return f"{user}@{socket.gethostname()}"


def build_request(action: str, args: argparse.Namespace) -> dict[str, Any]:
    """The JSON body of one control request (only the fields the endpoint accepts)."""
    body: dict[str, Any] = {"instance": args.instance, "requested_by": args.by}
    if action == "set_priority":
        body["priority"] = args.priority
    elif action == "maintenance":
        body["duration"] = args.duration
    return body


def register(commands: Any) -> None:
    p = commands.add_parser("instance", help=help_of("instance"))
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")

    sp = sub.add_parser("set-priority", help="replace the configured base priority (1-254) until clear")
    sp.add_argument("instance", metavar="NAME")
    sp.add_argument("priority", metavar="PRIO", type=base_priority)

    mt = sub.add_parser("maintenance", help="hand over now (priority 0) and stay BACKUP for a while")
    mt.add_argument("instance", metavar="NAME")
    mt.add_argument(
        "--for",
        dest="duration",
        type=parse_duration,
        default=parse_duration(DEFAULT_MAINTENANCE),
        metavar="DURATION",
        help=f"600, 90s, 10m, 2h, 1d (default {DEFAULT_MAINTENANCE}; at most 7d)",
    )

    cl = sub.add_parser("clear", help="drop the priority override and end maintenance")
    cl.add_argument("instance", metavar="NAME")

    for parser in (sp, mt, cl):
        add_bus_options(parser)
        parser.add_argument("--node", default=None, help="node to control (default: this node)")
        parser.add_argument(
            "--by",
            default=None,
            metavar="WHO",
            help="who asks, recorded in the event (default: $SUDO_USER or $USER, @hostname)",
        )
        parser.add_argument("--timeout", type=float, default=5.0, metavar="S", help="default 5")
        parser.add_argument("--json", action="store_true", help="print the reply as JSON")
        parser.set_defaults(run=lambda args: run_on_bus(control, args))


def describe(action: str, node: str, reply: ControlReply) -> str:
    """One line for people: what is now in force, or why it was refused."""
    who = f"{node} {reply.instance}"
    if not reply.ok:
        return f"{who}: REFUSED: {reply.error}"
    prio = f"base priority {reply.base_priority}" if reply.base_priority is not None else "applied"
    if action == "maintenance" and reply.maintenance_until is not None:
        until = datetime.fromtimestamp(reply.maintenance_until / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return f"{who}: in maintenance until {until} ({prio})"
    if action == "clear":
        return f"{who}: overrides cleared ({prio})"
    return f"{who}: {prio}"


async def control(args: argparse.Namespace, settings: Settings) -> int:
    action = ACTIONS[args.action]
    node = args.node or settings.node
    if args.by is None:
        args.by = default_requester()
    body = msgspec.json.encode(build_request(action, args))
    subject = service_subject(node, "vrrp", action)
    async with open_bus(settings, "lifeline-instance") as nc:
        try:
            msg = await nc.request(subject, body, timeout=args.timeout)
        except nats.errors.NoRespondersError:
            print(f"{node} {args.instance}: vrrp is not running on node {node!r} (no responder)")
            return EXIT_PROBLEMS
        except nats.errors.TimeoutError:
            print(f"{node} {args.instance}: no answer within {args.timeout:g}s")
            return EXIT_PROBLEMS
    headers = msg.headers or {}
    if headers.get("Nats-Service-Error-Code"):
        code, text = headers["Nats-Service-Error-Code"], headers.get("Nats-Service-Error", "")
        print(f"{node} {args.instance}: service error {code}: {redact(text)}")
        return EXIT_PROBLEMS
    try:
        reply = REDACTOR.struct(msgspec.json.decode(msg.data, type=ControlReply))
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        print(f"{node} {args.instance}: unreadable reply: {redact(str(exc))}")
        return EXIT_PROBLEMS
    if args.json:
        sys.stdout.write(
            msgspec.json.encode({"node": node, "action": action, **msgspec.to_builtins(reply)}).decode()
        )
        sys.stdout.write("\n")
    else:
        print(describe(action, node, reply))
    return EXIT_OK if reply.ok else EXIT_PROBLEMS
