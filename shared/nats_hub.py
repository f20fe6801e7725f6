"""The hub of a leaf-node fleet: one leaf user per node, a fleet admin, a read-only reader.

Why a user per node: a leaf connection carries whatever the hub lets it, in
both directions, and a node is only as trustworthy as its least protected
host.  Each node's server logs in as ``leaf-<node>`` (the same name
``shared.nats_users`` puts in the node's remote), and that user's permissions
are the node's place in the fleet.  Seen from the node (nats-server's leaf
permissions are the remote's view; the hub enforces them on what it receives
and sends, and tells the node to enforce them too):

- *publish* (node → hub): its own subjects ``lifeline.<node>.>`` (events for
  the hub's subscribers) and ``_INBOX.>``/``_INBOX_fleet-admin.>`` (answers to the fleet admin's
  requests, JetStream deliveries of the fleet admin's KV reads);
- *subscribe* (hub → node): its own control subjects ``lifeline.<node>.ctl.>``,
  its JetStream domain's API ``$JS.<domain>.API.>``, flow control
  ``$JS.FC.>`` and ``$SRV.>`` discovery: what the fleet admin's ``lifeline
  status --domain``, ``health``, ``reload`` and ``instance`` commands send.

So another node's ``ctl`` and ``track`` subjects (or anything else of it)
never cross a leaf connection in either direction: a node whose admin, or
whose whole server, is hostile cannot publish ``lifeline.<other>.ctl.>`` or
reach another node's JetStream domain; the hub refuses it (``Publish
Violation``, and it closes that leaf connection).  Leaf users may only log in
as leaf connections and the people's users only as clients
(``allowed_connection_types``).

``fleet-admin`` is the fleet's operator: control requests to any node, any
domain's JetStream API, discovery.  ``reader`` receives every node's events
(``lifeline.>`` except control traffic) and can publish nothing: what an
external subscriber needs.  Why an account of the same name as the nodes':
a node's remote binds its ``LIFELINE`` account to the account of its hub
user, and the hub's subscribers must be in that account to see the events.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from shared.bus.trust import inbox_prefix
from shared.events import PREFIX, encode_token
from shared.nats_passwords import PasswordError, check_password, generate_password
from shared.nats_users import ACCOUNT, _list, _q, jetstream_block, leaf_user, password_var, tls_lines
from shared.secret_files import format_env, parse_env, read_secret, write_secret

FLEET_ADMIN = "fleet-admin"
READER = "reader"
FLEET_INBOX = inbox_prefix(FLEET_ADMIN)
"""The fleet admin's private inbox prefix (``shared.bus.connect`` sets it): its answers come up the leafs."""
HUB_DOMAIN = "hub"
LEAF_PASSWORD_ENV = "LIFELINE_NATS_LEAF_PASSWORD_{node}"
"""The hub's variable for a node's leaf password (on the node: ``LIFELINE_NATS_LEAF_PASSWORD``)."""


@dataclass(frozen=True)
class FleetNode:
    """One node as the hub knows it: its name (as its services use it) and its JetStream domain."""

    name: str
    domain: str

    @property
    def user(self) -> str:
        return leaf_user(self.name)

    @property
    def password_var(self) -> str:
        return LEAF_PASSWORD_ENV.format(node=re.sub(r"[^A-Z0-9]", "_", self.name.upper()))


def parse_nodes(values: Sequence[str] | None) -> list[FleetNode]:
    """``--nodes lb1,lb2=site2``: names, each with its domain (default: the name as a subject token)."""
    nodes: list[FleetNode] = []
    for value in values or ():
        for part in value.split(","):
            name, _, domain = part.strip().partition("=")
            if name:
                nodes.append(FleetNode(name.strip(), domain.strip() or encode_token(name.strip())))
    return nodes


@dataclass(frozen=True)
class Rights:
    """One direction of a user's permissions: allowed subjects, minus denied ones."""

    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()


@dataclass(frozen=True)
class HubUser:
    user: str
    connection: str  # STANDARD (clients) or LEAFNODE (a node's server)
    publish: Rights
    subscribe: Rights
    allow_responses: bool = False


