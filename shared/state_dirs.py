"""Directories under ``state_dir`` that several services write, made the same way by whoever comes first.

Why one helper: the durable outboxes, the notify claims and ``lifeline up``
all create folders in the node's state directory, from processes with
different users (the notifier runs as ``lifeline``; vrrp as root without
``CAP_DAC_OVERRIDE`` or ``CAP_CHOWN``, in the ``lifeline`` group).  A folder
one of them makes must stay writable by the others: it gets an explicit mode
(not the umask's) and the owner and group of the nearest folder that existed,
as far as this process may give them.
"""

from __future__ import annotations

import os
from pathlib import Path

SHARED_DIR_MODE = 0o2770
"""Group-writable, setgid (what is made inside keeps the group), nothing for others."""


def make_shared_dirs(path: Path, mode: int = SHARED_DIR_MODE) -> None:
    """Create ``path`` and its missing parents with ``mode``, owned like the nearest existing parent."""
    missing: list[Path] = []
    existing = path
    while not existing.exists():
        missing.append(existing)
        existing = existing.parent
    owner = existing.stat()
    for directory in reversed(missing):
        try:
            directory.mkdir()
        except FileExistsError:
            continue  # another service made it meanwhile: its mode and owner stand
        os.chmod(directory, mode)
        _give(directory, owner.st_uid, owner.st_gid)


def _give(folder: Path, uid: int, gid: int) -> None:
    """Owner and group if we may (root with ``CAP_CHOWN``), else the group (a member may), else nothing."""
    for owner in (uid, -1):
        try:
            os.chown(folder, owner, gid)
            return
        except PermissionError:
            continue


__all__ = ["SHARED_DIR_MODE", "make_shared_dirs"]
