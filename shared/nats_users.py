"""Least-privilege NATS users for one node, and the nats-server config that holds them.

Why per-service users: the bus is the contract between the services, so a
service's publish rights *are* its part of the contract.  A notifier that can
publish tracker results, or a checker that can publish VRRP state, could move a
VIP; here it is refused by the server (``Permissions Violation``).

One user per service (``vrrp``, ``checker``, ``lvs``, ``notifier``, ``http``, ``bfd``) plus
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
  and notifier: their replicas' republished traffic; http: every node's
  events, read only); control subjects are published by admins only, a
  service answers through ``allow_responses``;
- no subject it may both publish and subscribe to: with ``allow_responses``
  such a user could send itself a message with a reply subject of its
  choosing and then publish there once (``test_no_user_hears_itself``).

``admin`` is the operator of *this node* (:func:`admin_permissions`): its own
node's subjects, its own server's JetStream and discovery, never another
node's subjects, so in a fleet one node's operator cannot steer another node
(the fleet's operator is the hub's ``fleet-admin``, ``shared.nats_hub``).

``python -m shared.nats_users --node NAME`` prints a config; ``render_config``
is the function ``lifeline up`` uses to start its embedded server the same way.
The checked-in ``deploy/nats-server.conf`` is ``render_config`` for node
``lb1`` with passwords read from the environment (``--env-passwords``, whose
values are checked first: ``shared.nats_passwords``).

The optional parts come from ``[nats_server]`` of lifeline.toml or its
``LIFELINE_NATS_*`` variables (``shared.settings.NatsServerSettings``): TLS
for clients, a leaf-node remote to a hub (with a JetStream domain per node),
cluster routes.  Remotes and routes never go without credentials: a config
asking for them without a user and password is refused (a route without
authentication lets any server that reaches the port join the bus and command
the node), and TLS for both is generated from the same settings.
``--hub`` renders the hub those leaf nodes connect to (``shared.nats_hub``).
Secrets a URL must carry (the leaf and route passwords) are written into the
config as values, so generate it at start into a private file (compose and
the systemd unit do; ``shared.secret_files`` writes it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from shared.bus.trust import inbox_prefix
from shared.events import (
    CONTROL,
    DEAD_LETTER_STREAM,
    EVENT_STREAM,
    LEASE_BUCKET,
    PREFIX,
    REPLICAS,
    STATE_BUCKET,
    Service,
    encode_token,
)
from shared.nats_passwords import PasswordError, check_env_password, check_password, generate_password
from shared.secret_files import SecretFileError, check_secret, write_secret
from shared.settings import NatsServerSettings, SettingsError, load_settings

ACCOUNT = "LIFELINE"
"""The one account every lifeline user lives in (JetStream enabled; a leaf-node remote binds it)."""

ADMIN = "admin"
SERVICE_USERS: tuple[str, ...] = tuple(s.value for s in Service)
"""User names: the service names (``vrrp``, ``checker``, ``lvs``, ``notifier``, ``http``, ``bfd``)."""

LEAF_USER_PREFIX = "leaf-"
"""The hub's user for a node's leaf connection is ``leaf-<node>`` (:func:`leaf_user`)."""

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


READ_EVENT_KINDS = ("vrrp", "track", "check", "lvs")
"""What the http service follows, every node's (never ``service.>``: it publishes its own reload there)."""


