"""``lifeline status``: where every node, instance, tracker, real server and replica stands now.

Why it reads the KV bucket and not the services: the bucket answers at once,
even when a service (or a whole node) is down, which is exactly when an operator
asks.  Services are discovered separately with ``$SRV.INFO`` so the table also
says which replicas are alive; an entry whose producer is gone is marked stale
instead of being hidden.  The bus helpers here (``open_bus``, ``discover``; the
KV reader is ``shared.cli.fleet``) are shared by the other operator commands and the metrics endpoint.
``settings_from`` registers the settings' secrets with ``shared.redact``, and
every message and view printed here is redacted, so no command shows the NATS
password (in a URL's userinfo or verbatim) or a secret carried by an entry.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, assert_never

import msgspec
import nats
import nats.errors
from nats.aio.client import Client

from shared.bus.connect import connect_options, user_inbox
from shared.cli.commands import help_of
from shared.cli.fleet import FLEET_DOMAINS_ENV, StateEntry, parse_domains, read_fleet_state, read_state
from shared.cli.restarts_file import read_restarts, restarts_path
from shared.events import (
    Event,
    GroupState,
    InstanceControl,
    InstanceEvent,
    InstanceState,
    OutboxOverflow,
    PoolEvent,
    RealServerHealth,
    ServiceReload,
    SplitBrain,
    TrackerResult,
)
from shared.exit_codes import Exit
from shared.redact import REDACTOR, redact, register_secrets_of
from shared.settings import Settings, SettingsError, load_settings

EXIT_OK = int(Exit.OK)
EXIT_PROBLEMS = int(Exit.PROBLEMS)
EXIT_UNREACHABLE = int(Exit.UNREACHABLE)

DEFAULT_STALE_AFTER = 90.0
"""Seconds after which a heartbeat (tracker, real server) with no news is stale; > usual delay_loop."""

TRANSITION_KINDS = {
    "vrrp.state": "vrrp",
    "vrrp.group": "vrrp",
    "vrrp.control": "vrrp",
    "vrrp.split_brain": "vrrp",
    "lvs": "lvs",
}
"""Kinds published only on change, with the service that would publish them.

