"""Network namespaces by name, as keepalived names them: ``/run/netns/NAME`` (what ``ip netns add`` makes).

Two uses, both keepalived's (``core/namespaces.c``):

* ``net_namespace NAME``: the whole service runs in the namespace; the runner
  moves its main thread there before the service opens anything (``enter``).
  Namespace membership is per thread on Linux, and a new thread starts in its
  creator's namespace, so every thread and socket the service makes from then
  on is inside.
* ``net_namespace_ipvs [NAME]``: only the IPVS socket lives elsewhere;
  ``socket_in`` creates a socket in another namespace from a short-lived
  thread, so no thread of the caller ever changes namespace.  A bare keyword
  (``""``) is the namespace of process 1, keepalived's "default" namespace.

A socket belongs to the namespace it was created in for life, whichever
thread uses it later.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import socket
import threading
from pathlib import Path

CLONE_NEWNET = 0x40000000
NETNS_RUN = Path("/run/netns")
INIT_NETNS = Path("/proc/1/ns/net")

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


class NamespaceError(OSError):
    """A namespace that cannot be opened or joined; the message names it."""


def path_of(name: str) -> Path:
    """``NAME`` → ``/run/netns/NAME``; ``""`` → process 1's (keepalived's bare ``net_namespace_ipvs``)."""
    if not name:
        return INIT_NETNS
    if "/" in name or name in (".", ".."):
        raise NamespaceError(0, f"network namespace {name!r}: a name, not a path")
    return NETNS_RUN / name


def enter(name: str) -> None:
    """Move the *calling thread* into namespace ``name`` (the runner's main thread, before others exist)."""
    path = path_of(name)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise NamespaceError(
            exc.errno or 0, f"network namespace {name!r}: cannot open {path}: {exc.strerror}"
        ) from None
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise NamespaceError(err, f"network namespace {name!r}: setns: {os.strerror(err)}")
    finally:
        os.close(fd)


def current_id() -> str:
    """This thread's namespace, as ``net:[inode]`` (what ``readlink /proc/self/ns/net`` says)."""
    return os.readlink(f"/proc/self/task/{threading.get_native_id()}/ns/net")


def socket_in(name: str, family: int, kind: int, proto: int = 0) -> socket.socket:
    """A socket created inside namespace ``name`` by a helper thread; the caller's thread stays put."""
    made: list[socket.socket] = []
    failed: list[OSError] = []

    def target() -> None:
        try:
            enter(name)
            made.append(socket.socket(family, kind, proto))
        except OSError as exc:
            failed.append(exc)

    thread = threading.Thread(target=target, name=f"netns-{name or 'init'}", daemon=True)
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
    return made[0]