def _http(node: str) -> tuple[list[str], list[str]]:
    """Read-only: the state bucket by direct get, live events, the other services' status and discovery.

    Nothing it may publish is heard by anyone but the JetStream API or a
    service's read-only endpoint; discovery and status are asked service by
    service (``$SRV.INFO.lifeline-vrrp``, ``...ctl.vrrp.status``), since a
    grant of ``$SRV.INFO`` or ``ctl.*.status`` would also match what its own
    micro endpoints subscribe to (``test_no_user_hears_itself``).
    """
    others = [s.value for s in Service if s != Service.HTTP]
    publish = [
        _direct_get(f"KV_{STATE_BUCKET}"),
        *(f"$SRV.INFO.lifeline-{s}" for s in others),
        *(f"{PREFIX}.{node}.{CONTROL}.{s}.status" for s in others),
    ]
    return publish, [f"{PREFIX}.*.{kind}.>" for kind in READ_EVENT_KINDS]


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
        publish += [*_notifier(n), *say, *republish, state]  # state: fifo_write_vrrp_states_on_reload
        subscribe += heard
    elif service == Service.HTTP:
        read, follow = _http(n)
        publish += read
        subscribe += follow
    elif service == Service.BFD:  # its sessions' states, as the tracker results track_bfd follows
        publish += _events(n, "track.bfd")  # session states only: never another tracker's subject
    else:
        raise ValueError(f"no such lifeline service: {service!r}")
    return Permissions(tuple(publish), tuple(subscribe))


def admin_permissions(node: str, domain: str | None = None) -> Permissions:
    """The node's operator: everything of its own node, nothing of another's.

    Publish: the node's subjects (control requests, test events), its own
    server's JetStream API (``$JS.API.>``, and ``$JS.<domain>.API.>`` naming the
    same server), flow control and acks of its consumers, ``$SRV.>`` discovery,
    and writes of the node's own keys in the state bucket.  Never
    ``lifeline.<other node>.>`` or another domain's API: in a fleet those would
    cross the leaf connection to another node (the hub refuses them as well).
    Subscribe: ``lifeline.>`` (only this node's subjects ever reach its server:
    the hub lets nothing of other nodes down a leaf connection) and its inboxes.
    """
    n = encode_token(node)
    publish = [
        f"{PREFIX}.{n}.>",
        f"{_JS}.>",
        "$JS.FC.>",
        "$JS.ACK.>",
        "$SRV.>",
        f"$KV.{STATE_BUCKET}.{n}.>",
    ]
    if domain:
        publish.append(f"$JS.{domain}.API.>")
    inboxes = (f"{inbox_prefix(ADMIN)}.>", "_INBOX.>")  # its private prefix (shared.bus.connect), and plain
    return Permissions(tuple(publish), (f"{PREFIX}.>", *inboxes), allow_responses=False)


def leaf_user(node: str) -> str:
    """The hub's user for ``node``'s leaf connection; the node's config and the hub's agree on it."""
    return LEAF_USER_PREFIX + encode_token(node)


def generate_passwords(users: Sequence[str] = (*SERVICE_USERS, ADMIN)) -> dict[str, str]:
    """A fresh random password per user (``shared.nats_passwords``: safe in the environment and URLs)."""
    return {user: generate_password() for user in users}


def password_var(user: str) -> str:
    """``LIFELINE_NATS_PASSWORD_<USER>``: where a user's password lives in the environment and users.env."""
    return PASSWORD_ENV.format(user=user.upper().replace("-", "_"))


def check_passwords(passwords: Mapping[str, str]) -> None:
    """Every node user has a usable password (written quoted, so any character is fine)."""
    missing = sorted({*SERVICE_USERS, ADMIN} - set(passwords))
    if missing:
        raise PasswordError(f"no password for: {', '.join(missing)}")
    for user in (*SERVICE_USERS, ADMIN):
        check_password(password_var(user), passwords[user])


def check_env_passwords(env: Mapping[str, str]) -> None:
    """``--env-passwords``: each referenced variable is set to a value nats-server reads unchanged."""
    for user in (ADMIN, *SERVICE_USERS):
        var = password_var(user)
        check_env_password(var, env.get(var))


def _q(value: str) -> str:
    return json.dumps(value)


def _list(values: Sequence[str], indent: str) -> str:
    inner = "".join(f"{indent}  {_q(v)}\n" for v in values)
    return f"[\n{inner}{indent}]"


