"""Least-privilege NATS users for one node, and the nats-server config that holds them.

Why per-service users: the bus is the contract between the services, so a
service's publish rights *are* its part of the contract.  A notifier that can
publish tracker results, or a checker that can publish VRRP state, could move a
VIP; here it is refused by the server (``Permissions Violation``).

One user per service (``vrrp``, ``checker``, ``lvs``, ``notifier``) plus
``admin`` for the CLI, operators and provisioning.  A service user holds
exactly what its service uses (``service_permissions``; why each grant
exists, service by service: docs/security.md, "The bus: who may do what"):

- publish its own events (``lifeline.<node>.<kind>.>``) and the same keys of
  the state bucket (``$KV.lifeline_state.<node>.<kind>.>``), its own
  ``ServiceReload``; nothing of another service or another node;
- JetStream without administration: ``STREAM.INFO`` of the streams it uses
  (to say clearly when they are not provisioned), direct gets (the
  publisher's "already stored?" check on its own subjects, the state
  bucket's snapshot), and for the notifier its consumers' ``MSG.NEXT``,
  ``INFO`` and acks; never ``STREAM.CREATE/UPDATE/DELETE/PURGE``, never a
  consumer create or delete: an admin provisions (``shared.bus.provision``);
- subscribe to its private inbox ``_INBOX_<user>.>`` (``shared.bus.connect``
  sets the prefix), to its own control endpoints
  ``lifeline.<node>.ctl.<service>.>`` and micro discovery, and to what it
  consumes (vrrp: tracker results; lvs: checks and instance states; checker
  and notifier: their replicas' republished traffic); control subjects are
  published by admins only, a service answers through ``allow_responses``;
- no subject it may both publish and subscribe to: with ``allow_responses``
  such a user could send itself a message with a reply subject of its
  choosing and then publish there once (``test_no_user_hears_itself``).

``python -m shared.nats_users --node NAME`` prints a config; ``render_config``
is the function ``lifeline up`` uses to start its embedded server the same way.
The checked-in ``deploy/nats-server.conf`` is ``render_config`` for node
``lb1`` with passwords read from the environment (``--env-passwords``).

The optional parts come from ``[nats_server]`` of lifeline.toml or its
``LIFELINE_NATS_*`` variables (``shared.settings.NatsServerSettings``): TLS
for clients, a leaf-node remote to a hub (with a JetStream domain per node),
cluster routes.  ``--hub`` renders the hub those leaf nodes connect to.
Secrets a URL must carry (the leaf and route passwords) are written into the
config as values, so generate it at start into a private file (compose and
the systemd unit do).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from shared.events import (
    DEAD_LETTER_STREAM,
    EVENT_STREAM,
    LEASE_BUCKET,
    PREFIX,
    REPLICAS,
    STATE_BUCKET,
    Service,
    encode_token,
)
from shared.settings import NatsServerSettings, SettingsError, load_settings

ACCOUNT = "LIFELINE"
"""The one account every lifeline user lives in (JetStream enabled; a leaf-node remote binds it)."""

ADMIN = "admin"
SERVICE_USERS: tuple[str, ...] = tuple(s.value for s in Service)
"""User names: the service names (``vrrp``, ``checker``, ``lvs``, ``notifier``)."""

LEAF_USER = "leaf"
"""The hub's user for the nodes' leaf connections (``--hub``; bound to ``ACCOUNT`` there)."""

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


def _direct_get(stream: str, subjects: str | None = None) -> str:
    """Direct get on ``stream``: of ``subjects`` by subject, or (None) the batched form with a body."""
    return f"{_JS}.DIRECT.GET.{stream}" + (f".{subjects}" if subjects else "")


def _stream_info(*streams: str) -> list[str]:
    """``STREAM.INFO``: a service checks that what it uses exists, and says so when it does not."""
    return [f"{_JS}.STREAM.INFO.{stream}" for stream in streams]


def _events(node: str, *kinds: str) -> list[str]:
    """Publish rights for event kinds of this node, their state-bucket keys, and reading them back."""
    out: list[str] = []
    for kind in kinds:
        own = f"{PREFIX}.{node}.{kind}.>"
        out += [own, f"$KV.{STATE_BUCKET}.{node}.{kind}.>", _direct_get(EVENT_STREAM, own)]
    return out


def _base(node: str, service: str) -> tuple[list[str], list[str]]:
    """What every service user needs: its reload events, the streams' existence, its inbox and endpoints."""
    reload = f"{PREFIX}.{node}.service.reload.{service}"  # its own ServiceReload events (stream + KV)
    publish = [
        reload,
        f"$KV.{STATE_BUCKET}.{node}.service.reload.{service}",
        _direct_get(EVENT_STREAM, reload),
        *_stream_info(EVENT_STREAM, f"KV_{STATE_BUCKET}"),
    ]
    micro = f"lifeline-{service}"  # shared.bus.micro.micro_name: $SRV.PING|INFO|STATS[.name[.id]]
    subscribe = [
        f"_INBOX_{service}.>",
        f"{PREFIX}.{node}.ctl.{service}.>",
        "$SRV.PING",
        "$SRV.INFO",
        "$SRV.STATS",
        f"$SRV.*.{micro}",
        f"$SRV.*.{micro}.*",
    ]
    return publish, subscribe


