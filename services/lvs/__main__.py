"""``python -m services.lvs --config FILE --node NAME --nats URL [--keep]``.

Signals: SIGHUP reloads (diff only), SIGTERM/SIGINT stop and remove the
services this node created unless ``--keep`` (keepalived's ``-I``).  User
mistakes end in one line on stderr and exit code 1, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from services.lvs.kernel.ipvs import IpvsError
from services.lvs.service import LvsService, Options
from shared.settings import SettingsError, load_settings

log = logging.getLogger("lifeline.lvs")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m services.lvs", description="lifeline lvs service")
    p.add_argument("--config", help="keepalived.conf (default: lifeline.toml's)")
    p.add_argument("--node", help="node name (default: lifeline.toml's, else the host name)")
    p.add_argument("--nats", help="NATS URL (default: lifeline.toml's, else nats://127.0.0.1:4222)")
    p.add_argument("--config-id", help="keepalived's -i, for @conditions")
    p.add_argument(
        "--keep",
        action="store_true",
        help="leave virtual and real servers in the kernel at stop (keepalived -I)",
    )
    p.add_argument(
        "--state-file",
        help="where the services this node created are remembered across restarts "
        "(default /run/lifeline/lvs-NODE.json)",
    )
    p.add_argument("--log-level", default="INFO")
    return p


async def serve(service: LvsService) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    reloads: set[asyncio.Task[None]] = set()

    def on_hup() -> None:
        task = loop.create_task(_reload(service))
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, on_hup)
    await service.start()
    print("lvs: ready", flush=True)
    await stop.wait()
    log.info("stopping")
    await service.stop()


async def _reload(service: LvsService) -> None:
    reply = await service.reload()
    log.info("reload: %s %s", "applied" if reply.ok else "refused", reply.detail or reply.errors)
    print(f"lvs: reloaded {reply.detail}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        settings = load_settings(
            node=args.node, nats_url=args.nats, config=args.config, config_id=args.config_id
        )
        state = Path(args.state_file or f"/run/lifeline/lvs-{settings.node}.json")
        options = Options(
            config=settings.config,
            node=settings.node,
            nats_url=settings.nats_url,
            keep=args.keep,
            state_file=state,
            config_id=settings.config_id,
        )
        service = LvsService(options)
    except (SettingsError, IpvsError, OSError) as exc:
        print(f"lvs: {exc}", file=sys.stderr)
        return 1
    try:
        asyncio.run(serve(service))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
