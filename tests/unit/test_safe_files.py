"""shared/safe_files.py: no symlink followed, modes and owners set on descriptors, unsafe directories refused.

Each attack is planted for real in a temporary directory: a symlink where
the file belongs, pointing at a file that must stay untouched; a hard link;
a FIFO where a regular file is expected; a directory others may write.  The
ownership cases need root (to give a file away), and are skipped without it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.safe_files import (
    UnsafeFile,
    open_directory,
    open_fifo,
    read_regular,
    rewrite_in_place,
    write_atomic,
)

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
NOBODY = 65534


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A file elsewhere that an attacker would like us to write, chown or chmod."""
    other = tmp_path / "elsewhere"
    other.mkdir()
    target = other / "precious"
    target.write_bytes(b"precious\n")
    target.chmod(0o600)
    return target


@pytest.fixture
def umask_077() -> Iterator[None]:
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def unchanged(target: Path, content: bytes = b"precious\n", mode: int = 0o600) -> None:
    st = os.lstat(target)
    assert (stat.S_IMODE(st.st_mode), st.st_uid, target.read_bytes()) == (mode, os.geteuid(), content)


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


# --------------------------------------------------------------------------- write_atomic


def test_write_atomic_creates_with_the_exact_mode(tmp_path: Path, umask_077: None) -> None:
    path = tmp_path / "state.json"
    write_atomic(path, b"one", mode=0o640)
    assert path.read_bytes() == b"one" and stat.S_IMODE(path.stat().st_mode) == 0o640
    write_atomic(path, b"two")
    assert path.read_bytes() == b"two" and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert leftovers(tmp_path) == []


def test_write_atomic_replaces_a_planted_symlink_and_leaves_its_target_alone(
    tmp_path: Path, victim: Path
) -> None:
    path = tmp_path / "state.json"
    path.symlink_to(victim)
    write_atomic(path, b"state")
    assert not path.is_symlink() and path.read_bytes() == b"state"
    unchanged(victim)


def test_write_atomic_tightens_an_old_world_readable_file(tmp_path: Path) -> None:
    """The secrets case: a 0644 file left from before becomes 0600 (O_CREAT's mode would not change it)."""
    path = tmp_path / "nats.conf"
    path.write_text("old")
    path.chmod(0o644)
    write_atomic(path, b"secret", mode=0o600)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_write_atomic_makes_a_missing_directory(tmp_path: Path, umask_077: None) -> None:
    path = tmp_path / "run" / "lifeline" / "lvs-a.json"
    write_atomic(path, b"[]", dir_mode=0o755)
    assert path.read_bytes() == b"[]"
    with pytest.raises(FileNotFoundError):
        write_atomic(tmp_path / "absent" / "x", b"", dir_mode=None)


def test_a_symlinked_directory_is_refused(tmp_path: Path, victim: Path) -> None:
    (tmp_path / "run").symlink_to(victim.parent)
    with pytest.raises(UnsafeFile, match="symbolic link, not a directory"):
        write_atomic(tmp_path / "run" / "state.json", b"x")
    assert sorted(p.name for p in victim.parent.iterdir()) == ["precious"]


def test_a_directory_others_may_write_is_refused_unless_sticky(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(UnsafeFile, match="writable by others and not sticky"):
        write_atomic(shared / "state.json", b"x")
    shared.chmod(0o1777)  # like /tmp: others can neither rename nor delete our files
    write_atomic(shared / "state.json", b"x")
    assert (shared / "state.json").read_bytes() == b"x"


@root_only
def test_a_directory_owned_by_someone_else_is_refused(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, NOBODY, NOBODY)
    with pytest.raises(UnsafeFile, match=f"owned by uid {NOBODY}"):
        open_directory(theirs)


# --------------------------------------------------------------------------- read_regular


def test_read_regular_refuses_a_symlink_a_fifo_and_too_much(tmp_path: Path, victim: Path) -> None:
    (tmp_path / "link").symlink_to(victim)
    with pytest.raises(UnsafeFile, match="symbolic link"):
        read_regular(tmp_path / "link")
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(UnsafeFile, match="not a regular file"):
        read_regular(tmp_path / "pipe")  # O_NONBLOCK: no writer needed to get this answer
    (tmp_path / "big").write_bytes(b"x" * 101)
    with pytest.raises(UnsafeFile, match="larger than 100 bytes"):
        read_regular(tmp_path / "big", limit=100)
    assert read_regular(victim) == b"precious\n"


# --------------------------------------------------------------------------- rewrite_in_place


def test_rewrite_in_place_keeps_inode_and_mode(tmp_path: Path, umask_077: None) -> None:
    path = tmp_path / "track"
    rewrite_in_place(path, b"0\n", mode=0o644)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # created: the umask applies, as with fopen
    path.chmod(0o664)
    inode = path.stat().st_ino
    rewrite_in_place(path, b"-10\n")
    assert (path.read_bytes(), path.stat().st_ino, stat.S_IMODE(path.stat().st_mode)) == (
        b"-10\n",
        inode,
        0o664,
    )


def test_rewrite_in_place_refuses_symlinks_and_hard_links(tmp_path: Path, victim: Path) -> None:
    (tmp_path / "track").symlink_to(victim)
    with pytest.raises(UnsafeFile, match="symbolic link"):
        rewrite_in_place(tmp_path / "track", b"0\n")
    os.link(victim, tmp_path / "hard")
    with pytest.raises(UnsafeFile, match="2 hard links"):
        rewrite_in_place(tmp_path / "hard", b"0\n")
    unchanged(victim)


# --------------------------------------------------------------------------- open_fifo


def test_open_fifo_creates_a_fifo_with_the_exact_mode(tmp_path: Path, umask_077: None) -> None:
    fd = open_fifo(tmp_path / "notify.fifo", mode=0o644)
    try:
        st = os.fstat(fd)
        assert stat.S_ISFIFO(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o644
        assert os.get_blocking(fd) is False
    finally:
        os.close(fd)
    os.close(open_fifo(tmp_path / "notify.fifo"))  # an existing FIFO of ours is reused


def test_open_fifo_refuses_a_symlink_even_to_a_fifo(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    real = elsewhere / "root.fifo"
    os.mkfifo(real, 0o600)
    (tmp_path / "notify.fifo").symlink_to(real)
    with pytest.raises(UnsafeFile, match="symbolic link"):
        open_fifo(tmp_path / "notify.fifo", mode=0o666, owner=(os.geteuid(), os.getegid()))
    assert stat.S_IMODE(real.stat().st_mode) == 0o600


def test_open_fifo_refuses_a_regular_file(tmp_path: Path, victim: Path) -> None:
    with pytest.raises(UnsafeFile, match="not a FIFO"):
        open_fifo(victim)
    unchanged(victim)


@root_only
def test_open_fifo_gives_the_fifo_to_its_user_by_descriptor(tmp_path: Path) -> None:
    fd = open_fifo(tmp_path / "notify.fifo", owner=(NOBODY, NOBODY))
    os.close(fd)
    st = (tmp_path / "notify.fifo").stat()
    assert (st.st_uid, st.st_gid) == (NOBODY, NOBODY)
    os.close(open_fifo(tmp_path / "notify.fifo", owner=(NOBODY, NOBODY)))  # its user's FIFO: fine


@root_only
def test_open_fifo_refuses_a_fifo_someone_else_made(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "notify.fifo")
    os.chown(tmp_path / "notify.fifo", NOBODY, NOBODY)
    with pytest.raises(UnsafeFile, match=f"made by uid {NOBODY}"):
        open_fifo(tmp_path / "notify.fifo")
