"""Network namespaces: names a crashed run can be swept by, ``ip``, running things inside, cleanup.

Why namespaces: the lab runs real daemons (keepalived, our services) that
look at interfaces, send raw packets and resolve names.  A namespace gives
each of them a private, reproducible host: only the interfaces the lab made
exist, and ``/etc/netns/NAME/hosts`` gives it its own name resolution.
Everything here drives ``ip`` (iproute2) as an operator would, so every step
can be replayed by hand.

Design rules:

* Names are ``<prefix>-<pid36>-<n36>-<role>``: unique per process and per
  :class:`Lab`, so parallel test workers, benchmarks and demos never collide,
  and a crashed run's namespaces are recognised by their dead pid and swept
  by :func:`remove_stale`.  Tests and benchmarks use :data:`TEST_PREFIX`, the
  demo :data:`DEMO_PREFIX`, so the two sweeps never meet.
* Nothing is left in the root namespace: veth pairs are created with both
  ends already inside lab namespaces and bridges live in a "switch"
  namespace, so deleting the namespaces deletes every link and address.
* Cleanup always runs (:class:`Lab` is a context manager): every process
  still inside is killed, then the namespaces are deleted.

Standard library only (``setns`` through libc): the in-VM tests use this
under emulation, where importing pyroute2 would cost seconds.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar, cast

from shared.lab.errors import LabError

TEST_PREFIX = "llt"
"""Namespaces of tests and benchmarks; the test session's sweep removes a crashed run's."""
DEMO_PREFIX = "lld"
"""Namespaces of ``lifeline demo``; each demo sweeps a crashed demo's."""

IFNAME = "eth0"
"""A lab host's interface: the name keepalived.conf examples use."""
IFNAMSIZ_MAX = 15
NETNS_RUN = Path("/run/netns")
NETNS_ETC = Path("/etc/netns")
CLONE_NEWNET = 0x40000000
IP_TIMEOUT = 30.0
"""Seconds for one ``ip`` command: generous, since it may wait for the RTNL lock on a busy machine."""

T = TypeVar("T")
_tags = itertools.count()
_libc = ctypes.CDLL(None, use_errno=True)