def leaf_rights(node: FleetNode) -> HubUser:
    """The node's server on its leaf connection: its own subjects up, its control and domain down."""
    n = encode_token(node.name)
    return HubUser(
        node.user,
        "LEAFNODE",
        publish=Rights(allow=(f"{PREFIX}.{n}.>", "_INBOX.>", f"{FLEET_INBOX}.>")),
        subscribe=Rights(allow=(f"{PREFIX}.{n}.ctl.>", f"$JS.{node.domain}.API.>", "$JS.FC.>", "$SRV.>")),
    )


FLEET_ADMIN_RIGHTS = HubUser(
    FLEET_ADMIN,
    "STANDARD",
    publish=Rights(
        allow=(f"{PREFIX}.*.ctl.>", "$JS.API.>", "$JS.*.API.>", "$JS.FC.>", "$JS.ACK.>", "$SRV.>")
    ),
    subscribe=Rights(allow=(f"{PREFIX}.>", "_INBOX.>", f"{FLEET_INBOX}.>")),
)
"""Control of every node, every domain's JetStream, discovery; it reads everything lifeline publishes."""

READER_RIGHTS = HubUser(
    READER,
    "STANDARD",
    publish=Rights(deny=(">",)),
    subscribe=Rights(allow=(f"{PREFIX}.>",), deny=(f"{PREFIX}.*.ctl.>",)),
)
"""External subscribers: every node's events, no control traffic, nothing to publish."""


@dataclass(frozen=True)
class HubTls:
    """One certificate for the hub's clients and leaf connections; ``verify``: both must present one."""

    cert: str
    key: str
    ca: str | None = None
    verify: bool = False


def hub_users(nodes: Sequence[FleetNode]) -> list[HubUser]:
    return [FLEET_ADMIN_RIGHTS, READER_RIGHTS, *(leaf_rights(n) for n in nodes)]


def password_vars(nodes: Sequence[FleetNode]) -> dict[str, str]:
    """user → the variable holding its password (hub environment, ``--new-passwords`` file)."""
    out = {FLEET_ADMIN: password_var(FLEET_ADMIN), READER: password_var(READER)}
    out |= {n.user: n.password_var for n in nodes}
    return out


def check_fleet(nodes: Sequence[FleetNode], domain: str) -> None:
    """Refuse a fleet whose names would collide: users, password variables, JetStream domains."""
    if not nodes:
        raise ValueError("--hub needs the fleet's nodes: --nodes lb1,lb2,... (one leaf user each)")
    for attr, what in (("user", "leaf user"), ("password_var", "password variable"), ("domain", "domain")):
        seen: dict[str, str] = {}
        for node in nodes:
            key = getattr(node, attr)
            if key in seen:
                raise ValueError(f"nodes {seen[key]!r} and {node.name!r} have the same {what} {key!r}")
            seen[key] = node.name
    if any(node.domain == domain for node in nodes):
        raise ValueError(f"a node's JetStream domain is the hub's own ({domain!r})")


def _rights(name: str, rights: Rights, ind: str) -> str:
    parts = []
    if rights.allow:
        parts.append(f"allow: {_list(rights.allow, ind)}")
    if rights.deny:
        parts.append(f"deny: {_list(rights.deny, ind)}")
    return f"{ind}{name}: {{ {', '.join(parts)} }}"


def _user_block(user: HubUser, password: str) -> str:
    ind = "      "
    return "\n".join(
        [
            f"{ind}{{",
            f"{ind}  user: {_q(user.user)}",
            f"{ind}  password: {_q(password)}",
            f"{ind}  allowed_connection_types: [{_q(user.connection)}]",
            f"{ind}  permissions: {{",
            _rights("publish", user.publish, ind + "    "),
            _rights("subscribe", user.subscribe, ind + "    "),
            f"{ind}    allow_responses: {'true' if user.allow_responses else 'false'}",
            f"{ind}  }}",
            f"{ind}}}",
        ]
    )


