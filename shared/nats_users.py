"""Least-privilege NATS users for one node, and the nats-server config that holds them.

Why per-service users: the bus is the contract between the services, so a
service's publish rights *are* its part of the contract.  A notifier that can
publish tracker results, or a checker that can publish VRRP state, could move a
VIP; here it is refused by the server (``Permissions Violation``).

One user per service (``vrrp``, ``checker``, ``lvs``, ``notifier``) plus
``admin`` for the CLI and operators.  Every service user may:

- publish its own events (``lifeline.<node>.<kind>.>``) and write the same keys
  in the state bucket (``$KV.lifeline_state.<node>.<kind>.>``), nothing else of
  this node's and nothing of another node's;
- create/update/read the streams and buckets it needs through the JetStream
  API (named per stream, so it cannot delete or purge anything);
- read the state bucket (KV get, keys, watch) and answer its own control
  endpoints ``lifeline.<node>.ctl.<service>.>`` and ``$SRV.>`` discovery
  (replies go out through ``allow_responses``); it may also *request* its own
  ``status``, which is what the container healthcheck (``lifeline health``) does;
- subscribe to what it consumes (vrrp: tracker results; lvs: checks and vrrp
  state; notifier: its durable consumers on the event stream) and ``_INBOX.>``.

``python -m shared.nats_users --node NAME`` prints a config; ``render_config``
is the function ``lifeline up`` uses to start its embedded server the same way.
The checked-in ``deploy/nats-server.conf`` is ``render_config`` for node
``lb1`` with passwords read from the environment (``--env-passwords``).
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from shared.events import DEAD_LETTER_STREAM, EVENT_STREAM, PREFIX, STATE_BUCKET, Service, encode_token

ACCOUNT = "LIFELINE"
"""The one account every lifeline user lives in (JetStream enabled; a leaf-node remote binds it)."""

ADMIN = "admin"
SERVICE_USERS: tuple[str, ...] = tuple(s.value for s in Service)
"""User names: the service names (``vrrp``, ``checker``, ``lvs``, ``notifier``)."""

LEASE_BUCKET = "lifeline_notifier_leases"
"""The notifier's lease bucket (services/notifier/delivery_lease.py)."""

DEFAULT_REPUBLISH = ("mirror.>",)
"""Subjects the notifier's ``republish`` sink may publish to (its default: ``mirror.{subject}``)."""

PASSWORD_ENV = "LIFELINE_NATS_PASSWORD_{user}"
"""Environment variable holding a user's password when the config refers to the environment."""

_JS = "$JS.API"


@dataclass(frozen=True)
class Permissions:
    """One user's ``permissions`` block; ``allow_responses`` lets it answer requests it received."""

    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    allow_responses: bool = True


def _stream_admin(stream: str) -> list[str]:
    """Create/update/inspect one stream (never delete or purge) and read its messages."""
    return [
        f"{_JS}.STREAM.CREATE.{stream}",
        f"{_JS}.STREAM.UPDATE.{stream}",
        f"{_JS}.STREAM.INFO.{stream}",
        f"{_JS}.STREAM.MSG.GET.{stream}",
        f"{_JS}.DIRECT.GET.{stream}",
        f"{_JS}.DIRECT.GET.{stream}.>",
    ]


def _kv_reader(bucket: str) -> list[str]:
    """Get, list and watch a bucket: direct gets and ephemeral ordered consumers on its stream."""
    stream = f"KV_{bucket}"
    return [
        *_stream_admin(stream),
        f"{_JS}.CONSUMER.CREATE.{stream}",
        f"{_JS}.CONSUMER.CREATE.{stream}.>",
        f"{_JS}.CONSUMER.DELETE.{stream}.>",
        f"{_JS}.CONSUMER.INFO.{stream}.>",
        f"$JS.FC.{stream}.>",
    ]


def _base(node: str, service: str) -> tuple[list[str], list[str]]:
    """What every service user needs: JetStream info, the event stream and state bucket, its ctl subjects."""
    ctl = f"{PREFIX}.{node}.ctl.{service}"
    publish = [
        f"{_JS}.INFO",
        *_stream_admin(EVENT_STREAM),
        *_kv_reader(STATE_BUCKET),
        f"{ctl}.status",  # the healthcheck asks its own service with the service's credentials
    ]
    subscribe = ["_INBOX.>", "$SRV.>", f"{ctl}.>"]
    return publish, subscribe