def _replicas(node: str, service: str) -> tuple[list[str], list[str]]:
    """Replica traffic: published on ``say``, heard on ``heard`` (republished by LIFELINE_REPLICAS)."""
    base = f"{PREFIX}.{node}.{REPLICAS}.{service}"
    return [f"{base}.say.*"], [f"{base}.heard.*"]


def _notifier(node: str) -> list[str]:
    """Its consumers (pull and ack, never create), dead letters, and leases key by key.

    The consumers are named ``notifier_<sink>``, but a subject wildcard is a
    whole token: the grant is every consumer of the event stream, where the
    notifier's are the only durable ones (docs/security.md).
    """
    consumers = f"{EVENT_STREAM}.*"
    leases = f"$KV.{LEASE_BUCKET}.sink.>"
    return [
        f"{_JS}.CONSUMER.MSG.NEXT.{consumers}",
        f"{_JS}.CONSUMER.INFO.{consumers}",
        f"$JS.ACK.{consumers}.>",
        f"{PREFIX}.{node}.notify.dead.>",
        *_stream_info(DEAD_LETTER_STREAM, f"KV_{LEASE_BUCKET}"),
        leases,
        _direct_get(f"KV_{LEASE_BUCKET}", leases),
    ]


def service_permissions(
    node: str, service: str, *, republish: Sequence[str] = DEFAULT_REPUBLISH
) -> Permissions:
    """The permissions of ``service`` on ``node`` (the node name is token-encoded here)."""
    n = encode_token(node)
    publish, subscribe = _base(n, service)
    state = _direct_get(f"KV_{STATE_BUCKET}")  # batched reads of the state bucket (shared.bus.direct_get)
    if service == Service.VRRP:
        publish += [*_events(n, "vrrp"), state]
        subscribe += [f"{PREFIX}.{n}.track.>"]
    elif service == Service.CHECKER:
        say, heard = _replicas(n, service)
        publish += [*_events(n, "track", "check", "health"), state, *say]
        subscribe += heard
    elif service == Service.LVS:
        publish += _events(n, "lvs")
        subscribe += [f"{PREFIX}.{n}.check.>", f"{PREFIX}.{n}.vrrp.state.>"]
    elif service == Service.NOTIFIER:
        say, heard = _replicas(n, service)
        publish += [*_notifier(n), *say, *republish]
        subscribe += heard
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


OPTIONAL_HINT = """\
# Optional parts (TLS, leaf-node remote to a hub, cluster routes) are generated from
# [nats_server] in lifeline.toml or LIFELINE_NATS_* variables: docs/deploy.md.
"""


def with_credentials(url: str, user: str | None, password: str | None) -> str:
    """``url`` with ``user:password@`` (percent-encoded): how nats-server takes remote and route secrets."""
    if not user:
        return url
    parts = urlsplit(url)
    auth = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{auth}@{host}"))


def _tls_block(opts: NatsServerSettings) -> str:
    if not opts.tls_cert:
        return ""
    if not opts.tls_key:
        raise ValueError("nats_server.tls_cert needs nats_server.tls_key")
    lines = [f"  cert_file: {_q(opts.tls_cert)}", f"  key_file: {_q(opts.tls_key)}"]
    if opts.tls_ca:
        lines.append(f"  ca_file: {_q(opts.tls_ca)}")
    if opts.tls_verify:
        if not opts.tls_ca:
            raise ValueError("nats_server.tls_verify needs nats_server.tls_ca")
        lines.append("  verify: true")
    return (
        "# TLS for clients: services use tls:// URLs (and nats_tls_ca)\ntls {\n" + "\n".join(lines) + "\n}\n"
    )


