"""Users and groups: who a name is (uid, primary group, supplementary groups, home, shell).

A seam (``Accounts``) for the same reason as ``files.ScriptFiles``: resolution
is pure and unit tested with ``FakeAccounts``; ``LocalAccounts`` asks the
machine's user database (``pwd``, ``grp``, ``os.getgrouplist``), and
``NamesOnlyAccounts`` answers for a configuration checked for another machine,
where only names are known.
"""

from __future__ import annotations

import grp
import os
import pwd
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

UNKNOWN_ID = -1
"""A uid or gid ``NamesOnlyAccounts`` cannot know: never 0, so never mistaken for root."""


@dataclass(frozen=True)
class UserEntry:
    """One line of the user database."""

    name: str
    uid: int
    gid: int
    home: str = "/"
    shell: str = "/bin/sh"


@dataclass(frozen=True)
class Identity:
    """Everything a script runs with: user, primary group, supplementary groups, home and shell."""

    user: str
    uid: int
    gid: int
    group: str | None
    """The primary group's name, None when the database has none for ``gid``."""
    groups: tuple[int, ...]
    """Supplementary groups, ``os.getgrouplist(user, gid)``: the user's own, never the service's."""
    home: str = "/"
    shell: str = "/bin/sh"

    @property
    def label(self) -> str:
        """``nobody:nogroup`` (or ``nobody`` when the group's name is unknown)."""
        return f"{self.user}:{self.group}" if self.group else self.user

    @property
    def privileged(self) -> bool:
        """uid 0 or gid 0: what makes keepalived check the script's path."""
        return self.uid == 0 or self.gid == 0


ROOT = Identity(user="root", uid=0, gid=0, group="root", groups=(0,), home="/root")
"""Who keepalived is: the identity ``lifeline config check`` resolves scripts from."""


class Accounts(Protocol):
    def user(self, name: str) -> UserEntry | None: ...

    def group_id(self, name: str) -> int | None: ...

    def group_name(self, gid: int) -> str | None: ...

    def supplementary(self, user: str, gid: int) -> tuple[int, ...]: ...


class LocalAccounts:
    """The machine's user and group database."""

    def user(self, name: str) -> UserEntry | None:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            return None
        return UserEntry(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir, entry.pw_shell)

    def group_id(self, name: str) -> int | None:
        try:
            return grp.getgrnam(name).gr_gid
        except KeyError:
            return None

    def group_name(self, gid: int) -> str | None:
        try:
            return grp.getgrgid(gid).gr_name
        except KeyError:
            return None

    def supplementary(self, user: str, gid: int) -> tuple[int, ...]:
        return tuple(os.getgrouplist(user, gid))


def own_identity(accounts: Accounts | None = None) -> Identity:
    """Who this process is (effective ids), with names where the database has them."""
    uid, gid = os.geteuid(), os.getegid()
    try:
        entry = pwd.getpwuid(uid)
        name, home, shell = entry.pw_name, entry.pw_dir, entry.pw_shell
    except KeyError:  # a numeric container user
        name, home, shell = str(uid), "/", "/bin/sh"
    group = (accounts or LocalAccounts()).group_name(gid)
    return Identity(name, uid, gid, group, tuple(os.getgroups()), home, shell)


class NamesOnlyAccounts:
    """For a configuration meant for another host: names exist as ``has_user``/``has_group`` say.

    Only ``root`` is known to be uid 0 and group ``root`` gid 0; every other id
    is ``UNKNOWN_ID``.  ``has_group`` None accepts every group.
    """

    def __init__(self, has_user: Callable[[str], bool], has_group: Callable[[str], bool] | None = None):
        self._has_user = has_user
        self._has_group = has_group

    def user(self, name: str) -> UserEntry | None:
        if not self._has_user(name):
            return None
        ids = 0 if name == "root" else UNKNOWN_ID
        return UserEntry(name, ids, ids)

    def group_id(self, name: str) -> int | None:
        if self._has_group is not None and not self._has_group(name):
            return None
        return 0 if name == "root" else UNKNOWN_ID

    def group_name(self, gid: int) -> str | None:
        return "root" if gid == 0 else None

    def supplementary(self, user: str, gid: int) -> tuple[int, ...]:
        return (gid,)


class FakeAccounts:
    """For tests: ``FakeAccounts([UserEntry("nobody", 65534, 65534)], {"nogroup": 65534})``.

    ``members`` maps a group name to the users listed in it (supplementary groups).
    """

    def __init__(
        self,
        users: list[UserEntry],
        groups: dict[str, int],
        members: dict[str, set[str]] | None = None,
    ) -> None:
        self.users = {u.name: u for u in users}
        self.groups = dict(groups)
        self.members = members or {}

    def user(self, name: str) -> UserEntry | None:
        return self.users.get(name)

    def group_id(self, name: str) -> int | None:
        return self.groups.get(name)

    def group_name(self, gid: int) -> str | None:
        return next((name for name, g in self.groups.items() if g == gid), None)

    def supplementary(self, user: str, gid: int) -> tuple[int, ...]:
        listed = (self.groups[g] for g, names in self.members.items() if user in names and g in self.groups)
        return (gid, *sorted(g for g in listed if g != gid))
