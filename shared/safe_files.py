"""Files a root service creates or rewrites, without being steered by symlinks or swapped files.

Why: the services run as root and write to paths that other users may reach
(``notify_fifo /tmp/keepalived.fifo``, a state file, a ``track_file``).  Going
by path, a symlink planted there makes root create, chown or overwrite a file
elsewhere (a FIFO sink that chowned by path gave a root-owned file to
``nobody``).  Every helper here:

* refuses a symlink as the final component (``O_NOFOLLOW``, a clear
  ``UnsafeFile`` instead of ``ELOOP``), and checks what it opened with
  ``fstat`` on the descriptor, not with a second look at the path;
* changes mode and owner on the descriptor (``fchmod``/``fchown``), never by path;
* works inside a checked directory (:func:`open_directory`): a real
  directory, owned by root or by us, and not writable by others unless
  sticky (``/tmp``: others can neither rename nor delete our files there);
  files are created and renamed relative to that directory's descriptor, so
  the directory cannot be swapped between the check and the use.  Directories
  above it are followed as the operator wrote them (``/var/run`` is a symlink).

What it offers: :func:`open_directory`, :func:`open_nofollow`,
:func:`write_atomic` (state and secrets: a temporary file created
``O_EXCL|O_NOFOLLOW`` in the same directory, written, fsynced, given its mode
and renamed over the name, so readers see the old or the new file whole),
:func:`read_regular` (a bounded read of a regular file, no symlink),
:func:`rewrite_in_place` (a file others keep writing to, such as a
``track_file``: its inode and owner are kept), and :func:`open_fifo`.
Unit tests: ``tests/unit/test_safe_files.py``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from pathlib import Path

_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY


class UnsafeFile(OSError):
    """A path refused for safety (a symlink, a foreign file, an unsafe directory); says which and why."""

    def __init__(self, path: str | os.PathLike[str], why: str) -> None:
        super().__init__(errno.EPERM, f"{os.fspath(path)}: {why}")
        self.path = os.fspath(path)
        self.why = why

    def __str__(self) -> str:
        return f"{self.path}: {self.why}"


def _trusted_owner(uid: int) -> bool:
    return uid in (0, os.geteuid())


def _check_directory(fd: int, path: str) -> None:
    st = os.fstat(fd)
    if not _trusted_owner(st.st_uid):
        raise UnsafeFile(path, f"directory owned by uid {st.st_uid}, not by root or us")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not st.st_mode & stat.S_ISVTX:
        raise UnsafeFile(path, "directory writable by others and not sticky: a file there could be swapped")


def open_directory(path: str | os.PathLike[str], *, create_mode: int | None = None) -> int:
    """A descriptor of the directory ``path`` once it is known safe to create files in (caller closes it).

    ``create_mode``: make it (and missing parents) if absent, with this mode.
    """
    name = os.fspath(path)
    if create_mode is not None and not os.path.lexists(name):
        with contextlib.suppress(FileExistsError):
            os.makedirs(name, mode=create_mode)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR) and os.path.islink(name):
            raise UnsafeFile(name, "is a symbolic link, not a directory") from None
        raise
    try:
        _check_directory(fd, name)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_nofollow(
    path: str | os.PathLike[str], flags: int, mode: int = 0o600, *, dir_fd: int | None = None
) -> int:
    """``os.open`` that never follows a symlink in the last component: ``UnsafeFile`` says so."""
    try:
        return os.open(path, flags | _NOFOLLOW, mode, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeFile(path, "is a symbolic link (not followed)") from None
        raise


def _split(path: str | os.PathLike[str]) -> tuple[str, str]:
    full = Path(os.fspath(path))
    if not full.name:
        raise UnsafeFile(full, "names no file")
    return str(full.parent), full.name


def write_atomic(
    path: str | os.PathLike[str], data: bytes, *, mode: int = 0o600, dir_mode: int | None = 0o755
) -> None:
    """Replace ``path`` with ``data`` whole: temporary file, fsync, mode, rename (never through a symlink).

    ``dir_mode``: create the directory if missing (None: it must exist).
    A symlink at ``path`` is replaced, not followed (rename never follows).
    """
    parent, name = _split(path)
    dfd = open_directory(parent, create_mode=dir_mode)
    try:
        tmp = f".{name}.{secrets.token_hex(8)}.tmp"
        fd = open_nofollow(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode, dir_fd=dfd)
        try:
            os.fchmod(fd, mode)  # the umask narrowed the create mode; the mode is exact
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            os.unlink(tmp, dir_fd=dfd)
            raise
        os.close(fd)
        try:
            os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        except BaseException:
            os.unlink(tmp, dir_fd=dfd)
            raise
        os.fsync(dfd)
    finally:
        os.close(dfd)


def read_regular(path: str | os.PathLike[str], limit: int = 16 << 20) -> bytes:
    """The bytes of the regular file ``path`` (no symlink, no FIFO or device), at most ``limit``."""
    fd = open_nofollow(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsafeFile(path, "is not a regular file")
        parts: list[bytes] = []
        got = 0
        while got <= limit and (chunk := os.read(fd, limit + 1 - got)):
            parts.append(chunk)
            got += len(chunk)
        data = b"".join(parts)
        if len(data) > limit:
            raise UnsafeFile(path, f"is larger than {limit} bytes")
        return data
    finally:
        os.close(fd)


def rewrite_in_place(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o644) -> None:
    """Create ``path`` or overwrite it keeping its inode, owner and mode (others keep writing to it).

    Refused: a symlink, anything but a regular file, a file with other hard
    links (a link to a file elsewhere), and a file in an unsafe directory.
    """
    parent, name = _split(path)
    dfd = open_directory(parent)
    try:
        fd = open_nofollow(name, os.O_WRONLY | os.O_CREAT | os.O_NONBLOCK, mode, dir_fd=dfd)
    finally:
        os.close(dfd)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeFile(path, "is not a regular file")
        if st.st_nlink != 1:
            raise UnsafeFile(path, f"has {st.st_nlink} hard links (one may be a file elsewhere)")
        os.ftruncate(fd, 0)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def open_fifo(
    path: str | os.PathLike[str], *, mode: int = 0o644, owner: tuple[int, int] | None = None
) -> int:
    """Create the FIFO if missing and open it ``O_RDWR|O_NONBLOCK`` (never blocks), owned and moded by fd.

    A new FIFO gets exactly ``mode``; with ``owner`` (uid, gid) the FIFO is
    given to them.  An existing one is used only if it really is a FIFO (not
    a symlink, not a regular file) owned by root, by us or by ``owner``: one
    that someone else made could be read by them.
    """
    parent, name = _split(path)
    dfd = open_directory(parent)
    try:
        created = True
        try:
            os.mkfifo(name, mode, dir_fd=dfd)  # never follows: a symlink there is EEXIST
        except FileExistsError:
            created = False
        fd = open_nofollow(name, os.O_RDWR | os.O_NONBLOCK, dir_fd=dfd)
    finally:
        os.close(dfd)
    try:
        st = os.fstat(fd)
        if not stat.S_ISFIFO(st.st_mode):
            raise UnsafeFile(path, "exists and is not a FIFO")
        if not created and not (_trusted_owner(st.st_uid) or (owner is not None and st.st_uid == owner[0])):
            raise UnsafeFile(
                path,
                f"FIFO made by uid {st.st_uid}, not by root, us or its configured user"
                " (remove it, or name its owner as the FIFO's user)",
            )
        if created:
            os.fchmod(fd, mode)  # mkfifo applied the umask; keepalived's mode is exact
        if owner is not None:
            os.fchown(fd, *owner)
    except BaseException:
        os.close(fd)
        raise
    return fd
