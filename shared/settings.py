"""lifeline's own settings: what keepalived.conf has no words for.

They live in one small ``lifeline.toml`` (node name, NATS URL and credentials,
extra notifier sinks, metrics port, the node's own nats-server in ``[nats_server]``)
so keepalived.conf stays exactly what keepalived accepts.  Environment variables
override the file and command-line flags override both, so a container sets
``LIFELINE_NODE`` without a file.  docs/deploy.md lists every setting.  Fields
annotated ``SECRET`` (passwords) are registered with ``shared.redact`` by the
runner and the CLI, so no log line or output shows them.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Annotated, Any

import msgspec

from shared.redact import SECRET

DEFAULT_SETTINGS_PATH = Path("/etc/lifeline/lifeline.toml")
DEFAULT_CONFIG_PATH = Path("/etc/keepalived/keepalived.conf")


class SinkSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One extra notifier sink: its plugin name and the options its factory takes."""

    name: str
    kind: str
    options: dict[str, Any] = msgspec.field(default_factory=dict)


class SmtpSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    starttls: bool = False
    use_tls: bool = False
    username: str | None = None
    password: Annotated[str | None, SECRET] = None
    cafile: str | None = None  # trust this CA (a private mail server) instead of the system's
    allow_plaintext_auth: bool = False  # AUTH over a connection that is neither TLS nor STARTTLS

    @property
    def auth_in_clear(self) -> bool:
        """Credentials set, but neither ``use_tls`` nor ``starttls``: AUTH would show the password."""
        return self.username is not None and not (self.starttls or self.use_tls)


class NatsServerSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The node's own nats-server as ``shared.nats_users`` generates it (compose, systemd, ``lifeline up``).

    Why settings and not a hand-edited config: the server's users and
    permissions are generated from the node name, so the optional parts (TLS,
    a leaf-node remote to a hub, cluster routes) must be generated with them,
    or an operator's edit is lost at the next start.  Everything is off when unset.
    """

    domain: str | None = None  # JetStream domain; default: the node's name when leaf_url is set
    tls_cert: str | None = None  # server certificate for client connections (then tls:// URLs)
    tls_key: str | None = None
    tls_ca: str | None = None  # CA of client certificates (with tls_verify)
    tls_verify: bool = False  # clients must present a certificate signed by tls_ca
    leaf_url: str | None = None  # the hub: nats-leaf://hub:7422 (tls://... for TLS)
    leaf_user: str | None = None  # the hub's user for this node; default leaf-<node> (as --hub names it)
    leaf_password: Annotated[str | None, SECRET] = None  # required with leaf_url (or leaf_creds)
    leaf_creds: str | None = None  # or a .creds file (JWT hubs)
    leaf_ca: str | None = None  # CA of the hub's certificate
    leaf_cert: str | None = None  # this node's certificate, for a hub that verifies (--tls-verify)
    leaf_key: str | None = None
    cluster_name: str | None = None  # cluster routes: same name on every node
    cluster_listen: str | None = None  # required with routes: the address the peers reach, 10.0.0.1:6222
    cluster_routes: list[str] = msgspec.field(default_factory=list)  # nats-route://host:6222, every node
    cluster_user: str | None = None  # route authentication, required (the same on every node)
    cluster_password: Annotated[str | None, SECRET] = None
    cluster_tls_cert: str | None = None  # route TLS (recommended): this server's certificate ...
    cluster_tls_key: str | None = None
    cluster_tls_ca: str | None = None  # ... and the CA every peer's certificate must be signed by


class KeepalivedCompatSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``[keepalived_compat]``: the vrrp service answers tools written for keepalived (off by default).

    It writes keepalived's pid files and, on keepalived's dump signals, its
    ``keepalived.data``/``.stats``/``.json`` (``services/vrrp/keepalived_compat.py``).
    """

    enabled: bool = False
    pid_file: str = "/run/keepalived.pid"  # keepalived's parent; what the exporters signal
    vrrp_pid_file: str = "/run/keepalived_vrrp.pid"  # keepalived's VRRP child
    dump_dir: str = "/tmp"  # where keepalived 2.2.7 writes its dumps (tools read them there)


class Settings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    node: str = msgspec.field(default_factory=lambda: socket.gethostname().split(".", 1)[0])
    nats_url: str = "nats://127.0.0.1:4222"
    nats_user: str | None = None
    nats_password: Annotated[str | None, SECRET] = None
    nats_creds: str | None = None
    nats_tls_ca: str | None = None  # trust this CA for a tls:// server (else the system's)
    nats_tls_cert: str | None = None  # client certificate, for a server with tls_verify
    nats_tls_key: str | None = None
    nats_server: NatsServerSettings = msgspec.field(default_factory=NatsServerSettings)
    config: str = str(DEFAULT_CONFIG_PATH)
    config_id: str | None = None
    state_dir: str = "/var/lib/lifeline"  # what must outlive a process: outboxes, notify claims, vrrp resume
    metrics_port: int = 9650
    http_listen: str = "127.0.0.1"  # the http service (status, health checks, live page): this host only
    http_port: int = 9651
    smtp: SmtpSettings = msgspec.field(default_factory=SmtpSettings)
    sinks: list[SinkSettings] = msgspec.field(default_factory=list)
    keepalived_compat: KeepalivedCompatSettings = msgspec.field(default_factory=KeepalivedCompatSettings)


def node_state_dir(settings: Settings) -> Path:
    """This node's directory for state that must survive a process (``state_dir``/``node``).

    Per node, so several nodes of a lab on one host never share files; every
    service of the node uses the same one (compose mounts it into each).
    """
    return Path(settings.state_dir) / settings.node


