"""The environment a script gets: an allow-list, never the service's own (pure).

keepalived 2.2.7 passes its whole environment to every script and adds
nothing of its own (verified: a notify script and a vrrp_script printing
``env`` see exactly what keepalived was started with).  A lifeline service's
environment holds its NATS URL and password (``LIFELINE_NATS_*``) and the
path of its settings; a script, possibly another user, must not inherit them.
So a script sees only:

- ``PATH`` (a standard one if the service has none), ``LANG``, ``LANGUAGE``,
  ``LC_*`` and ``TZ`` from the service's environment;
- ``HOME``, ``USER``, ``LOGNAME`` and ``SHELL`` of the user it runs as;
- what the caller adds (the notifier's ``LIFELINE_*`` event variables), which
  may never name a NATS setting or the settings file.
"""

from __future__ import annotations

from collections.abc import Mapping

from shared.scripts.accounts import Identity

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
KEPT = frozenset({"PATH", "LANG", "LANGUAGE", "TZ"})
KEPT_PREFIXES = ("LC_",)
FORBIDDEN_PREFIXES = ("LIFELINE_NATS_", "LIFELINE_SETTINGS")
"""Names no script may ever be given: the bus credentials and settings, whoever asks."""


def is_kept(name: str) -> bool:
    return name in KEPT or name.startswith(KEPT_PREFIXES)


def is_forbidden(name: str) -> bool:
    return name.startswith(FORBIDDEN_PREFIXES)


def script_env(
    service_env: Mapping[str, str], identity: Identity, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment for a script running as ``identity``; ``ValueError`` if ``extra`` names a secret."""
    env = {name: value for name, value in service_env.items() if is_kept(name)}
    env.setdefault("PATH", DEFAULT_PATH)
    env.update(HOME=identity.home, USER=identity.user, LOGNAME=identity.user, SHELL=identity.shell)
    for name, value in (extra or {}).items():
        if is_forbidden(name):
            raise ValueError(f"{name} may not be passed to a script")
        env[name] = value
    return env