Their ``ts`` is the time of the last transition, so age alone says nothing:
they are stale only when old *and* no replica of their producer answers on
their node.
"""


class BusUnreachable(Exception):
    """NATS did not answer, or refused us: the command prints one line and exits 69 (77 when refused)."""

    def __init__(self, message: str, code: Exit = Exit.UNREACHABLE) -> None:
        super().__init__(message)
        self.code = code


# --------------------------------------------------------------------------- bus helpers


def add_bus_options(parser: argparse.ArgumentParser) -> None:
    """``--nats`` and ``--settings``, the same on every operator command."""
    parser.add_argument("--nats", default=None, metavar="URL", help="NATS URL (default: lifeline.toml)")
    parser.add_argument("--settings", default=None, metavar="FILE", help="lifeline.toml to read")


def settings_from(args: argparse.Namespace) -> Settings:
    """Settings with ``--nats`` on top; raises ``SettingsError`` on a bad file."""
    path = Path(args.settings) if getattr(args, "settings", None) else None
    settings = load_settings(path, required=path is not None, nats_url=getattr(args, "nats", None))
    register_secrets_of(settings)
    return settings


@contextlib.asynccontextmanager
async def open_bus(settings: Settings, name: str, timeout: float = 2.0) -> AsyncIterator[Client]:
    """One connection attempt, no reconnects: an operator wants an answer, not a retry loop."""

    async def quiet(_exc: Exception) -> None:  # nats-py's default prints a traceback per attempt
        return None

    options = connect_options(settings, [settings.nats_url])
    options.setdefault("inbox_prefix", user_inbox([settings.nats_url], options))  # _INBOX_admin: private
    try:
        nc = await nats.connect(
            servers=[settings.nats_url],
            name=name,
            allow_reconnect=False,
            max_reconnect_attempts=1,  # 0 would mean "forever" inside nats-py's server selection
            reconnect_time_wait=0.1,
            connect_timeout=timeout,
            error_cb=quiet,
            **options,
        )
    except (OSError, TimeoutError, nats.errors.Error) as exc:
        raise BusUnreachable(
            redact(f"cannot reach NATS at {settings.nats_url}: {_why(exc, timeout)}"),
            Exit.AUTH if _refused(exc) else Exit.UNREACHABLE,
        ) from None
    try:
        yield nc
    finally:
        with contextlib.suppress(Exception):
            await nc.close()


def _why(exc: BaseException, timeout: float) -> str:
    """One phrase an operator can act on (a bare ``TimeoutError`` says nothing)."""
    if isinstance(exc, TimeoutError | nats.errors.TimeoutError) and not str(exc).strip():
        return f"no answer within {timeout:g}s (wrong address, or a firewall drops the packets)"
    return str(exc).strip() or type(exc).__name__


def _refused(exc: BaseException) -> bool:
    """The server answered and said no (bad credentials): not a reachability problem."""
    text = str(exc).lower()
    return isinstance(exc, nats.errors.AuthorizationError) or "authorization" in text


def run_on_bus(coro_fn: Any, args: argparse.Namespace) -> int:
    """Run an async command; settings and NATS errors become one line and the table's exit code.

    A bad lifeline.toml is 78 (configuration), NATS away 69, credentials
    refused 77: a script can tell them apart (docs/operations.md "Exit codes").
    """
    try:
        settings = settings_from(args)
    except SettingsError as exc:
        print(f"lifeline: {redact(str(exc))}", file=sys.stderr)
        return int(Exit.CONFIG)
    try:
        code: int = asyncio.run(coro_fn(args, settings))
    except BusUnreachable as exc:
        print(f"lifeline: {redact(str(exc))}", file=sys.stderr)
        return int(exc.code)
    return code


class Replica(msgspec.Struct, kw_only=True):
    """One running service process, as its ``$SRV.INFO`` reply describes it."""

    node: str
    service: str
    id: str
    version: str
    boot_id: str = ""
    endpoints: list[str] = msgspec.field(default_factory=list)


async def discover(nc: Client, wait: float = 0.5, subjects: Sequence[str] = ("$SRV.INFO",)) -> list[Replica]:
    """Ask ``$SRV.INFO`` and collect every lifeline replica that answers within ``wait`` s.

    ``subjects``: ask those instead (``$SRV.INFO.<name>``: one service's replicas).
    """
    replies: list[bytes] = []
    inbox = nc.new_inbox()

    async def collect(msg: Any) -> None:
        replies.append(msg.data)

    sub = await nc.subscribe(inbox, cb=collect)
    try:
        for subject in subjects:
            await nc.publish(subject, b"", reply=inbox)
        await nc.flush()
        await asyncio.sleep(wait)
    finally:
        await sub.unsubscribe()
    replicas: list[Replica] = []
    for data in replies:
        try:
            info = msgspec.json.decode(data)
        except msgspec.DecodeError:
            continue
        name = str(info.get("name", ""))
        if not name.startswith("lifeline-"):
            continue
        meta = info.get("metadata") or {}
        replicas.append(
            Replica(
                node=str(meta.get("node", "?")),
                service=name.removeprefix("lifeline-"),
                id=str(info.get("id", "")),
                version=str(info.get("version", "")),
                boot_id=str(meta.get("boot_id", "")),
                endpoints=[str(e.get("subject", "")) for e in info.get("endpoints") or []],
            )
        )
    return sorted(replicas, key=lambda r: (r.node, r.service, r.id))


# --------------------------------------------------------------------------- the status view


def summary(event: Event) -> str:
    """What an operator reads in the STATE column."""
    match event:
        case InstanceState():
            return f"{event.state} prio {event.effective_priority}/{event.base_priority}"
        case GroupState():
            return str(event.state)
        case InstanceControl():
            return f"{event.action} by {event.requested_by} (base prio {event.base_priority})"
        case SplitBrain():
            return f"SPLIT BRAIN with {event.peer} (seen {event.count}x)"
        case InstanceEvent():
            return f"{event.kind} prio {event.effective_priority} ({event.state})"
        case TrackerResult():
            return ("ok" if event.ok else "FAILED") + (
                f" ({event.contribution:+d})" if event.contribution else ""
            )
        case RealServerHealth():
            return ("up" if event.up else "DOWN") + f" {event.checker}"
        case PoolEvent():
            quorum = "quorum up" if event.quorum_up else "QUORUM DOWN"
            return f"{quorum} weight {event.weight_sum}" + (" sorry" if event.sorry_active else "")
        case ServiceReload():
            return "reloaded" if event.ok else f"RELOAD REFUSED ({len(event.errors)} error(s))"
        case OutboxOverflow():
            return f"OUTBOX OVERFLOW ({event.dropped} dropped)"
    assert_never(event)


KIND_LABEL = {
    "vrrp.state": "instance",
    "vrrp.group": "group",
    "vrrp.control": "control",
    "vrrp.split_brain": "split_brain",
    "track": "tracker",
    "check": "real",
    "health": "real",
    "lvs": "pool",
}


def build_view(
    entries: list[StateEntry], replicas: list[Replica], now: float, stale_after: float
) -> dict[str, Any]:
    """The JSON document ``status --json`` prints (and the table is drawn from)."""
    live = {(r.node, r.service) for r in replicas}
    rows: list[dict[str, Any]] = []
    for e in entries:
        if e.kind == "health":  # the durable copy of a check entry: the check key has the latest
            continue
        age = max(0.0, now - e.event.ts / 1e9)
        producer = TRANSITION_KINDS.get(e.kind)
        stale = age > stale_after and not (producer is not None and (e.node, producer) in live)
        rows.append(
            {
                "node": e.node,
                "kind": KIND_LABEL.get(e.kind, e.kind),
                "name": " ".join(e.names),
                "state": summary(e.event),
                "ts": e.event.ts,
                "age_s": round(age, 1),
                "stale": stale,
                "key": e.key,
                "event": msgspec.to_builtins(e.event),
            }
        )
    order = list(KIND_LABEL.values())
    rows.sort(key=lambda r: (r["node"], order.index(r["kind"]) if r["kind"] in order else 99, r["name"]))
    nodes = sorted({r["node"] for r in rows} | {r.node for r in replicas})
    return {
        "generated_at": now,
        "stale_after_s": stale_after,
        "nodes": nodes,
        "replicas": [msgspec.to_builtins(r) for r in replicas],
        "entries": rows,
    }


def human_age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds / 86400:.0f}d"


def render_table(view: dict[str, Any]) -> str:
    """Fixed-width table, one block per node: replicas first, then state entries."""
    header = ("NODE", "KIND", "NAME", "STATE", "AGE", "")
    lines: list[tuple[str, ...]] = [header]
    for node in view["nodes"]:
        for r in view["replicas"]:
            if r["node"] == node:
                lines.append((node, "service", r["service"], f"live {r['version']} id {r['id'][:8]}", "", ""))
        for row in view["entries"]:
            if row["node"] == node:
                mark = "STALE" if row["stale"] else ""
                lines.append((node, row["kind"], row["name"], row["state"], human_age(row["age_s"]), mark))
    for name, row in view.get("supervised", {}).items():
        up = "running" if row["running"] else "down"
        text = f"{up}, {row['restarts']} restarts, backoff {row['backoff']:g} s, last exit {row['last_exit']}"
        lines.append((row["node"], "supervised", name, text, "", ""))
    if len(lines) == 1:
        return "nothing on the bus yet (no service has published; is lifeline running?)\n"
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip() for line in lines]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- command


def register(commands: Any) -> None:
    p = commands.add_parser("status", help=help_of("status"))
    add_bus_options(p)
    p.add_argument("--json", action="store_true", help="one JSON document for scripts")
    p.add_argument(
        "--stale-after",
        type=float,
        default=DEFAULT_STALE_AFTER,
        metavar="S",
        help=f"entries older than S s with no live producer are stale (default {DEFAULT_STALE_AFTER:g})",
    )
    p.add_argument(
        "--wait", type=float, default=0.5, metavar="S", help="how long replicas may take to answer"
    )
    p.add_argument(
        "--domain",
        action="append",
        default=None,
        metavar="D",
        help="also read the state bucket of JetStream domain D (a fleet node; repeat or a,b,c; "
        f"default ${FLEET_DOMAINS_ENV})",
    )
    p.set_defaults(run=lambda args: run_on_bus(status, args))


async def status(args: argparse.Namespace, settings: Settings) -> int:
    domains = parse_domains(args.domain if args.domain else [os.environ.get(FLEET_DOMAINS_ENV, "")])
    problems: dict[str, str] = {}
    async with open_bus(settings, "lifeline-status") as nc:
        if domains:
            (entries, problems), replicas = await asyncio.gather(
                read_fleet_state(nc, domains), discover(nc, args.wait)
            )
        else:
            entries, replicas = await asyncio.gather(read_state(nc), discover(nc, args.wait))
    view = REDACTOR.tree(build_view(entries, replicas, time.time(), args.stale_after))
    supervised = read_restarts(restarts_path(settings))  # ``lifeline up``'s restarts, when it runs here
    view["supervised"] = {n: msgspec.to_builtins(r) | {"node": settings.node} for n, r in supervised.items()}
    if domains:
        view["domains"] = {d: redact(problems.get(d, "ok")) for d in domains}
    for domain, why in problems.items():
        print(f"lifeline: JetStream domain {domain} did not answer: {redact(why)}", file=sys.stderr)
    if args.json:
        sys.stdout.write(msgspec.json.format(msgspec.json.encode(view), indent=2).decode() + "\n")
    else:
        sys.stdout.write(render_table(view))
    stale = sum(1 for row in view["entries"] if row["stale"])
    if stale:
        print(
            f"lifeline: {stale} entries are stale (old, and their service does not answer)", file=sys.stderr
        )
    return EXIT_PROBLEMS if problems or stale else EXIT_OK
