"""The ``lifeline`` command: the operator's one entry point.

Subcommands are small modules of their own; this file only routes.  Every
user mistake (a bad file, a bad flag) ends in a message and an exit code, never
a traceback: a traceback here is a lifeline bug and is reported as one.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

EXIT_INTERNAL = 70


def build_parser() -> argparse.ArgumentParser:
    from shared.cli import bus as cli_bus
    from shared.cli import config as cli_config
    from shared.cli import demo as cli_demo
    from shared.cli import up as cli_up
    from shared.cli.ctl import register as register_ctl
    from shared.cli.events import register as register_events
    from shared.cli.instance import register as register_instance
    from shared.cli.metrics import register as register_metrics
    from shared.cli.status import register as register_status

    parser = argparse.ArgumentParser(prog="lifeline", description="keepalived, as small services on NATS")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    cli_config.register(commands)
    cli_up.register(commands)
    cli_bus.register(commands)
    register_status(commands)
    register_events(commands)
    register_ctl(commands)
    register_instance(commands)
    register_metrics(commands)
    cli_demo.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] == ["health"] and "--local" in words:  # a container healthcheck: no import it can spare
        from shared.cli.ctl import run_local_health

        return run_local_health(words[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
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
