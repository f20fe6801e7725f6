"""Prometheus text exposition and the tiny HTTP server behind ``lifeline metrics``.

Why no client library: the text format is a few lines of escaping, the data
is rebuilt from the bus (KV state plus the services' status replies), and a
dependency would be one more thing in every image.  Why rebuilt and not kept:
nothing to keep in sync, and a scrape of a node whose services are down still
shows the last known state (with ``lifeline_*_up`` 0).  A result serves every
GET for a second (``metrics_cache``), so requests cannot multiply bus scrapes.
Why 127.0.0.1 by default: the endpoint has no authentication and shows the
node's whole state; ``--listen`` opens it to a Prometheus elsewhere.
What is exported, and which names come from the keepalived exporters, is in
``shared/cli/metrics_collect.py`` and docs/operations.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from shared.cli.commands import help_of
from shared.redact import redact

log = logging.getLogger("lifeline.metrics")


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

DEFAULT_LISTEN = "127.0.0.1"

Scrape = Callable[[], Awaitable[str]]


class CannotListen(Exception):
    """The address is taken or not this host's: one line, exit 2."""


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, scrape: Scrape) -> None:
    """HTTP/1.0-style: one request, one response, close.  Enough for Prometheus and curl."""
    try:
        request = await asyncio.wait_for(reader.readline(), 5.0)
        while (await asyncio.wait_for(reader.readline(), 5.0)) not in (b"\r\n", b"\n", b""):
            pass
        parts = request.decode("latin-1").split()
        path = parts[1].split("?", 1)[0] if len(parts) >= 2 else ""
        if len(parts) < 2 or parts[0] not in ("GET", "HEAD"):
            status, ctype, body = "405 Method Not Allowed", "text/plain", b"GET /metrics\n"
        elif path == "/metrics":
            try:
                status, ctype, body = "200 OK", CONTENT_TYPE, (await scrape()).encode()
            except Exception as exc:  # a scrape must fail loudly to Prometheus, not kill the server
                why = redact(f"{type(exc).__name__}: {exc}")
                log.warning("scrape failed: %s", why)
                status, ctype, body = "503 Service Unavailable", "text/plain", f"{why}\n".encode()
        else:
            status, ctype, body = "404 Not Found", "text/plain", b"see /metrics\n"
        head = (
            f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        writer.write(head.encode() + (body if parts and parts[0] != "HEAD" else b""))
        await writer.drain()
    except (TimeoutError, ConnectionError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def serve(scrape: Scrape, host: str, port: int) -> asyncio.Server:
    """Start the HTTP server; the caller owns it (``close()`` + ``wait_closed()``)."""
    return await asyncio.start_server(lambda r, w: _handle(r, w, scrape), host, port)


# --------------------------------------------------------------------------- command


def register(commands: Any) -> None:
    from shared.cli.status import add_bus_options

    p = commands.add_parser("metrics", help=help_of("metrics"))
    add_bus_options(p)
    p.add_argument("--port", type=int, default=None, help="listen port (default: metrics_port, 9650)")
    p.add_argument(
        "--listen",
        default=DEFAULT_LISTEN,
        metavar="ADDR",
        help=f"listen address (default {DEFAULT_LISTEN}: this host only; 0.0.0.0 or an address for a remote "
        "Prometheus)",
    )
    p.add_argument("--node", default=None, help="node to export (default: this node)")
    p.add_argument("--once", action="store_true", help="print one scrape to stdout and exit")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from shared.cli.status import BusUnreachable, settings_from
    from shared.exit_codes import Exit
    from shared.settings import SettingsError

    try:
        settings = settings_from(args)
        return asyncio.run(_main(args, settings))
    except SettingsError as exc:
        print(f"lifeline: {redact(str(exc))}", file=sys.stderr)
        return int(Exit.CONFIG)
    except BusUnreachable as exc:
        print(f"lifeline: {redact(str(exc))}", file=sys.stderr)
        return int(exc.code)
    except CannotListen as exc:
        print(f"lifeline: {exc}", file=sys.stderr)
    return int(Exit.PROBLEMS)


async def _main(args: argparse.Namespace, settings: Any) -> int:
    from shared.bus import connect
    from shared.cli.metrics_cache import ScrapeCache
    from shared.cli.metrics_collect import Collector
    from shared.cli.restarts_file import restarts_path
    from shared.cli.status import open_bus

    node = args.node or settings.node
    port = args.port if args.port is not None else settings.metrics_port
    if args.once:
        async with open_bus(settings, "lifeline-metrics") as nc:
            sys.stdout.write(await Collector(nc, node, restarts=restarts_path(settings)).scrape())
        return 0
    # Serving: listen at once and keep reconnecting, so a scrape during a NATS outage
    # says ``lifeline_bus_up 0`` instead of the target vanishing from Prometheus.
    collector = Collector(None, node, restarts=restarts_path(settings))
    address = f"{_url_host(args.listen)}:{port}"
    try:
        server = await serve(ScrapeCache(collector.scrape), args.listen, port)
    except OSError as exc:
        raise CannotListen(f"cannot listen on {address}: {exc.strerror or exc}") from None
    where = f"http://{address}/metrics"
    print(f"lifeline metrics for node {node} on {where}", file=sys.stderr)

    async def attach() -> None:
        collector.nc = await connect(settings.nats_url, "lifeline-metrics", settings=settings)

    task = asyncio.create_task(attach())
    try:
        async with server:
            await server.serve_forever()
    finally:
        task.cancel()
        if collector.nc is not None:
            await collector.nc.close()
    return 0


def _url_host(host: str) -> str:
    """An IPv6 address in brackets, as a URL writes it."""
    return f"[{host}]" if ":" in host else host