def _events(node: str, *kinds: str) -> list[str]:
    """Publish rights for event kinds of this node, with their state-bucket keys."""
    out: list[str] = []
    for kind in kinds:
        out += [f"{PREFIX}.{node}.{kind}.>", f"$KV.{STATE_BUCKET}.{node}.{kind}.>"]
    return out


def service_permissions(
    node: str, service: str, *, republish: Sequence[str] = DEFAULT_REPUBLISH
) -> Permissions:
    """The permissions of ``service`` on ``node`` (the node name is token-encoded here)."""
    n = encode_token(node)
    publish, subscribe = _base(n, service)
    if service == Service.VRRP:
        publish += _events(n, "vrrp")
        subscribe += [f"{PREFIX}.{n}.track.>"]
    elif service == Service.CHECKER:
        replicas = f"{PREFIX}.{n}.ctl.checker.replicas"
        publish += [*_events(n, "track", "check", "health"), replicas]
    elif service == Service.LVS:
        publish += _events(n, "lvs")
        subscribe += [f"{PREFIX}.{n}.check.>", f"{PREFIX}.{n}.vrrp.>"]
    elif service == Service.NOTIFIER:
        consumers = [
            f"{_JS}.CONSUMER.{verb}.{EVENT_STREAM}.{suffix}"
            for verb in ("CREATE", "DURABLE.CREATE", "INFO", "MSG.NEXT")
            for suffix in ("*", "*.>")
        ]
        publish += [
            f"{PREFIX}.{n}.notify.dead.>",
            *_stream_admin(DEAD_LETTER_STREAM),
            *_kv_reader(LEASE_BUCKET),
            f"$KV.{LEASE_BUCKET}.>",
            *consumers,
            f"$JS.ACK.{EVENT_STREAM}.>",
            *republish,
        ]
    else:
        raise ValueError(f"no such lifeline service: {service!r}")
    return Permissions(tuple(publish), tuple(subscribe))


def generate_passwords(users: Sequence[str] = (*SERVICE_USERS, ADMIN)) -> dict[str, str]:
    """A fresh random password per user (URL-safe, so it also fits in a ``nats://user:pw@`` URL)."""
    return {user: secrets.token_urlsafe(24) for user in users}


def _q(value: str) -> str:
    return json.dumps(value)


def _list(values: Sequence[str], indent: str) -> str:
    inner = "".join(f"{indent}  {_q(v)}\n" for v in values)
    return f"[\n{inner}{indent}]"


def _password(user: str, passwords: Mapping[str, str] | None) -> str:
    if passwords is None:  # a reference nats-server resolves from its environment
        return "$" + PASSWORD_ENV.format(user=user.upper())
    return _q(passwords[user])


def _user_block(user: str, password: str, perms: Permissions | None) -> str:
    ind = "      "
    lines = [f"{ind}{{", f"{ind}  user: {_q(user)}", f"{ind}  password: {password}"]
    if perms is not None:
        lines += [
            f"{ind}  permissions: {{",
            f"{ind}    publish: {{ allow: {_list(perms.publish, ind + '    ')} }}",
            f"{ind}    subscribe: {{ allow: {_list(perms.subscribe, ind + '    ')} }}",
            f"{ind}    allow_responses: {'true' if perms.allow_responses else 'false'}",
            f"{ind}  }}",
        ]
    lines.append(f"{ind}}}")
    return "\n".join(lines)


OPTIONAL_SECTIONS = """\
# --- Optional: TLS for clients (uncomment; services then use tls:// URLs) ---------
# tls {
#   cert_file: "/etc/lifeline/tls/server.pem"
#   key_file:  "/etc/lifeline/tls/server-key.pem"
#   ca_file:   "/etc/lifeline/tls/ca.pem"     # with verify: true, clients need certificates
#   # verify: true
# }

# --- Optional: leaf node to a central NATS (hub) ---------------------------------
# Every node's events then reach the hub (fleet view, external subscribers), and
# the local server keeps working when the hub is away.  The hub needs a
# `leafnodes { port: 7422 }` and an account the remote credentials bind to.
# leafnodes {
#   remotes: [
#     { urls: ["nats-leaf://hub.example.net:7422"], account: "LIFELINE",
#       credentials: "/etc/lifeline/hub.creds" }   # or url with user:password@
#   ]
# }

# --- Optional: cluster routes between the nodes' servers ------------------------
# A full mesh of the pair's servers: `lifeline status` on one node sees both.
# JetStream then needs the same `cluster.name` everywhere and a unique
# `server_name` per node (set above); streams stay R1 unless created with replicas.
# cluster {
#   name: "lifeline"
#   listen: "0.0.0.0:6222"
#   routes: ["nats-route://10.0.0.1:6222", "nats-route://10.0.0.2:6222"]
#   # authorization { user: "route", password: $LIFELINE_NATS_ROUTE_PASSWORD }
# }
"""


