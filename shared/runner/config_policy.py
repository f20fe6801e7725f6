"""The one configuration policy of every service: errors refuse the file as a whole.

At start a file with errors means nothing runs (exit ``Exit.CONFIG`` after
every ``file:line`` problem); at reload it means the running configuration
stays and the errors are published.  Warnings and notes never refuse: they are
logged, as keepalived logs what it shrugs off.  Compat lines (a keyword lifeline
does not fully act on) never refuse either, and each service keeps only those
of its own areas (``ServiceSpec.areas``), so each is logged once, by the
service that would act on the keyword.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from shared.config.diagnostics import ConfigError, Diagnostic, Severity
from shared.config.host import NoHost
from shared.config.load import load
from shared.config.model import Config
from shared.config.support import in_areas

log = logging.getLogger("lifeline.config")


@dataclass(frozen=True)
class Checked:
    """A file read under the policy: ``config`` when usable, else the ``errors`` that refused it."""

    path: str
    config: Config | None
    errors: list[str] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)


def read(
    path: str | Path, config_id: str | None, *, quiet: bool = False, areas: Collection[str] = ()
) -> Checked:
    """Load ``path``; every diagnostic is logged at the level its severity deserves (unless ``quiet``).

    Compat lines are kept only for ``areas`` (the calling service's own).
    """
    try:
        loaded = load(path, config_id=config_id)
    except ConfigError as exc:
        diagnostics = exc.diagnostics
        config: Config | None = None
    else:
        diagnostics, config = [d for d in loaded.diagnostics if in_areas(d, areas)], loaded.config
    errors = [str(d) for d in diagnostics if d.severity is Severity.ERROR]
    checked = Checked(str(path), None if errors else config, errors, diagnostics)
    if not quiet:
        log_diagnostics(checked)
    return checked


def log_diagnostics(checked: Checked) -> None:
    for d in checked.diagnostics:
        log.log(logging.ERROR if d.severity is Severity.ERROR else logging.WARNING, "%s", d)


def net_namespace(checked: Checked, config_id: str | None) -> str | None:
    """The file's ``net_namespace``, also when it has errors (an interface that exists only inside).

    A file refused outside is read once more without host checks just for
    this: keepalived's parent reads the namespace first and checks the rest
    inside it.
    """
    if checked.config is not None:
        return checked.config.global_defs.net_namespace
    try:
        return load(checked.path, config_id=config_id, host=NoHost()).config.global_defs.net_namespace
    except ConfigError:
        return None
