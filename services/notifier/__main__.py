"""``python -m services.notifier --config FILE --node NAME --nats URL``.

User mistakes (missing or invalid config, bad flags) end in one line on stderr
and exit code 1 (2 for bad flags), never a traceback.  SIGTERM/SIGINT stop
gracefully (what is in hand is finished and acknowledged, leases handed over).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from services.notifier.plugins import SinkPluginError
from services.notifier.service import NotifierOptions, NotifierService
from shared.config.diagnostics import ConfigError
from shared.config.load import load_strict
from shared.config.model import Config
from shared.settings import Settings, SettingsError, load_settings

log = logging.getLogger("lifeline.notifier")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m services.notifier", description="lifeline notifier service")
    p.add_argument("--config", help="keepalived.conf (default: lifeline.toml's)")
    p.add_argument("--node", help="node name (default: lifeline.toml's, else the host name)")
    p.add_argument("--nats", help="NATS URL (default: lifeline.toml's, else nats://127.0.0.1:4222)")
    p.add_argument("--settings", help="lifeline.toml (default: $LIFELINE_SETTINGS or /etc/lifeline/)")
    p.add_argument("--config-id", help="keepalived's -i, for @conditions (default: host name)")
    p.add_argument("--no-health", action="store_true", help="do not consume real-server health")
    p.add_argument("--lease-ttl", type=float, default=6.0, help="sink lease time between replicas, s")
    p.add_argument("--ack-wait", type=float, default=10.0, help="JetStream ack wait per event, s")
    p.add_argument("--retry-initial", type=float, default=0.5, help="first retry delay, s")
    p.add_argument("--retry-max", type=float, default=30.0, help="longest retry delay, s")
    p.add_argument("--max-attempts", type=int, default=25, help="attempts before dead-lettering (0: never)")
    p.add_argument("--script-timeout", type=float, default=30.0, help="notify script timeout, s")
    p.add_argument("--log-level", default="INFO")
    return p


def load_config(path: str, config_id: str | None) -> Config:
    return load_strict(path, config_id=config_id, log=log)


async def serve(service: NotifierService) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await service.start()
    print("notifier ready", flush=True)  # tests and supervisors wait for this line
    await stop.wait()
    log.info("stopping")
    await service.stop()


def options_from(args: Any) -> NotifierOptions:
    delivery = {
        "ack_wait": args.ack_wait,
        "initial_delay": args.retry_initial,
        "max_delay": args.retry_max,
        "max_attempts": args.max_attempts,
    }
    return NotifierOptions(
        health=not args.no_health,
        lease_ttl=args.lease_ttl,
        script_timeout=args.script_timeout,
        delivery=delivery,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        settings: Settings = load_settings(
            Path(args.settings) if args.settings else None,
            node=args.node,
            nats_url=args.nats,
            config=args.config,
            config_id=args.config_id,
        )
        config = load_config(settings.config, settings.config_id)
        service = NotifierService(config, settings, options=options_from(args))
        asyncio.run(serve(service))
    except (SettingsError, OSError, SinkPluginError, ValueError) as exc:
        print(f"notifier: {exc}", file=sys.stderr)
        return 1
    except ConfigError as exc:
        print(f"notifier: configuration refused:\n{exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