def settings_warnings(settings: Settings) -> list[str]:
    """What a correct lifeline.toml may still do wrong, one sentence each (``lifeline config check``).

    Warnings, not errors: the services start with such a file, so the check
    must not refuse it either.
    """
    out: list[str] = []
    smtp = settings.smtp
    if smtp.auth_in_clear and smtp.allow_plaintext_auth:
        out.append(
            "[smtp] username without starttls or use_tls, and allow_plaintext_auth = true:"
            " the SMTP password crosses the network in clear text"
        )
    elif smtp.auth_in_clear:
        out.append(
            "[smtp] username without starttls or use_tls: the notifier refuses to send AUTH in clear text,"
            " so every mail is dead-lettered; set starttls = true or use_tls = true"
            " (or allow_plaintext_auth = true to accept the risk)"
        )
    return out


ENV_OVERRIDES = {
    "LIFELINE_NODE": "node",
    "LIFELINE_NATS_URL": "nats_url",
    "LIFELINE_NATS_USER": "nats_user",
    "LIFELINE_NATS_PASSWORD": "nats_password",
    "LIFELINE_NATS_CREDS": "nats_creds",
    "LIFELINE_NATS_TLS_CA": "nats_tls_ca",
    "LIFELINE_NATS_TLS_CERT": "nats_tls_cert",
    "LIFELINE_NATS_TLS_KEY": "nats_tls_key",
    "LIFELINE_CONFIG": "config",
    "LIFELINE_CONFIG_ID": "config_id",
    "LIFELINE_STATE_DIR": "state_dir",
}

SERVER_ENV_OVERRIDES = {
    "LIFELINE_NATS_DOMAIN": "domain",
    "LIFELINE_NATS_SERVER_TLS_CERT": "tls_cert",
    "LIFELINE_NATS_SERVER_TLS_KEY": "tls_key",
    "LIFELINE_NATS_SERVER_TLS_CA": "tls_ca",
    "LIFELINE_NATS_SERVER_TLS_VERIFY": "tls_verify",
    "LIFELINE_NATS_LEAF_URL": "leaf_url",
    "LIFELINE_NATS_LEAF_USER": "leaf_user",
    "LIFELINE_NATS_LEAF_PASSWORD": "leaf_password",
    "LIFELINE_NATS_LEAF_CREDS": "leaf_creds",
    "LIFELINE_NATS_LEAF_CA": "leaf_ca",
    "LIFELINE_NATS_LEAF_CERT": "leaf_cert",
    "LIFELINE_NATS_LEAF_KEY": "leaf_key",
    "LIFELINE_NATS_CLUSTER_NAME": "cluster_name",
    "LIFELINE_NATS_CLUSTER_LISTEN": "cluster_listen",
    "LIFELINE_NATS_CLUSTER_ROUTES": "cluster_routes",
    "LIFELINE_NATS_CLUSTER_USER": "cluster_user",
    "LIFELINE_NATS_CLUSTER_PASSWORD": "cluster_password",
    "LIFELINE_NATS_CLUSTER_TLS_CERT": "cluster_tls_cert",
    "LIFELINE_NATS_CLUSTER_TLS_KEY": "cluster_tls_key",
    "LIFELINE_NATS_CLUSTER_TLS_CA": "cluster_tls_ca",
}
"""``[nats_server]`` from the environment (compose passes these to the nats container)."""

_LISTS = {"cluster_routes"}
_BOOLS = {"tls_verify"}


class SettingsError(Exception):
    """lifeline.toml is unreadable or wrong; the message names the file and what was expected."""


def settings_path(path: Path | None = None, env: dict[str, str] | None = None) -> Path:
    """The lifeline.toml ``load_settings`` reads: ``path``, else $LIFELINE_SETTINGS, else the default."""
    if path is not None:
        return path
    env = dict(os.environ) if env is None else env
    return Path(env.get("LIFELINE_SETTINGS", str(DEFAULT_SETTINGS_PATH)))


def load_settings(
    path: Path | None = None,
    env: dict[str, str] | None = None,
    *,
    required: bool = False,
    **flags: str | None,
) -> Settings:
    """File (if present), then environment, then non-None ``flags`` (node=..., nats_url=..., config=...).

    ``required``: the operator named ``path`` (``--settings``), so a missing file
    is an error rather than "no settings file", which would silently drop
    every credential in it.
    """
    env = dict(os.environ) if env is None else env
    source = settings_path(path, env)
    if required and not source.exists():
        raise SettingsError(f"{source}: no such settings file")
    data: dict[str, Any] = {}
    if source.exists():
        try:
            data = msgspec.toml.decode(source.read_bytes())
        except (msgspec.DecodeError, OSError) as exc:
            raise SettingsError(f"{source}: {exc}") from None
    for var, field in ENV_OVERRIDES.items():
        if env.get(var):
            data[field] = env[var]
    server = data.setdefault("nats_server", {})
    if not isinstance(server, dict):
        raise SettingsError(f"{source}: nats_server: expected a table")
    for var, field in SERVER_ENV_OVERRIDES.items():
        if env.get(var):
            server[field] = _env_value(field, env[var])
    data.update({k: v for k, v in flags.items() if v is not None})
    try:
        return msgspec.convert(data, Settings)
    except msgspec.ValidationError as exc:
        raise SettingsError(f"{source}: {exc}") from None


def _env_value(field: str, raw: str) -> str | bool | list[str]:
    """Comma-separated lists, yes/no booleans: what fits in one environment variable."""
    if field in _LISTS:
        return [part.strip() for part in raw.split(",") if part.strip()]
    if field in _BOOLS:
        return raw.strip().lower() in ("1", "true", "yes", "on")
    return raw