def ip(*args: str, timeout: float = IP_TIMEOUT) -> str:
    """Run ``ip ARGS`` and return stdout; raise :class:`LabError` with stderr on failure."""
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise LabError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def b36(number: int) -> str:
    """Base 36 keeps pids short in names."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out


def new_tag() -> str:
    """``<pid36>-<n36>``: this process's next lab; names starting ``<prefix>-<pid36>-`` are this process's."""
    return f"{b36(os.getpid())}-{b36(next(_tags))}"


def owned_by(pid: int, prefix: str) -> Callable[[str], bool]:
    """Does a namespace name belong to a lab of process ``pid``?"""
    return lambda name: name.startswith(f"{prefix}-{b36(pid)}-")


def check_ifname(name: str) -> str:
    """Fail early and clearly rather than with a cryptic netlink error."""
    if not name or len(name) > IFNAMSIZ_MAX or "/" in name or name.strip() != name:
        raise ValueError(f"invalid interface name {name!r} (1..{IFNAMSIZ_MAX} chars, no '/' or spaces)")
    return name


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def list_namespaces() -> list[str]:
    """Names of every network namespace (``ip netns list``, without the ``(id: N)`` suffix)."""
    return [line.split()[0] for line in ip("netns", "list").splitlines() if line.strip()]


def namespace_pids(ns: str, timeout: float = IP_TIMEOUT) -> list[int]:
    """Pids of every process living in ``ns`` (in a lab namespace: only what the lab started)."""
    try:
        return [int(p) for p in ip("netns", "pids", ns, timeout=timeout).split()]
    except LabError:
        return []


def kill_namespace_processes(namespaces: Sequence[str], grace: float = 0.0) -> None:
    """Kill every process in ``namespaces``: SIGTERM and up to ``grace`` s to go first, if ``grace``.

    SIGTERM first gives daemons their goodbye (the vrrp service drops its
    VIPs, nats-server flushes); SIGKILL makes cleanup certain and quick.
    """
    signals = (signal.SIGTERM, signal.SIGKILL) if grace > 0 else (signal.SIGKILL,)
    deadline = time.monotonic() + grace
    for sig in signals:
        pids = [pid for ns in namespaces for pid in namespace_pids(ns)]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        while sig == signal.SIGTERM and pids and time.monotonic() < deadline:
            time.sleep(0.05)
            pids = [pid for ns in namespaces for pid in namespace_pids(ns)]


def delete_namespaces(namespaces: Sequence[str], grace: float = 0.0) -> None:
    """Kill what runs inside, then delete each namespace and its ``/etc/netns`` directory; missing is fine."""
    kill_namespace_processes(namespaces, grace)
    for ns in namespaces:
        with contextlib.suppress(LabError, subprocess.TimeoutExpired):
            ip("netns", "delete", ns)
        shutil.rmtree(NETNS_ETC / ns, ignore_errors=True)


def remove_stale(prefix: str = TEST_PREFIX) -> list[str]:
    """Delete namespaces named ``prefix-<pid36>-…`` whose creating process is gone (a crashed run).

    A live process's namespaces are left alone, so calling this while another
    test worker, benchmark or demo runs is safe.
    """
    pattern = re.compile(rf"^{re.escape(prefix)}-(?P<pid>[0-9a-z]+)-")

    def stale(name: str) -> bool:
        match = pattern.match(name)
        return match is not None and not _pid_alive(int(match["pid"], 36))

    gone = [name for name in list_namespaces() if stale(name)]
    delete_namespaces(gone)
    if NETNS_ETC.is_dir():
        for leftover in NETNS_ETC.glob(f"{prefix}-*"):
            if stale(leftover.name):
                shutil.rmtree(leftover, ignore_errors=True)
    return gone


def _name(ns: Namespace | str) -> str:
    return ns.name if isinstance(ns, Namespace) else ns


def join_namespace(ns: Namespace | str) -> None:
    """Move the *calling thread* into ``ns`` (namespace membership is per thread on Linux).

    Sockets created by this thread afterwards belong to ``ns`` for life; call
    it only in a thread dedicated to that namespace.
    """
    fd = os.open(NETNS_RUN / _name(ns), os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns({_name(ns)}): {os.strerror(errno)}")
    finally:
        os.close(fd)


def in_namespace(ns: Namespace | str, fn: Callable[[], T], timeout: float = 10.0) -> T:
    """Run ``fn()`` in a short-lived thread that joined ``ns``; its result or its exception.

    For what follows the *thread's* namespace: a plain ``socket.socket()``
    (it stays in ``ns`` when used from any thread later), ``if_nametoindex``.
    Product code that takes ``netns=NAME`` needs none of this.  No thread of
    the caller ever changes namespace.
    """
    box: dict[str, object] = {}

    def target() -> None:
        try:
            join_namespace(ns)
            box["result"] = fn()
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"netns-{_name(ns)}", daemon=True)
    thread.start()
    thread.join(timeout)
    if "error" in box:
        raise cast(BaseException, box["error"])
    if "result" not in box:
        raise LabError(f"in_namespace({_name(ns)}) did not finish in {timeout} s")
    return cast(T, box["result"])


def run_in_namespace(
    ns: Namespace | str,
    argv: Sequence[str | os.PathLike[str]],
    timeout: float = IP_TIMEOUT,
    *,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` inside ``ns`` to completion and capture its output.

    ``ip netns exec`` (not ``nsenter``) because it also bind-mounts
    ``/etc/netns/NS/*`` over ``/etc``, which is how a host gets its own
    ``hosts`` file.  ``ip`` execs the command, so the return code is the
    command's own (negative for a signal).  ``check``: raise :class:`LabError`
    with stderr on a non-zero status.
    """
    args = [os.fspath(arg) for arg in argv]
    proc = subprocess.run(
        ["ip", "netns", "exec", _name(ns), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
        env=dict(env) if env is not None else None,
    )
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(args)} in {_name(ns)}: {proc.stderr.strip()}")
    return proc


