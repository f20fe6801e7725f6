"""Files that hold passwords: a private directory, reads that trust nothing, writes that never follow a link.

Why so careful: ``lifeline up`` keeps every NATS password of a node in its
store directory (``users.env``, ``admin.toml``, ``nats-server.conf``), and the
generator writes the same secrets to paths an operator names.  Three attacks
are shut out here:

- *another user's directory* (or one anybody may write to): they could read
  the files or swap them; the directory must be ours and not group/world-writable;
- *a planted symlink* (``users.env -> /etc/shadow``, or to a file the attacker
  reads): a secret is never read through a link, never written through one:
  the new content goes to a fresh temporary file (``O_CREAT|O_EXCL|O_NOFOLLOW``,
  mode 0600, in the same directory) that is renamed over the name, and a rename
  replaces a link instead of following it;
- *a secret that was readable by others* (mode 0644 from an old version or a
  careless copy): it may have leaked, so it is refused, not silently fixed and
  reused; the message says how to go on (``chmod 600`` if you know it has not
  leaked, or delete it to get new passwords).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from shared.safe_files import write_atomic

PRIVATE_DIR_MODE = 0o700
SECRET_MODE = 0o600


class SecretFileError(OSError):
    """A secret file or its directory is unsafe to use; the message names the path and the remedy."""


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (mode 0700) if missing; refuse it unless it is a real directory we may trust.

    Trusted: owned by the effective user, not writable by group or others,
    and not a symlink.  Missing parents are created with the default mode.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir(mode=PRIVATE_DIR_MODE)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise SecretFileError(f"{path}: is a symbolic link; refusing to keep secrets behind it")
    if not stat.S_ISDIR(st.st_mode):
        raise SecretFileError(f"{path}: not a directory")
    if st.st_uid != os.geteuid():
        raise SecretFileError(f"{path}: owned by uid {st.st_uid}, not by us (uid {os.geteuid()})")
    if st.st_mode & 0o022:
        raise SecretFileError(
            f"{path}: writable by group or others (mode {stat.S_IMODE(st.st_mode):04o}); chmod 700 it"
        )
    return path


def check_secret(path: Path) -> bool:
    """True if ``path`` is a safe secret file, False if absent; :class:`SecretFileError` if unsafe."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    _check_stat(path, st)
    return True


def read_secret(path: Path) -> str | None:
    """The text of the secret file ``path`` (None if absent), opened without following a link."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if os.path.islink(path):
            raise SecretFileError(f"{path}: is a symbolic link; refusing to read a secret via it") from exc
        raise
    with os.fdopen(fd, encoding="utf-8") as fh:
        _check_stat(path, os.fstat(fh.fileno()))
        return fh.read()


def write_secret(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``, mode 0600 from the first byte, atomically, never through a link.

    An existing ``path`` must itself be a safe secret (:func:`check_secret`):
    a link, another user's file or one readable by others is refused.  The
    write itself is ``shared.safe_files.write_atomic`` (fresh ``O_EXCL|O_NOFOLLOW``
    temporary file in the same directory, fsync, rename, directory fsync).
    """
    check_secret(path)
    write_atomic(path, text.encode("utf-8"), mode=SECRET_MODE, dir_mode=None)


def _check_stat(path: Path, st: os.stat_result) -> None:
    if stat.S_ISLNK(st.st_mode):
        raise SecretFileError(f"{path}: is a symbolic link; refusing to use it for a secret")
    if not stat.S_ISREG(st.st_mode):
        raise SecretFileError(f"{path}: not a regular file")
    if st.st_uid != os.geteuid():
        raise SecretFileError(f"{path}: owned by uid {st.st_uid}, not by us (uid {os.geteuid()})")
    if st.st_mode & 0o077:
        raise SecretFileError(
            f"{path}: readable or writable by others (mode {stat.S_IMODE(st.st_mode):04o}), so its "
            "passwords may have leaked: delete it to generate new ones, or chmod 600 it if you know "
            "nobody read it"
        )


def parse_env(text: str) -> dict[str, str]:
    """``VAR=value`` lines (blank lines and ``#`` comments skipped; a later line wins), as in .env files."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        var, _, value = line.partition("=")
        out[var.strip()] = value.strip()
    return out


def format_env(values: dict[str, str]) -> str:
    """The inverse of :func:`parse_env`: one ``VAR=value`` line each, in order."""
    return "".join(f"{var}={value}\n" for var, value in values.items())