def _leaf_block(opts: NatsServerSettings) -> str:
    """One remote, bound to ``ACCOUNT``: the node's events and control subjects reach the hub and back."""
    if not opts.leaf_url:
        return ""
    url = with_credentials(opts.leaf_url, opts.leaf_user, opts.leaf_password)
    lines = [f"      urls: [{_q(url)}]", f"      account: {_q(ACCOUNT)}"]
    if opts.leaf_creds:
        lines.append(f"      credentials: {_q(opts.leaf_creds)}")
    if opts.leaf_ca:
        lines.append(f"      tls: {{ ca_file: {_q(opts.leaf_ca)} }}")
    remote = "\n".join(lines)
    return f"# leaf node of the hub (fleet)\nleafnodes {{\n  remotes: [\n    {{\n{remote}\n    }}\n  ]\n}}\n"


def _cluster_block(opts: NatsServerSettings) -> str:
    if not opts.cluster_name:
        if opts.cluster_routes:
            raise ValueError("nats_server.cluster_routes needs nats_server.cluster_name")
        return ""
    routes = [with_credentials(r, opts.cluster_user, opts.cluster_password) for r in opts.cluster_routes]
    lines = [
        f"  name: {_q(opts.cluster_name)}",
        f"  listen: {_q(opts.cluster_listen)}",
        f"  routes: {_list(routes, '  ')}",
    ]
    if opts.cluster_user:
        auth = f"user: {_q(opts.cluster_user)}, password: {_q(opts.cluster_password or '')}"
        lines.append(f"  authorization {{ {auth} }}")
    return "# cluster routes between the nodes' servers\ncluster {\n" + "\n".join(lines) + "\n}\n"


def jetstream_domain(node: str, opts: NatsServerSettings) -> str | None:
    """The explicit domain, else the node's name when it is a leaf node (one domain per node)."""
    if opts.domain:
        return opts.domain
    return encode_token(node) if opts.leaf_url else None


def _jetstream_block(store_dir: str, domain: str | None) -> str:
    dom = f"  domain: {_q(domain)}\n" if domain else ""
    return f"jetstream {{\n  store_dir: {_q(store_dir)}\n{dom}}}\n"


def render_config(
    node: str,
    passwords: Mapping[str, str] | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 4222,
    store_dir: str = "/var/lib/lifeline/nats",
    http_port: int | None = None,
    republish: Sequence[str] = DEFAULT_REPUBLISH,
    server: NatsServerSettings | None = None,
) -> str:
    """The nats-server config of ``node``: JetStream, one account, the users, and ``server``'s options.

    ``passwords`` maps user → password (every service user and ``admin``); None
    writes ``$LIFELINE_NATS_PASSWORD_<USER>`` references that nats-server reads
    from its environment (what compose does).  ``server``: TLS, leaf remote,
    cluster (``[nats_server]``); none by default.
    """
    opts = server or NatsServerSettings()
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
        f"{_jetstream_block(store_dir, jetstream_domain(node, opts))}"
        "accounts {\n"
        f"  {ACCOUNT}: {{\n"
        "    jetstream: enabled\n"
        f"    users: [\n{users}\n    ]\n"
        "  }\n"
        "}\n"
        f"{_tls_block(opts)}{_leaf_block(opts)}{_cluster_block(opts)}"
        f"{OPTIONAL_HINT}"
    )


def render_hub_config(
    leaf_password: str,
    admin_password: str,
    *,
    host: str = "0.0.0.0",
    port: int = 4222,
    leaf_port: int = 7422,
    store_dir: str = "/var/lib/lifeline/hub",
    domain: str = "hub",
    leaf_user: str = LEAF_USER,
) -> str:
    """The hub of a leaf-node fleet: nodes log in as ``leaf_user`` into ``ACCOUNT``; ``admin`` for people.

    Why an account of the same name: a node's remote binds its ``LIFELINE``
    account to whatever account the hub's leaf user lives in, and external
    subscribers on the hub must be in that account to see the events.
    """
    return (
        "# nats-server config of a lifeline fleet hub: generated by `python -m shared.nats_users --hub`.\n"
        f"server_name: {_q('lifeline-' + domain)}\n"
        f"listen: {_q(f'{host}:{port}')}\n"
        f"{_jetstream_block(store_dir, domain)}"
        "accounts {\n"
        f"  {ACCOUNT}: {{\n"
        "    jetstream: enabled\n"
        f"    users: [\n{_user_block(ADMIN, _q(admin_password), None)}\n    ]\n"
        "  }\n"
        "}\n"
        "leafnodes {\n"
        f"  listen: {_q(f'{host}:{leaf_port}')}\n"
        "  authorization {\n"
        f"    users: [ {{ user: {_q(leaf_user)}, password: {_q(leaf_password)}, account: {_q(ACCOUNT)} }} ]\n"
        "  }\n"
        "}\n"
    )


