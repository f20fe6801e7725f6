"""``lifeline config check|dump``: keepalived's ``-t`` verdict, and the resolved model as JSON.

``check`` also prints, as notes, who runs each script (``vrrp_script chk runs as
nobody:nogroup (script_user)``), resolved by the launcher the services use;
notes never change the verdict.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from typing import Any

import msgspec

from shared.config.diagnostics import ConfigError, Severity
from shared.config.host import Host, LocalHost, NoHost
from shared.config.load import Loaded, load
from shared.config.script import script_user_notes

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_UNREADABLE = 2


def register(commands: Any) -> None:
    config = commands.add_parser("config", help="check or dump a keepalived.conf")
    sub = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = sub.add_parser("check", help="report every problem, as keepalived -t would; exit 0 only if clean")
    _common(check)
    check.set_defaults(run=run_check)
    dump = sub.add_parser("dump", help="print the resolved configuration as JSON")
    _common(dump)
    dump.set_defaults(run=run_dump)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", nargs="+", help="keepalived.conf file(s)")
    parser.add_argument(
        "--no-host-checks",
        action="store_true",
        help="do not look at this machine (interfaces, names, users): for a config meant for another host",
    )
    parser.add_argument(
        "-i", "--config-id", default=None, help="config id for @id lines (default: short hostname)"
    )


def _host(args: argparse.Namespace) -> Host:
    return NoHost() if args.no_host_checks else LocalHost()


def _load(path: str, args: argparse.Namespace) -> Loaded | None:
    try:
        return load(path, config_id=args.config_id, host=_host(args))
    except ConfigError as exc:
        for diagnostic in exc.diagnostics:
            print(diagnostic, file=sys.stderr)
        return None


def run_check(args: argparse.Namespace) -> int:
    worst = EXIT_OK
    for path in args.file:
        loaded = _load(path, args)
        if loaded is None:
            worst = max(worst, EXIT_UNREADABLE)
            continue
        for diagnostic in loaded.diagnostics:
            print(diagnostic, file=sys.stderr)
        notes = script_user_notes(loaded.config, _host(args))  # who runs each script: never a verdict
        for note in sorted(notes, key=lambda d: (d.file, d.line)):
            print(note, file=sys.stderr)
        if any(d.severity is not Severity.NOTE for d in loaded.diagnostics):
            worst = max(worst, EXIT_PROBLEMS)
        elif len(args.file) > 1:
            print(f"{path}: OK", file=sys.stderr)
    return worst


def run_dump(args: argparse.Namespace) -> int:
    worst = EXIT_OK
    for path in args.file:
        loaded = _load(path, args)
        if loaded is None:
            worst = max(worst, EXIT_UNREADABLE)
            continue
        for diagnostic in loaded.diagnostics:
            print(diagnostic, file=sys.stderr)
        encoded = msgspec.json.encode(loaded.config, enc_hook=_encode_extra)
        sys.stdout.write(msgspec.json.format(encoded, indent=2).decode() + "\n")
    return worst


_AS_TEXT = (
    ipaddress.IPv4Address,
    ipaddress.IPv6Address,
    ipaddress.IPv4Network,
    ipaddress.IPv6Network,
    ipaddress.IPv4Interface,
    ipaddress.IPv6Interface,
)


def _encode_extra(obj: object) -> object:
    """Addresses and prefixes print the way keepalived.conf writes them."""
    if isinstance(obj, _AS_TEXT):
        return str(obj)
    raise NotImplementedError(f"cannot encode {type(obj).__name__}")