def render_config(
    node: str,
    passwords: Mapping[str, str] | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 4222,
    store_dir: str = "/var/lib/lifeline/nats",
    http_port: int | None = None,
    republish: Sequence[str] = DEFAULT_REPUBLISH,
) -> str:
    """The nats-server config of ``node``: JetStream, one account, the users; optional parts commented.

    ``passwords`` maps user → password (every service user and ``admin``); None
    writes ``$LIFELINE_NATS_PASSWORD_<USER>`` references that nats-server reads
    from its environment (what compose does).
    """
    if passwords is not None:
        missing = sorted({*SERVICE_USERS, ADMIN} - set(passwords))
        if missing:
            raise ValueError(f"no password for: {', '.join(missing)}")
    blocks = [_user_block(ADMIN, _password(ADMIN, passwords), None)]
    for user in SERVICE_USERS:
        perms = service_permissions(node, user, republish=republish)
        blocks.append(_user_block(user, _password(user, passwords), perms))
    users = ",\n".join(blocks)
    monitor = f"http: {_q(f'{host}:{http_port}')}\n" if http_port else ""
    return (
        f"# nats-server config for lifeline node {node!r}: generated by `python -m shared.nats_users`.\n"
        "# One user per service, each limited to its own subjects (docs/deploy.md); `admin` for the CLI.\n"
        f"server_name: {_q('lifeline-' + encode_token(node))}\n"
        f"listen: {_q(f'{host}:{port}')}\n"
        f"{monitor}"
        "max_payload: 1MB\n"
        f"jetstream {{\n  store_dir: {_q(store_dir)}\n}}\n"
        "accounts {\n"
        f"  {ACCOUNT}: {{\n"
        "    jetstream: enabled\n"
        f"    users: [\n{users}\n    ]\n"
        "  }\n"
        "}\n"
        f"{OPTIONAL_SECTIONS}"
    )


def nats_url(user: str, password: str, host: str = "127.0.0.1", port: int = 4222) -> str:
    """``nats://user:password@host:port``: credentials every service honours through its NATS URL."""
    return f"nats://{user}:{password}@{host}:{port}"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m shared.nats_users", description=__doc__.split("\n")[0])
    p.add_argument("--node", required=True, help="node name (as the services use it)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=4222)
    p.add_argument("--http-port", type=int, default=None, help="monitoring port (default: off)")
    p.add_argument("--store-dir", default="/var/lib/lifeline/nats")
    p.add_argument("--republish", action="append", help="subject the notifier may republish to (repeat)")
    how = p.add_mutually_exclusive_group()
    how.add_argument(
        "--env-passwords", action="store_true", help="refer to $LIFELINE_NATS_PASSWORD_<USER> (default)"
    )
    how.add_argument(
        "--new-passwords",
        metavar="ENV_FILE",
        help="generate passwords, write them as LIFELINE_NATS_PASSWORD_<USER>=... lines to ENV_FILE",
    )
    p.add_argument("-o", "--output", help="write the config here (default: stdout)")
    args = p.parse_args(argv)
    passwords: dict[str, str] | None = None
    if args.new_passwords:
        passwords = generate_passwords()
        lines = [f"{PASSWORD_ENV.format(user=u.upper())}={pw}\n" for u, pw in passwords.items()]
        Path(args.new_passwords).write_text("".join(lines))
    text = render_config(
        args.node,
        passwords,
        host=args.host,
        port=args.port,
        store_dir=args.store_dir,
        http_port=args.http_port,
        republish=tuple(args.republish or DEFAULT_REPUBLISH),
    )
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