def nats_url(user: str, password: str, host: str = "127.0.0.1", port: int = 4222) -> str:
    """``nats://user:password@host:port``: credentials every service honours through its NATS URL."""
    return f"nats://{user}:{password}@{host}:{port}"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m shared.nats_users", description=__doc__.split("\n")[0])
    p.add_argument("--node", help="node name (as the services use it); required unless --hub")
    p.add_argument("--hub", action="store_true", help="render a fleet hub (leaf-node listener) instead")
    p.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1; hub 0.0.0.0)")
    p.add_argument("--port", type=int, default=4222)
    p.add_argument("--leaf-port", type=int, default=7422, help="hub: leaf-node port (default 7422)")
    p.add_argument("--http-port", type=int, default=None, help="monitoring port (default: off)")
    p.add_argument("--store-dir", default=None, help="JetStream store (default /var/lib/lifeline/nats)")
    p.add_argument("--settings", default=None, help="lifeline.toml with [nats_server] (default: as services)")
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
    return p


def _hub(args: argparse.Namespace) -> str:
    """The hub: passwords generated (``--new-passwords``) or read from the environment."""
    if args.new_passwords:
        pw = generate_passwords((ADMIN, LEAF_USER))
        lines = (
            f"{PASSWORD_ENV.format(user='ADMIN')}={pw[ADMIN]}\nLIFELINE_NATS_LEAF_PASSWORD={pw[LEAF_USER]}\n"
        )
        _write_private(Path(args.new_passwords), lines)
        admin, leaf = pw[ADMIN], pw[LEAF_USER]
    else:
        admin = os.environ.get(PASSWORD_ENV.format(user="ADMIN"), "")
        leaf = os.environ.get("LIFELINE_NATS_LEAF_PASSWORD", "")
        if not (admin and leaf):
            raise SettingsError("--hub needs LIFELINE_NATS_PASSWORD_ADMIN and LIFELINE_NATS_LEAF_PASSWORD")
    return render_hub_config(
        leaf,
        admin,
        host=args.host or "0.0.0.0",
        port=args.port,
        leaf_port=args.leaf_port,
        store_dir=args.store_dir or "/var/lib/lifeline/hub",
    )


def _write_private(path: Path, text: str) -> None:
    """Secrets: created 0600 (never world-readable, not even for a moment)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def main(argv: Sequence[str] | None = None) -> int:
    p = _parser()
    args = p.parse_args(argv)
    try:
        if args.hub:
            text = _hub(args)
        else:
            if not args.node:
                p.error("--node is required (or --hub)")
            text = _node(args)
    except (SettingsError, ValueError) as exc:
        print(f"nats_users: {exc}", file=sys.stderr)
        return 1
    if args.output:
        _write_private(Path(args.output), text)
    else:
        sys.stdout.write(text)
    return 0


def _node(args: argparse.Namespace) -> str:
    """A node: the optional parts from ``[nats_server]`` / ``LIFELINE_NATS_*``."""
    settings = load_settings(Path(args.settings) if args.settings else None)
    passwords: dict[str, str] | None = None
    if args.new_passwords:
        passwords = generate_passwords()
        lines = [f"{PASSWORD_ENV.format(user=u.upper())}={pw}\n" for u, pw in passwords.items()]
        _write_private(Path(args.new_passwords), "".join(lines))
    return render_config(
        args.node,
        passwords,
        host=args.host or "127.0.0.1",
        port=args.port,
        store_dir=args.store_dir or "/var/lib/lifeline/nats",
        http_port=args.http_port,
        republish=tuple(args.republish or DEFAULT_REPUBLISH),
        server=settings.nats_server,
    )


if __name__ == "__main__":
    sys.exit(main())
