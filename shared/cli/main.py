"""The ``lifeline`` command: the operator's one entry point.

Subcommands are small modules of their own; this file only routes.  Every
user mistake (a bad file, a bad flag) ends in a message and an exit code, never
a traceback: a traceback here is a lifeline bug and is reported as one.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

from shared.cli.commands import COMMANDS

EXIT_INTERNAL = 70
DISTRIBUTION = "lifeline-ha"
"""The name lifeline is published under (``lifeline`` itself is another project on PyPI)."""


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or (``command``) one command in full and the others by name only.

    ``lifeline --help`` and every command only import what they run: the
    other commands appear in the help from ``shared.cli.commands``' table.
    """
    parser = argparse.ArgumentParser(prog="lifeline", description="keepalived, as small services on NATS")
    parser.add_argument("--version", action=_Version, help="print the version and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    wanted = COMMANDS if command is None else {command: COMMANDS[command]} if command in COMMANDS else {}
    for name, (module, _help) in COMMANDS.items():
        if name in wanted and name not in commands.choices:
            importlib.import_module(module).register(commands)
    for name, (_module, help_line) in COMMANDS.items():
        if name not in commands.choices:
            commands.add_parser(name, help=help_line, add_help=False)
    # argparse lists the choices in the order they were added: keep the table's order
    commands._choices_actions.sort(key=lambda action: list(COMMANDS).index(action.dest))
    return parser


class _Version(argparse.Action):
    """``--version``, reading the version only when asked (importlib.metadata costs 40 ms)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help=kwargs.get("help"))

    def __call__(self, parser: argparse.ArgumentParser, *_args: Any, **_kwargs: Any) -> None:
        print(f"lifeline {version()}")
        parser.exit()


def version() -> str:
    """The installed distribution's version (``unknown`` in a bare source tree)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown"


def _command_of(words: list[str]) -> str | None:
    """The first word that names a command (options before it take no values at this level)."""
    return next((w for w in words if not w.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] == ["health"] and "--local" in words:  # a container healthcheck: no import it can spare
        from shared.cli.ctl import run_local_health

        return run_local_health(words[1:])
    parser = build_parser(_command_of(words) or "")
    args = parser.parse_args(words)
    try:
        code: int = args.run(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug of ours, not the user's: say so plainly, without a traceback
        from shared.redact import redact

        what = redact(f"{type(exc).__name__}: {exc}")
        print(f"lifeline: internal error: {what} (please report this)", file=sys.stderr)
        return EXIT_INTERNAL
    return code


if __name__ == "__main__":
    sys.exit(main())
