"""Who runs a script, by name, as keepalived 2.2.7 decides it.

In keepalived's order (verified with its runs, each script printing ``id``):

1. the script's own user (and group): word 2 (and 3) of a notify line, the
   ``user USER [GROUP]`` keyword of a ``vrrp_script`` or ``MISC_CHECK`` block;
2. else ``global_defs { script_user USER [GROUP] }``;
3. else the user ``keepalived_script`` if it exists;
4. else root, which ``enable_script_security`` refuses ("Unable to set
   default user keepalived_script for script"); without it keepalived logs
   "Script user 'keepalived_script' does not exist" and runs the script as root.

A user without a group runs with its primary group.  Pure: the user database
is a ``user_exists`` callable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

DEFAULT_SCRIPT_USER = "keepalived_script"
ROOT_USER = "root"


class Source(StrEnum):
    """Which rule chose the user (shown by ``lifeline config check`` and in the services' logs)."""

    OWN = "its own user"
    SCRIPT_USER = "script_user"
    DEFAULT = "the keepalived_script user"
    ROOT_FALLBACK = "root by fallback: no script_user and no keepalived_script user"


class RefusalKind(StrEnum):
    USER_MISSING = "user missing"
    GROUP_MISSING = "group missing"
    SCRIPT_USER_MISSING = "script_user missing"
    NO_DEFAULT_USER = "no default user"
    UNSAFE = "unsafe"


@dataclass(frozen=True)
class Refusal:
    """Why keepalived would not run a script; ``reason`` is keepalived's own wording."""

    kind: RefusalKind
    reason: str
    subject: str = ""
    """The user, group or path the refusal is about."""


@dataclass(frozen=True)
class ScriptPolicy:
    """The part ``global_defs`` has in it: ``script_user [group]`` and ``enable_script_security``."""

    script_user: str | None = None
    script_group: str | None = None
    security: bool = False


@dataclass(frozen=True)
class Choice:
    """The user (and group; None: the user's primary group) a script runs as, and why."""

    user: str
    group: str | None
    source: Source


def choose(
    user: str | None, group: str | None, policy: ScriptPolicy, user_exists: Callable[[str], bool]
) -> Choice | Refusal:
    """keepalived's order; a user that does not exist refuses the script."""
    if user is not None:
        if not user_exists(user):
            return Refusal(RefusalKind.USER_MISSING, f"Script user '{user}' does not exist", user)
        return Choice(user, group, Source.OWN)
    if policy.script_user is not None:
        if not user_exists(policy.script_user):
            who = policy.script_user
            return Refusal(RefusalKind.SCRIPT_USER_MISSING, f"script_user '{who}' does not exist", who)
        return Choice(policy.script_user, policy.script_group, Source.SCRIPT_USER)
    if user_exists(DEFAULT_SCRIPT_USER):
        return Choice(DEFAULT_SCRIPT_USER, None, Source.DEFAULT)
    if policy.security:
        return Refusal(
            RefusalKind.NO_DEFAULT_USER,
            f"Unable to set default user {DEFAULT_SCRIPT_USER} for script",
            DEFAULT_SCRIPT_USER,
        )
    return Choice(ROOT_USER, None, Source.ROOT_FALLBACK)