def _password(user: str, passwords: Mapping[str, str] | None) -> str:
    if passwords is None:  # a reference nats-server resolves from its environment
        return "$" + password_var(user)
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


def tls_lines(cert: str | None, key: str | None, ca: str | None = None, verify: bool = False) -> list[str]:
    """The inside of a ``tls {}`` block: files nats-server loads when it reads the config."""
    lines = []
    if cert:
        lines += [f"cert_file: {_q(cert)}", f"key_file: {_q(key or '')}"]
    if ca:
        lines.append(f"ca_file: {_q(ca)}")
    if verify:
        lines.append("verify: true")
    return lines


def _tls_block(opts: NatsServerSettings) -> str:
    if not opts.tls_cert:
        return ""
    if not opts.tls_key:
        raise ValueError("nats_server.tls_cert needs nats_server.tls_key")
    if opts.tls_verify and not opts.tls_ca:
        raise ValueError("nats_server.tls_verify needs nats_server.tls_ca")
    lines = tls_lines(opts.tls_cert, opts.tls_key, opts.tls_ca, opts.tls_verify)
    body = "".join(f"  {line}\n" for line in lines)
    return f"# TLS for clients: services use tls:// URLs (and nats_tls_ca)\ntls {{\n{body}}}\n"


def _leaf_url(node: str, opts: NatsServerSettings) -> str:
    """The hub's URL with this node's leaf credentials; refused without any (the hub would be open)."""
    assert opts.leaf_url
    if opts.leaf_creds:
        return opts.leaf_url
    user = opts.leaf_user or leaf_user(node)
    if not opts.leaf_password:
        raise ValueError(
            "nats_server.leaf_url needs credentials for the hub: leaf_password (LIFELINE_NATS_LEAF_PASSWORD, "
            f"the hub's password for user {user!r}) or leaf_creds"
        )
    password = check_password("nats_server.leaf_password (LIFELINE_NATS_LEAF_PASSWORD)", opts.leaf_password)
    return with_credentials(opts.leaf_url, user, password)


def _leaf_block(node: str, opts: NatsServerSettings) -> str:
    """One remote, bound to ``ACCOUNT``: the node's events go up, the hub's control requests come down.

    What may cross is the hub's decision (its ``leaf-<node>`` user's
    permissions, ``shared.nats_hub``), which nats-server also enforces here
    on the node as soon as the hub sends it; TLS from ``leaf_ca`` (the hub's
    CA) and ``leaf_cert``/``leaf_key`` (this node's certificate, for a hub that verifies).
    """
    if not opts.leaf_url:
        return ""
    if opts.leaf_cert and not opts.leaf_key:
        raise ValueError("nats_server.leaf_cert needs nats_server.leaf_key")
    lines = [f"      urls: [{_q(_leaf_url(node, opts))}]", f"      account: {_q(ACCOUNT)}"]
    if opts.leaf_creds:
        lines.append(f"      credentials: {_q(opts.leaf_creds)}")
    tls = tls_lines(opts.leaf_cert, opts.leaf_key, opts.leaf_ca)
    if tls:
        lines.append(f"      tls: {{ {', '.join(tls)} }}")
    remote = "\n".join(lines)
    return f"# leaf node of the hub (fleet)\nleafnodes {{\n  remotes: [\n    {{\n{remote}\n    }}\n  ]\n}}\n"


def _cluster_auth(opts: NatsServerSettings) -> tuple[str, str]:
    """Route user and password: required, since a route is a full peer of this server."""
    if not (opts.cluster_user and opts.cluster_password):
        raise ValueError(
            "cluster routes need nats_server.cluster_user and cluster_password "
            "(LIFELINE_NATS_CLUSTER_USER, LIFELINE_NATS_CLUSTER_PASSWORD; the same on every node): "
            "without them any server that reaches the route port joins the bus and can command this node"
        )
    name = "nats_server.cluster_password (LIFELINE_NATS_CLUSTER_PASSWORD)"
    return opts.cluster_user, check_password(name, opts.cluster_password)


