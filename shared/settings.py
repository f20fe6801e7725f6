"""lifeline's own settings: what keepalived.conf has no words for.

They live in one small ``lifeline.toml`` (node name, NATS URL and credentials,
extra notifier sinks, metrics port) so keepalived.conf stays exactly what
keepalived accepts.  Environment variables override the file and command-line
flags override both, so a container sets ``LIFELINE_NODE`` without a file.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import msgspec

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
    password: str | None = None
    cafile: str | None = None  # trust this CA (a private mail server) instead of the system's


class Settings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    node: str = msgspec.field(default_factory=lambda: socket.gethostname().split(".", 1)[0])
    nats_url: str = "nats://127.0.0.1:4222"
    nats_user: str | None = None
    nats_password: str | None = None
    nats_creds: str | None = None
    config: str = str(DEFAULT_CONFIG_PATH)
    config_id: str | None = None
    metrics_port: int = 9650
    smtp: SmtpSettings = msgspec.field(default_factory=SmtpSettings)
    sinks: list[SinkSettings] = msgspec.field(default_factory=list)


ENV_OVERRIDES = {
    "LIFELINE_NODE": "node",
    "LIFELINE_NATS_URL": "nats_url",
    "LIFELINE_NATS_USER": "nats_user",
    "LIFELINE_NATS_PASSWORD": "nats_password",
    "LIFELINE_NATS_CREDS": "nats_creds",
    "LIFELINE_CONFIG": "config",
    "LIFELINE_CONFIG_ID": "config_id",
}


class SettingsError(Exception):
    """lifeline.toml is unreadable or wrong; the message names the file and what was expected."""


def load_settings(
    path: Path | None = None, env: dict[str, str] | None = None, **flags: str | None
) -> Settings:
    """File (if present), then environment, then non-None ``flags`` (node=..., nats_url=..., config=...)."""
    env = dict(os.environ) if env is None else env
    source = path if path is not None else Path(env.get("LIFELINE_SETTINGS", str(DEFAULT_SETTINGS_PATH)))
    data: dict[str, Any] = {}
    if source.exists():
        try:
            data = msgspec.toml.decode(source.read_bytes())
        except (msgspec.DecodeError, OSError) as exc:
            raise SettingsError(f"{source}: {exc}") from None
    for var, field in ENV_OVERRIDES.items():
        if env.get(var):
            data[field] = env[var]
    data.update({k: v for k, v in flags.items() if v is not None})
    try:
        return msgspec.convert(data, Settings)
    except msgspec.ValidationError as exc:
        raise SettingsError(f"{source}: {exc}") from None
