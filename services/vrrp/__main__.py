"""``python -m services.vrrp --config FILE --node NAME --nats URL [--config-id ID]``.

Why no traceback on user errors: an operator who points us at a broken file
must read what is wrong (keepalived's ``file:line`` diagnostics) and get exit
status 1, exactly like ``keepalived -t``; a traceback would hide that.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from services.vrrp.kernel.precise_loop import precise_loop
from services.vrrp.service import VrrpService, errors_of, log_diagnostics
from shared.config.diagnostics import ConfigError
from shared.config.load import load
from shared.config.model import Config
from shared.settings import SettingsError, load_settings

EXIT_CONFIG = 1


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m services.vrrp", description="lifeline VRRP service")
    parser.add_argument(
        "--config", help="keepalived.conf (default: settings / /etc/keepalived/keepalived.conf)"
    )
    parser.add_argument("--node", help="node name on the bus (default: settings / host name)")
    parser.add_argument(
        "--nats", dest="nats_url", help="NATS URL (default: settings / nats://127.0.0.1:4222)"
    )
    parser.add_argument("--config-id", help="keepalived's -i: which @id blocks apply")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default INFO)")
    return parser.parse_args(argv)


def setup_logging(level: str) -> None:
    """One line per event on stderr, keepalived-like: ``time lifeline-vrrp[pid]: message``."""
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s lifeline-vrrp[%(process)d]: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("nats").setLevel(logging.CRITICAL)  # its reconnect noise; ours says enough


def read_config(path: str, config_id: str | None) -> Config | None:
    """Load the file; diagnostics on stderr; None when it has errors (nothing to run)."""
    try:
        loaded = load(path, config_id=config_id)
    except ConfigError as exc:
        print(f"lifeline-vrrp: {exc}", file=sys.stderr)
        return None
    log_diagnostics(loaded.diagnostics)
    if errors_of(loaded.diagnostics):
        print(f"lifeline-vrrp: {path}: configuration has errors, not starting", file=sys.stderr)
        return None
    return loaded.config


async def serve(config: Config, *, config_path: str, node: str, nats_url: str, config_id: str | None) -> int:
    service = VrrpService(config_path=config_path, node=node, nats_url=nats_url, config_id=config_id)
    return await service.run(config)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.log_level)
    try:
        settings = load_settings(node=args.node, nats_url=args.nats_url, config=args.config)
    except SettingsError as exc:
        print(f"lifeline-vrrp: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    config_id = args.config_id or settings.config_id
    config = read_config(settings.config, config_id)
    if config is None:
        return EXIT_CONFIG
    with asyncio.Runner(loop_factory=precise_loop) as runner:
        return runner.run(
            serve(
                config,
                config_path=settings.config,
                node=settings.node,
                nats_url=settings.nats_url,
                config_id=config_id,
            )
        )


if __name__ == "__main__":
    sys.exit(main())