def _cluster_tls(opts: NatsServerSettings) -> list[str]:
    """Mutual TLS between routes: each end presents its certificate and verifies the other's."""
    files = (opts.cluster_tls_cert, opts.cluster_tls_key, opts.cluster_tls_ca)
    if not any(files):
        return []
    if not all(files):
        raise ValueError(
            "route TLS needs nats_server.cluster_tls_cert, cluster_tls_key and cluster_tls_ca together "
            "(both ends of a route present and verify a certificate)"
        )
    return tls_lines(*files, verify=True)


def _cluster_block(opts: NatsServerSettings) -> str:
    if not (opts.cluster_name or opts.cluster_routes):
        return ""
    if not opts.cluster_name:
        raise ValueError("nats_server.cluster_routes needs nats_server.cluster_name")
    if not opts.cluster_listen:
        raise ValueError(
            "nats_server.cluster_name needs nats_server.cluster_listen (LIFELINE_NATS_CLUSTER_LISTEN): "
            "the address the other nodes reach this server's routes on, e.g. 10.0.0.1:6222"
        )
    user, password = _cluster_auth(opts)
    routes = [with_credentials(r, user, password) for r in opts.cluster_routes]
    lines = [
        f"  name: {_q(opts.cluster_name)}",
        f"  listen: {_q(opts.cluster_listen)}",
        f"  routes: {_list(routes, '  ')}",
        f"  authorization {{ user: {_q(user)}, password: {_q(password)} }}",
    ]
    tls = _cluster_tls(opts)
    if tls:
        lines.append(f"  tls {{ {', '.join(tls)} }}")
    return "# cluster routes between the nodes' servers\ncluster {\n" + "\n".join(lines) + "\n}\n"


def jetstream_domain(node: str, opts: NatsServerSettings) -> str | None:
    """The explicit domain, else the node's name when it is a leaf node (one domain per node)."""
    if opts.domain:
        return opts.domain
    return encode_token(node) if opts.leaf_url else None


MAX_FILE_STORE = "1G"
"""JetStream's file store limit: what every stream may reserve (events 256 MiB, dead letters 64 MiB,
bounded buckets), fixed instead of nats-server's default, 75% of the space free at its start, so a
server started on a nearly full disk can still hold the streams, and one started on an empty disk
never takes more than this (docs/operations.md, "Disk space")."""