def _tls_block(tls: HubTls | None, indent: str) -> str:
    if tls is None:
        return ""
    if tls.verify and not tls.ca:
        raise ValueError("--tls-verify needs --tls-ca")
    inner = "".join(f"{indent}  {line}\n" for line in tls_lines(tls.cert, tls.key, tls.ca, tls.verify))
    return f"{indent}tls {{\n{inner}{indent}}}\n"


def render_hub_config(
    passwords: Mapping[str, str],
    nodes: Sequence[FleetNode],
    *,
    host: str = "0.0.0.0",
    port: int = 4222,
    leaf_port: int = 7422,
    store_dir: str = "/var/lib/lifeline/hub",
    domain: str = HUB_DOMAIN,
    tls: HubTls | None = None,
    http_port: int | None = None,
) -> str:
    """The hub's config: ``passwords`` maps every user (:func:`password_vars`) to its password."""
    check_fleet(nodes, domain)
    users = hub_users(nodes)
    names = password_vars(nodes)
    for user in users:
        check_password(names[user.user], passwords.get(user.user))
    blocks = ",\n".join(_user_block(u, passwords[u.user]) for u in users)
    monitor = f"http: {_q(f'127.0.0.1:{http_port}')}\n" if http_port else ""
    return (
        "# nats-server config of a lifeline fleet hub: generated by `python -m shared.nats_users --hub`.\n"
        "# One leaf user per node, limited to that node's subjects (docs/security.md); fleet-admin, reader.\n"
        f"server_name: {_q('lifeline-' + domain)}\n"
        f"listen: {_q(f'{host}:{port}')}\n"
        f"{monitor}"
        f"{jetstream_block(store_dir, domain, max_file_store=None)}"
        f"{_tls_block(tls, '')}"
        "accounts {\n"
        f"  {ACCOUNT}: {{\n"
        "    jetstream: enabled\n"
        f"    users: [\n{blocks}\n    ]\n"
        "  }\n"
        "}\n"
        "# no leafnodes authorization block: leaf connections log in as the users above\n"
        "leafnodes {\n"
        f"  listen: {_q(f'{host}:{leaf_port}')}\n"
        f"{_tls_block(tls, '  ')}"
        "}\n"
    )


def hub_passwords(
    nodes: Sequence[FleetNode], new_passwords: str | None, env: Mapping[str, str]
) -> dict[str, str]:
    """user → password: from ``new_passwords`` (kept, the missing ones generated and added) or ``env``."""
    names = password_vars(nodes)
    if not new_passwords:
        return {user: check_password(var, env.get(var)) for user, var in names.items()}
    path = Path(new_passwords)
    saved = parse_env(read_secret(path) or "")
    for var in names.values():
        if not saved.get(var):
            saved[var] = generate_password()
    out = {user: check_password(f"{path}: {var}", saved[var]) for user, var in names.items()}
    write_secret(path, format_env(saved))
    return out


def from_args(args: argparse.Namespace) -> str:
    """``python -m shared.nats_users --hub``: the hub's config from the command line and its passwords."""
    nodes = parse_nodes(args.nodes)
    check_fleet(nodes, HUB_DOMAIN)
    tls = None
    if args.tls_cert or args.tls_key:
        if not (args.tls_cert and args.tls_key):
            raise ValueError("--tls-cert and --tls-key go together")
        tls = HubTls(args.tls_cert, args.tls_key, args.tls_ca, args.tls_verify)
    host = args.host or "0.0.0.0"
    if tls is None and host not in ("127.0.0.1", "::1", "localhost"):
        print(
            f"nats_users: warning: the hub listens on {host} without TLS: passwords cross the network "
            "in clear (--tls-cert/--tls-key, docs/security.md)",
            file=sys.stderr,
        )
    try:
        passwords = hub_passwords(nodes, args.new_passwords, os.environ)
    except PasswordError as exc:
        raise PasswordError(f"{exc} (the hub's passwords: --new-passwords FILE, docs/deploy.md)") from None
    return render_hub_config(
        passwords,
        nodes,
        host=host,
        port=args.port,
        leaf_port=args.leaf_port,
        store_dir=args.store_dir or "/var/lib/lifeline/hub",
        tls=tls,
        http_port=args.http_port,
    )
