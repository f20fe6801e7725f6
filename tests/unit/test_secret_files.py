"""Secret files: a private directory, no symlink followed, nothing readable by others trusted.

Real files in a temporary directory; ownership cases use ``chown`` (the suite
runs as root) and skip otherwise.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from shared.secret_files import (
    SecretFileError,
    check_secret,
    ensure_private_dir,
    format_env,
    parse_env,
    read_secret,
    write_secret,
)

NOBODY = 65534


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_private_dir_is_created_0700_with_its_parents(tmp_path: Path) -> None:
    store = tmp_path / "a" / "store"
    assert ensure_private_dir(store) == store
    assert mode(store) == 0o700
    assert ensure_private_dir(store) == store  # again: it exists and is ours


def test_an_existing_0755_dir_is_accepted_a_writable_one_is_not(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir(mode=0o755)
    store.chmod(0o755)
    ensure_private_dir(store)
    for bad in (0o775, 0o757, 0o777):
        store.chmod(bad)
        with pytest.raises(SecretFileError, match=f"writable by group or others \\(mode {bad:04o}\\)"):
            ensure_private_dir(store)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_a_dir_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir(mode=0o700)
    os.chown(store, NOBODY, NOBODY)
    with pytest.raises(SecretFileError, match=f"owned by uid {NOBODY}"):
        ensure_private_dir(store)


def test_a_symlinked_dir_or_a_file_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(SecretFileError, match="symbolic link"):
        ensure_private_dir(tmp_path / "link")
    (tmp_path / "file").write_text("")
    with pytest.raises(SecretFileError, match="not a directory"):
        ensure_private_dir(tmp_path / "file")


def test_write_secret_is_0600_atomic_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "users.env"
    write_secret(path, "A=1\n")
    assert mode(path) == 0o600 and path.read_text() == "A=1\n"
    inode = path.stat().st_ino
    write_secret(path, "A=2\n")
    assert path.read_text() == "A=2\n" and mode(path) == 0o600
    assert path.stat().st_ino != inode  # a new file renamed over the old one, not rewritten in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["users.env"]
    assert read_secret(path) == "A=2\n" and read_secret(tmp_path / "absent") is None


def test_a_planted_symlink_is_never_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    victim.chmod(0o600)
    link = tmp_path / "users.env"
    link.symlink_to(victim)
    with pytest.raises(SecretFileError, match="symbolic link"):
        read_secret(link)
    with pytest.raises(SecretFileError, match="symbolic link"):
        write_secret(link, "A=stolen\n")
    with pytest.raises(SecretFileError, match="symbolic link"):
        check_secret(link)
    assert victim.read_text() == "precious" and link.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["users.env", "victim"]


def test_a_secret_readable_by_others_is_refused_not_reused(tmp_path: Path) -> None:
    path = tmp_path / "users.env"
    path.write_text("A=leaked\n")
    path.chmod(0o644)
    for use in (read_secret, check_secret, lambda p: write_secret(p, "A=new\n")):
        with pytest.raises(SecretFileError, match=r"mode 0644.*may have leaked.*chmod 600"):
            use(path)
    assert path.read_text() == "A=leaked\n"
    path.chmod(0o600)  # the operator's decision: it did not leak
    assert read_secret(path) == "A=leaked\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_a_secret_of_another_user_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "users.env"
    path.write_text("A=1\n")
    path.chmod(0o600)
    os.chown(path, NOBODY, NOBODY)
    with pytest.raises(SecretFileError, match=f"owned by uid {NOBODY}"):
        read_secret(path)


def test_a_fifo_or_device_is_not_a_secret_file(tmp_path: Path) -> None:
    """What ``-o /dev/null`` would be: refused, never replaced (a FIFO stands in for the device here)."""
    fifo = tmp_path / "out"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(SecretFileError, match="not a regular file"):
        write_secret(fifo, "x")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_env_lines_round_trip() -> None:
    values = {"LIFELINE_NATS_PASSWORD_ADMIN": "Abc-_x", "B": "a=b"}
    assert parse_env(format_env(values)) == values
    assert parse_env("# comment\n\nA=1\nA=2\nnot a line\n") == {"A": "2"}