def jetstream_block(
    store_dir: str, domain: str | None, *, enabled: bool = True, max_file_store: str | None = MAX_FILE_STORE
) -> str:
    """The ``jetstream`` block; ``enabled=False`` is what ``lifeline up`` reloads to reopen the store."""
    dom = f"  domain: {_q(domain)}\n" if domain else ""
    off = "" if enabled else "  enabled: false\n"
    limit = f"  max_file_store: {max_file_store}\n" if max_file_store else ""
    return f"jetstream {{\n{off}  store_dir: {_q(store_dir)}\n{limit}{dom}}}\n"


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
    jetstream: bool = True,
) -> str:
    """The nats-server config of ``node``: JetStream, one account, the users, and ``server``'s options.

    ``passwords`` maps user → password (every service user and ``admin``;
    refused when empty, an example or too short); None writes
    ``$LIFELINE_NATS_PASSWORD_<USER>`` references that nats-server reads from
    its environment (what compose does; :func:`check_env_passwords` checks
    those values).  ``server``: TLS, leaf remote, cluster (``[nats_server]``);
    none by default; a remote or routes without credentials are refused.
    """
    opts = server or NatsServerSettings()
    if passwords is not None:
        check_passwords(passwords)
    domain = jetstream_domain(node, opts)
    blocks = [_user_block(ADMIN, _password(ADMIN, passwords), admin_permissions(node, domain))]
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
        f"{jetstream_block(store_dir, domain, enabled=jetstream)}"
        "accounts {\n"
        f"  {ACCOUNT}: {{\n"
        "    jetstream: enabled\n"
        f"    users: [\n{users}\n    ]\n"
        "  }\n"
        "}\n"
        f"{_tls_block(opts)}{_leaf_block(node, opts)}{_cluster_block(opts)}"
        f"{OPTIONAL_HINT}"
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
    p.add_argument(
        "--nodes",
        action="append",
        help="hub: the fleet's nodes, NODE or NODE=DOMAIN (repeat or comma-separated); one leaf user each",
    )
    p.add_argument("--tls-cert", help="hub: certificate for clients and leaf connections")
    p.add_argument("--tls-key", help="hub: its key")
    p.add_argument("--tls-ca", help="hub: CA of the nodes' and clients' certificates (with --tls-verify)")
    p.add_argument("--tls-verify", action="store_true", help="hub: every connection presents a certificate")
    p.add_argument("--http-port", type=int, default=None, help="monitoring port (default: off)")
    p.add_argument("--store-dir", default=None, help="JetStream store (default /var/lib/lifeline/nats)")
    p.add_argument("--settings", default=None, help="lifeline.toml with [nats_server] (default: as services)")
    p.add_argument("--republish", action="append", help="subject the notifier may republish to (repeat)")
    how = p.add_mutually_exclusive_group()
    how.add_argument(
        "--env-passwords",
        action="store_true",
        help="refer to $LIFELINE_NATS_PASSWORD_<USER> (default; their values are checked now)",
    )
    how.add_argument(
        "--new-passwords",
        metavar="ENV_FILE",
        help="generate passwords, write them as LIFELINE_NATS_PASSWORD_<USER>=... lines to ENV_FILE "
        "(hub: adds the missing ones to ENV_FILE, keeps the others)",
    )
    p.add_argument("-o", "--output", help="write the config here, mode 0600 (default: stdout)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    p = _parser()
    args = p.parse_args(argv)
    try:
        if args.output:  # checked before anything is generated, so a refusal leaves nothing behind
            _check_output(Path(args.output))
        if args.hub:
            from shared import nats_hub  # builds on this module's config pieces (a cycle at import time)

            text = nats_hub.from_args(args)
        else:
            if not args.node:
                p.error("--node is required (or --hub)")
            text = _node(args)
        if args.output:
            write_secret(Path(args.output), text)
        else:
            sys.stdout.write(text)
    except (SettingsError, ValueError, SecretFileError) as exc:
        print(f"nats_users: {exc}", file=sys.stderr)
        return 1
    return 0


def _check_output(path: Path) -> None:
    """``-o``: a new file or a safe secret of ours; never a device, a link or someone else's file."""
    if path.exists() and not path.is_symlink() and not path.is_file():
        raise ValueError(
            f"-o {path}: not a regular file (to discard the config, leave out -o: it goes to stdout)"
        )
    check_secret(path)


def _node(args: argparse.Namespace) -> str:
    """A node: the optional parts from ``[nats_server]`` / ``LIFELINE_NATS_*``."""
    settings = load_settings(Path(args.settings) if args.settings else None)
    passwords = generate_passwords() if args.new_passwords else None
    if passwords is None:
        check_env_passwords(os.environ)
    text = render_config(
        args.node,
        passwords,
        host=args.host or "127.0.0.1",
        port=args.port,
        store_dir=args.store_dir or "/var/lib/lifeline/nats",
        http_port=args.http_port,
        republish=tuple(args.republish or DEFAULT_REPUBLISH),
        server=settings.nats_server,
    )
    if passwords is not None:  # only once the config is known to render: no orphan passwords
        lines = [f"{password_var(u)}={pw}\n" for u, pw in passwords.items()]
        write_secret(Path(args.new_passwords), "".join(lines))
    return text


if __name__ == "__main__":
    sys.exit(main())
