"""The files behind a script, as ``enable_script_security`` looks at them (keepalived 2.2.7's rules).

A seam (``ScriptFiles``) so the rules are unit tested without root or real
files: ``LocalScriptFiles`` asks the machine, ``FakeScriptFiles`` is a dict.
"""

from __future__ import annotations

import grp
import os
import shutil
import stat
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class FileInfo:
    """What script security looks at for one path component."""

    uid: int
    gid: int
    mode: int


@runtime_checkable
class ScriptFiles(Protocol):
    """File-system questions script security asks; a test Host may implement these too."""

    def resolve_script(self, name: str) -> str | None:
        """The real path of ``name`` (searched on PATH without a slash), None if it is missing."""
        ...

    def file_info(self, path: str) -> FileInfo | None: ...

    def has_group(self, name: str) -> bool: ...


class LocalScriptFiles:
    """The real file system and group database."""

    def resolve_script(self, name: str) -> str | None:
        found = name if "/" in name else shutil.which(name)
        if found is None or not os.path.exists(found):
            return None
        return os.path.realpath(found)

    def file_info(self, path: str) -> FileInfo | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        return FileInfo(uid=st.st_uid, gid=st.st_gid, mode=st.st_mode)

    def has_group(self, name: str) -> bool:
        try:
            grp.getgrnam(name)
        except KeyError:
            return False
        return True


class FakeScriptFiles:
    """For tests: ``FakeScriptFiles({"/etc/ka/up.sh": FileInfo(0, 0, 0o100755)})``.

    Directories not listed are safe (root-owned, 0755); ``path`` maps bare names
    to what a PATH search would find.
    """

    def __init__(
        self,
        files: dict[str, FileInfo] | None = None,
        groups: set[str] | None = None,
        path: dict[str, str] | None = None,
    ) -> None:
        self.files = files or {}
        self.groups = groups if groups is not None else {"root"}
        self.path = path or {}

    def resolve_script(self, name: str) -> str | None:
        found = name if "/" in name else self.path.get(name)
        return found if found is not None and found in self.files else None

    def file_info(self, path: str) -> FileInfo | None:
        if path in self.files:
            return self.files[path]
        return FileInfo(uid=0, gid=0, mode=stat.S_IFDIR | 0o755)

    def has_group(self, name: str) -> bool:
        return name in self.groups


def is_unsafe(info: FileInfo) -> bool:
    """keepalived's rule for one path component of a script run as root.

    Verified on 2.2.7: unsafe if owned by a non-root user, group-writable by a
    non-root group, or world-writable, except a world-writable directory with
    the sticky bit (``/tmp``).
    """
    if info.uid != 0:
        return True
    if info.mode & stat.S_IWGRP and info.gid != 0:
        return True
    sticky_dir = stat.S_ISDIR(info.mode) and info.mode & stat.S_ISVTX
    return bool(info.mode & stat.S_IWOTH) and not sticky_dir


def path_is_unsafe(path: str, files: ScriptFiles) -> bool:
    """True if the file or any directory above it could be changed by a non-root user.

    The sticky-bit pardon applies to directories above the script only: a
    script that is itself world-writable (even ``/tmp``) is unsafe.
    """
    current = path
    while True:
        info = files.file_info(current)
        if info is not None and is_unsafe(info):
            return True
        if current == path and info is not None and info.mode & stat.S_IWOTH:
            return True
        parent = os.path.dirname(current)
        if parent == current or not parent:
            return False
        current = parent


def needs_protection(uid: int, gid: int, info: FileInfo | None) -> bool:
    """Whether keepalived checks the script's path: it runs with uid 0 or gid 0, or is set-id root.

    Verified on 2.2.7: ``script_user nobody root`` (gid 0) disables a script in
    a world-writable directory just as ``root`` does; ``nobody`` alone runs it.
    """
    if uid == 0 or gid == 0:
        return True
    if info is None:
        return False
    set_id = info.mode & (stat.S_ISUID | stat.S_ISGID)
    return bool(set_id) and (info.uid == 0 or info.gid == 0)
