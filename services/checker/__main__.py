"""``python -m services.checker --config FILE --node NAME --nats URL``.

User mistakes (missing or invalid config, bad flags) end in one line on stderr
and exit code 1 (2 for bad flags), never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from services.checker.service import CheckerService, Options
from shared.config.diagnostics import ConfigError
from shared.config.load import load_strict
from shared.config.model import Config
from shared.settings import SettingsError, load_settings

log = logging.getLogger("lifeline.checker")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m services.checker", description="lifeline checker service")
    p.add_argument(
        "--config", help="keepalived.conf (default: lifeline.toml's, else /etc/keepalived/keepalived.conf)"
    )
    p.add_argument("--node", help="node name (default: lifeline.toml's, else the host name)")
    p.add_argument("--nats", help="NATS URL (default: lifeline.toml's, else nats://127.0.0.1:4222)")
    p.add_argument("--config-id", help="keepalived's -i, for @conditions (default: host name)")
    p.add_argument("--replica-id", help="this replica's id among the node's checkers (default: random)")
    p.add_argument(
        "--tracker-heartbeat", type=float, default=1.0, help="heartbeat of process/file trackers, s"
    )
    p.add_argument("--process-scan", type=float, default=None, help="process table scan period, s")
    p.add_argument("--log-level", default="INFO")
    return p


def load_config(path: str, config_id: str | None) -> Config:
    return load_strict(path, config_id=config_id, log=log)


async def serve(config: Config, options: Options) -> None:
    service = CheckerService(config, options)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await service.start()
    await stop.wait()
    log.info("stopping")
    await service.stop()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        settings = load_settings(
            node=args.node, nats_url=args.nats, config=args.config, config_id=args.config_id
        )
        config = load_config(settings.config, settings.config_id)
    except SettingsError as exc:
        print(f"checker: {exc}", file=sys.stderr)
        return 1
    except ConfigError as exc:
        print(f"checker: configuration refused:\n{exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"checker: {exc}", file=sys.stderr)
        return 1
    options = Options(
        node=settings.node,
        nats_url=settings.nats_url,
        tracker_heartbeat=args.tracker_heartbeat,
        process_scan=args.process_scan,
    )
    if args.replica_id:
        options.replica_id = args.replica_id
    try:
        asyncio.run(serve(config, options))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