@dataclass(frozen=True)
class Namespace:
    """One network namespace, configured from outside it (``ip -n NAME``)."""

    name: str

    def ip(self, *args: str) -> str:
        """``ip -n NAME ARGS``."""
        return ip("-n", self.name, *args)

    def run(
        self,
        argv: Sequence[str | os.PathLike[str]],
        timeout: float = IP_TIMEOUT,
        *,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """:func:`run_in_namespace` here."""
        return run_in_namespace(self, argv, timeout, cwd=cwd, env=env, check=check)

    def link_up(self, ifname: str) -> None:
        self.ip("link", "set", check_ifname(ifname), "up")

    def add_address(self, ifname: str, cidr: str) -> None:
        self.ip("addr", "add", cidr, "dev", check_ifname(ifname))

    def interfaces(self) -> list[str]:
        """Interface names as seen inside (``eth0@if12`` is reported as ``eth0``)."""
        out = self.ip("-o", "link", "show")
        return [line.split(":", 2)[1].strip().split("@", 1)[0] for line in out.splitlines()]

    def addr_info(self, dev: str | None) -> list[dict[str, object]]:
        """The ``addr_info`` entries of ``ip -j addr show [dev DEV]`` (None: every interface)."""
        where = ("dev", dev) if dev is not None else ()
        data = json.loads(self.ip("-j", "addr", "show", *where))
        return [info for entry in data for info in entry.get("addr_info", [])]

    def addresses(self, dev: str | None) -> set[str]:
        """The addresses on ``dev`` (None: on every interface), as the kernel reports them."""
        return {str(info["local"]) for info in self.addr_info(dev)}

    def set_hosts(self, names: Mapping[str, str]) -> Path:
        """Give this namespace its own ``/etc/hosts`` (name -> address), localhost included.

        ``ip netns exec`` bind-mounts ``/etc/netns/NAME/hosts`` over ``/etc/hosts``
        for the command it runs; an empty mapping still replaces the host's file,
        so no name leaks in from the machine the lab runs on.
        """
        directory = NETNS_ETC / self.name
        directory.mkdir(parents=True, exist_ok=True)
        lines = ["127.0.0.1 localhost", "::1 localhost", *(f"{addr} {name}" for name, addr in names.items())]
        path = directory / "hosts"
        path.write_text("\n".join(lines) + "\n")
        return path


@dataclass
class Lab:
    """Owns every namespace it creates and deletes them all on exit, whatever happened.

    ``with Lab() as lab: host = lab.host("a")``.  On exit (normal, exception
    or Ctrl-C) every process inside is killed (after a SIGTERM and ``grace``
    seconds, if ``grace``) and every namespace deleted.
    """

    prefix: str = TEST_PREFIX
    grace: float = 0.0
    """Seconds between SIGTERM and SIGKILL at close; 0: SIGKILL at once (quick and certain)."""
    tag: str = field(default_factory=new_tag)
    namespaces: list[Namespace] = field(default_factory=list)
    owner: int = field(default_factory=os.getpid)

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Kill every process inside, delete the namespaces (newest first); never raises.

        Only the creating process cleans up: a forked child that unwinds this
        stack by accident (a library's helper process hit by a signal) must
        not tear the lab down under its parent.
        """
        if os.getpid() != self.owner:
            return
        names = [ns.name for ns in reversed(self.namespaces)]
        self.namespaces = []
        delete_namespaces(names, self.grace)

    def namespace(self, role: str) -> Namespace:
        """A new empty namespace ``<prefix>-<tag>-<role>`` with ``lo`` up (many daemons misbehave without)."""
        taken = {ns.name for ns in self.namespaces}
        name = f"{self.prefix}-{self.tag}-{role}"
        for n in itertools.count(2):
            if name not in taken:
                break
            name = f"{self.prefix}-{self.tag}-{role}{n}"
        ip("netns", "add", name)
        ns = Namespace(name)
        self.namespaces.append(ns)
        ns.link_up("lo")
        return ns

    def veth(self, a: Namespace, a_if: str, b: Namespace, b_if: str, *, up: bool = False) -> None:
        """A veth pair created with its ends already in ``a`` and ``b`` (never in the root namespace).

        Created from inside ``a``: a kernel such as Debian's 6.1 checks the
        first end's name in the namespace the request comes from, so asking
        from the root namespace fails when it has an interface of that name
        (the kernel VM's ``eth0``).
        """
        a.ip(
            "link", "add", check_ifname(a_if), "type", "veth",
            "peer", "name", check_ifname(b_if), "netns", b.name,
        )  # fmt: skip
        if up:
            a.link_up(a_if)
            b.link_up(b_if)

    def bridge(self, ns: Namespace, name: str = "br0") -> str:
        """A Linux bridge inside ``ns``, up, multicast snooping off (flooding never waits on IGMP/MLD)."""
        ns.ip("link", "add", check_ifname(name), "type", "bridge", "mcast_snooping", "0")
        ns.link_up(name)
        return name

    def host(self, role: str, ifname: str = IFNAME, *, up: bool = False) -> Namespace:
        """A namespace with only ``lo`` (up) and ``ifname`` (a veth, down unless ``up``).

        The veth's peer is parked in a namespace of its own so interface
        lookups inside the host see exactly ``lo`` and ``ifname``.
        """
        host = self.namespace(role)
        peer = self.namespace(f"{role}p")
        self.veth(host, ifname, peer, "peer0", up=up)
        return host
