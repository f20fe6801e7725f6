"""``lifeline config check|dump``: keepalived's ``-t`` verdict, and the resolved model as JSON.

``dump`` shows ``"<redacted>"`` for every secret field of the model (``auth_pass``,
the SSL key's ``password``: fields marked ``shared.redact.SECRET``) and redacts
secrets inside other strings (a URL's password in a notify command, a
``?token=`` in a check's URL), unless ``--show-secrets``: a dump is pasted into
tickets and chats, and a VRRP password there is a password to the segment.

``check`` also prints, as notes, who runs each script (``vrrp_script chk runs as
nobody:nogroup (script_user)``), resolved by the launcher the services use;
notes never change the verdict.  So does every use of a keyword lifeline does
not fully act on: ``FILE:LINE: warning: KEYWORD is not supported by lifeline:
...`` (a compat line, ``shared.config.support``).  It reads as a warning but
leaves the verdict to keepalived's rules, unless ``--strict-compat`` makes it an
error, for operators who want a hard guarantee that lifeline does all a file says.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from pathlib import Path
from typing import Any

import msgspec

from shared.cli.commands import help_of
from shared.config.diagnostics import ConfigError, Diagnostic, Severity
from shared.config.host import Host, LocalHost, NoHost
from shared.config.load import Loaded, load
from shared.config.script import script_user_notes
from shared.exit_codes import Exit
from shared.redact import hide_secret_fields
from shared.settings import SettingsError, load_settings, settings_path, settings_warnings

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_UNREADABLE = 2
"""``check`` keeps these, keepalived -t's own statuses; ``dump`` uses the table's 78 (shared.exit_codes)."""


def register(commands: Any) -> None:
    config = commands.add_parser("config", help=help_of("config"))
    sub = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = sub.add_parser("check", help="report every problem, as keepalived -t would; exit 0 only if clean")
    _common(check)
    check.add_argument(
        "--settings",
        help="lifeline.toml to warn about too (default: $LIFELINE_SETTINGS or /etc/lifeline/lifeline.toml"
        " when it exists, unless --no-host-checks); its warnings never change the exit status",
    )
    check.add_argument("--json", action="store_true", help="one JSON document: the verdict and every line")
    check.add_argument(
        "--strict-compat",
        action="store_true",
        help="make every keyword lifeline does not fully act on an error (exit 1), not a warning",
    )
    check.set_defaults(run=run_check)
    dump = sub.add_parser("dump", help="print the resolved configuration as JSON")
    _common(dump)
    dump.add_argument(
        "--show-secrets",
        action="store_true",
        help='print passwords (auth_pass, SSL key password...) instead of "<redacted>"',
    )
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
    if args.json:
        return _check_json(args)
    worst = EXIT_OK
    for path in args.file:
        status, lines = _check_one(path, args)
        for line in lines:
            print(line, file=sys.stderr)
        worst = max(worst, status)
        if status == EXIT_OK and len(args.file) > 1:
            print(f"{path}: OK", file=sys.stderr)
    return max(worst, check_settings(args))


def _check_one(path: str, args: argparse.Namespace) -> tuple[int, list[Diagnostic]]:
    """keepalived -t's status for one file, and every line it prints (diagnostics, then notes)."""
    try:
        loaded = load(path, config_id=args.config_id, host=_host(args))
    except ConfigError as exc:
        return EXIT_UNREADABLE, list(exc.diagnostics)
    diagnostics = [_strict(d) if args.strict_compat else d for d in loaded.diagnostics]
    notes = script_user_notes(loaded.config, _host(args))  # who runs each script: never a verdict
    failed = any(d.severity.fails_check for d in diagnostics)
    return (EXIT_PROBLEMS if failed else EXIT_OK), [
        *diagnostics,
        *sorted(notes, key=lambda d: (d.file, d.line)),
    ]


def _check_json(args: argparse.Namespace) -> int:
    """``--json``: ``{"ok", "exit", "files": [{"file", "exit", "lines": [{file, line, severity, ...}]}]}``."""
    files: list[dict[str, Any]] = []
    for path in args.file:
        status, lines = _check_one(path, args)
        rows = [{**msgspec.to_builtins(d), "severity": d.severity.label} for d in lines]
        files.append({"file": path, "exit": status, "lines": rows})
    worst: int = max([int(f["exit"]) for f in files] + [check_settings(args)])
    document = {"ok": worst == EXIT_OK, "exit": worst, "files": files}
    sys.stdout.write(msgspec.json.encode(document).decode() + "\n")
    return worst


def _strict(diagnostic: Diagnostic) -> Diagnostic:
    """``--strict-compat``: a compat line becomes an error, so the check fails."""
    if diagnostic.severity is not Severity.COMPAT:
        return diagnostic
    return msgspec.structs.replace(diagnostic, severity=Severity.ERROR)


def check_settings(args: argparse.Namespace) -> int:
    """Warn about lifeline.toml (credentials in clear...); exit 2 only if a file named by --settings is bad.

    keepalived.conf's verdict is keepalived's: lifeline.toml has no word in
    it, so its warnings leave the exit status alone.  Without ``--settings``
    the host's own file is read when it exists (not for a config checked for
    another host).
    """
    named = getattr(args, "settings", None)
    path = Path(named) if named else None
    source = settings_path(path)
    if path is None and (args.no_host_checks or not source.exists()):
        return EXIT_OK
    try:
        settings = load_settings(path, required=path is not None)
    except SettingsError as exc:
        print(f"{exc}", file=sys.stderr)
        return EXIT_UNREADABLE if path is not None else EXIT_OK
    for warning in settings_warnings(settings):
        print(f"{source}: warning: {warning}", file=sys.stderr)
    return EXIT_OK


def run_dump(args: argparse.Namespace) -> int:
    """The model as JSON, even of a file with errors (to see what was made of it), but then exit 78.

    A script that dumps and then deploys must not take a broken file for a
    good one: a file with errors exits 78 (warnings, which keepalived runs
    with, do not change the status).
    """
    worst = EXIT_OK
    for path in args.file:
        loaded = _load(path, args)
        if loaded is None:
            worst = int(Exit.CONFIG)
            continue
        for diagnostic in loaded.diagnostics:
            print(diagnostic, file=sys.stderr)
        if any(d.severity is Severity.ERROR for d in loaded.diagnostics):
            worst = int(Exit.CONFIG)
        config = loaded.config if args.show_secrets else hide_secret_fields(loaded.config)
        encoded = msgspec.json.encode(config, enc_hook=_encode_extra)
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
