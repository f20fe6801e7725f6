"""The one entry point every service and the CLI use to read keepalived.conf."""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from pathlib import Path

from shared.config.context import Context
from shared.config.diagnostics import ConfigError, Diagnostic
from shared.config.host import Host, LocalHost
from shared.config.lexer import read_tree
from shared.config.model import Config
from shared.config.parse import build
from shared.config.support import compat_diagnostics


@dataclass(frozen=True)
class Loaded:
    config: Config
    diagnostics: list[Diagnostic]


def default_config_id() -> str:
    """keepalived's default ``-i``: the host name up to the first dot."""
    return socket.gethostname().split(".", 1)[0]


def load(path: str | Path, *, config_id: str | None = None, host: Host | None = None) -> Loaded:
    """Read, expand and parse ``path``; every problem comes back as a diagnostic, none is raised.

    keepalived's own diagnostics come first, then one compat line per use of
    a keyword lifeline does not fully act on (``shared.config.support``).
    Only an unreadable top-level file raises ``ConfigError``: there is nothing to run.
    """
    host = host if host is not None else LocalHost()
    ctx = Context(config_id=default_config_id() if config_id is None else config_id, host=host)
    roots = read_tree(Path(path), ctx)
    config = build(ctx, roots, host)
    return Loaded(config, ctx.diagnostics.items + compat_diagnostics(roots))


def load_strict(
    path: str | Path,
    *,
    config_id: str | None = None,
    host: Host | None = None,
    log: logging.Logger | None = None,
) -> Config:
    """For services: refuse a configuration with errors as a whole; the rest goes to ``log`` (if given)."""
    loaded = load(path, config_id=config_id, host=host)
    if log is not None:
        for d in loaded.diagnostics:
            if d.severity != "error":
                log.warning("%s", d)
    errors = [d for d in loaded.diagnostics if d.severity == "error"]
    if errors:
        raise ConfigError(errors)
    return loaded.config
