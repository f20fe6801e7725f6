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
thread uses it later.  That is how a service inside ``net_namespace`` still
reaches its bus where it was started: ``Home`` keeps one thread in the
namespace the process began in, and the NATS connection's socket is made and
connected there (``shared/bus/connect.py``); keepalived has no bus, so this is
lifeline's own part.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

CLONE_NEWNET = 0x40000000
NETNS_RUN = Path("/run/netns")
INIT_NETNS = Path("/proc/1/ns/net")

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


class NamespaceError(OSError):
    """A namespace that cannot be opened or joined; the message names it (and no errno prefix)."""

    def __str__(self) -> str:
        return str(self.strerror)


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


class Home:
    """A thread left in the namespace the process started in: connections to the bus are made there.

    Create it *before* the main thread enters another namespace: its one worker
    thread starts at once and stays where it was born.
    """

    def __init__(self) -> None:
        self.namespace = current_id()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="netns-home")
        self._executor.submit(current_id).result()  # the thread exists now, in this namespace

    async def open_connection(
        self, host: str, port: int, *, limit: int, timeout: float
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """``asyncio.open_connection`` whose socket is resolved, made and connected in the home namespace."""
        loop = asyncio.get_running_loop()
        sock = await loop.run_in_executor(self._executor, _connect, host, port, timeout)
        return await asyncio.open_connection(sock=sock, limit=limit)


def _connect(host: str, port: int, timeout: float) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setblocking(False)
    return sock


_HOME: list[Home] = []


def keep_home() -> Home:
    """Remember where this process started (once); ``home()`` returns it from then on."""
    if not _HOME:
        _HOME.append(Home())
    return _HOME[0]


def home_namespace() -> str:
    """``net:[inode]`` of the start namespace, for logs ("" if the process never moved)."""
    found = home()
    return found.namespace if found is not None else ""


def home() -> Home | None:
    """The start namespace's thread, if the process moved away from it (``net_namespace``)."""
    return _HOME[0] if _HOME else None
