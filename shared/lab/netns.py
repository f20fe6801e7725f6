"""A small network-namespace lab: hosts with an ``eth0`` on one bridge, always cleaned up.

Why it lives in ``shared/`` and not in ``tests/``: ``lifeline demo`` builds a
real two-node segment on the operator's machine, and product code must not
import the test tree.  It drives ``ip`` (iproute2) like an operator would, so
every step can be replayed by hand, and it leaves nothing in the root
namespace: the bridge lives in a "switch" namespace and each veth is created
with both ends already inside lab namespaces, so deleting the namespaces
deletes every link and every address.

Names are ``<prefix>-<pid36>-<n>-<role>``: unique per process and per lab, so
two labs (two demos, a demo and a test) never collide, and a crashed run's
namespaces are recognised by their dead pid and swept by
:func:`remove_stale`.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar, cast

from pyroute2 import netns as pr_netns

PREFIX = "lld"
"""Default name prefix (lifeline demo); tests use ``llt``, so the two sweeps never meet."""

IFNAME = "eth0"
BRIDGE = "br0"
STOP_GRACE = 2.0

T = TypeVar("T")
_counter = itertools.count()


class LabError(RuntimeError):
    """A lab step failed; carries the command's stderr so the failing step is obvious."""


def ip(*args: str, timeout: float = 10.0) -> str:
    """Run ``ip ARGS`` and return stdout; raise :class:`LabError` with stderr on failure."""
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise LabError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def _b36(number: int) -> str:
    """Base 36 keeps pids short in names."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out


def _name_re(prefix: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(prefix)}-(?P<pid>[0-9a-z]+)-")


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


def namespace_pids(ns: str, timeout: float = 10.0) -> list[int]:
    """Pids of every process living in ``ns`` (in a lab namespace: only what the lab started)."""
    try:
        return [int(p) for p in ip("netns", "pids", ns, timeout=timeout).split()]
    except LabError:
        return []


def kill_namespace_processes(namespaces: Sequence[str], grace: float = STOP_GRACE) -> None:
    """SIGTERM every process in ``namespaces``, then SIGKILL what is still there after ``grace``.

    SIGTERM first so daemons get their goodbye (the vrrp service drops its
    VIPs, nats-server flushes); SIGKILL so cleanup is certain and quick.
    """
    deadline = time.monotonic() + grace
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = [pid for ns in namespaces for pid in namespace_pids(ns)]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        while sig == signal.SIGTERM and pids and time.monotonic() < deadline:
            time.sleep(0.05)
            pids = [pid for ns in namespaces for pid in namespace_pids(ns)]


def delete_namespaces(namespaces: Sequence[str]) -> None:
    """Kill what runs inside, then delete each namespace; missing ones are fine."""
    kill_namespace_processes(namespaces)
    for ns in namespaces:
        with contextlib.suppress(LabError, subprocess.TimeoutExpired):
            ip("netns", "delete", ns)


def remove_stale(prefix: str = PREFIX) -> list[str]:
    """Delete namespaces named ``prefix-<pid>-…`` whose creating process is gone (a crashed run).

    A live process's namespaces are left alone, so calling this while another
    demo runs is safe.
    """
    pattern = _name_re(prefix)
    stale = []
    for name in list_namespaces():
        match = pattern.match(name)
        if match and not _pid_alive(int(match["pid"], 36)):
            stale.append(name)
    delete_namespaces(stale)
    return stale


def join_namespace(ns: str) -> None:
    """Move the *calling thread* into ``ns`` (namespace membership is per thread on Linux).

    Sockets created by this thread afterwards belong to ``ns`` for life; call
    it only in a thread dedicated to that namespace.
    """
    pr_netns.setns(ns, flags=0)


def in_namespace(ns: str, fn: Callable[[], T], timeout: float = 10.0) -> T:
    """Run ``fn()`` in a short-lived thread that joined ``ns``; its result or its exception."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            join_namespace(ns)
            box["result"] = fn()
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"netns-{ns}", daemon=True)
    thread.start()
    thread.join(timeout)
    if "error" in box:
        raise cast(BaseException, box["error"])
    if "result" not in box:
        raise LabError(f"in_namespace({ns}) did not finish in {timeout} s")
    return cast(T, box["result"])


@dataclass
class Host:
    """One host on the segment: a namespace with ``lo`` and ``eth0`` (plugged into switch port ``port``)."""

    role: str
    ns: str
    address: str
    port: str
    lab: Lab

    def spawn(self, argv: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
        """Start ``argv`` inside this host, output to ``log``; own session so Ctrl-C reaches only us.

        The lab, not the terminal, stops it: :meth:`Lab.close` terminates
        every process in the lab's namespaces.
        """
        with log.open("ab") as out:
            return subprocess.Popen(
                ["ip", "netns", "exec", self.ns, *argv],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def addresses(self, ifname: str = IFNAME) -> set[str]:
        """Every address on ``ifname`` as the kernel reports it (what ``ip addr`` would show)."""
        data = json.loads(ip("-n", self.ns, "-j", "addr", "show", "dev", ifname))
        return {str(a["local"]) for entry in data for a in entry.get("addr_info", [])}

    def cut(self) -> None:
        """Pull the cable: the switch port goes down, so eth0 loses carrier and nothing crosses."""
        ip("-n", self.lab.switch, "link", "set", self.port, "down")

    def restore(self) -> None:
        """Plug the cable back in."""
        ip("-n", self.lab.switch, "link", "set", self.port, "up")


@dataclass
class Lab:
    """A bridge in a switch namespace and hosts plugged into it; a context manager that always cleans up.

    ``with Lab() as lab: a = lab.host("a", "172.16.0.1/24")``.  On exit (normal,
    exception or Ctrl-C) every process inside is stopped, every namespace
    deleted and the work directory removed.
    """

    prefix: str = PREFIX
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="lifeline-lab-")))
    namespaces: list[str] = field(default_factory=list)
    hosts: list[Host] = field(default_factory=list)
    switch: str = ""
    tag: str = field(default_factory=lambda: f"{_b36(os.getpid())}-{_b36(next(_counter))}")
    owner: int = field(default_factory=os.getpid)

    def __enter__(self) -> Lab:
        try:
            self.switch = self._namespace("sw")
            ip("-n", self.switch, "link", "add", BRIDGE, "type", "bridge", "mcast_snooping", "0")
            ip("-n", self.switch, "link", "set", BRIDGE, "up")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _namespace(self, role: str) -> str:
        name = f"{self.prefix}-{self.tag}-{role}"
        ip("netns", "add", name)
        self.namespaces.append(name)
        ip("-n", name, "link", "set", "lo", "up")
        return name

    def host(self, role: str, cidr: str) -> Host:
        """A host namespace whose ``eth0`` (address ``cidr``, up) is plugged into the bridge.

        IPv6 link-local generation is off: nothing here needs it, and DAD
        would only add noise and delay.
        """
        ns = self._namespace(role)
        port = f"p{len(self.hosts) + 1}"
        ip("link", "add", IFNAME, "netns", ns, "type", "veth", "peer", "name", port, "netns", self.switch)
        ip("-n", self.switch, "link", "set", port, "master", BRIDGE)
        ip("-n", self.switch, "link", "set", port, "up")
        ip("-n", ns, "link", "set", IFNAME, "addrgenmode", "none")
        ip("-n", ns, "addr", "add", cidr, "dev", IFNAME)
        ip("-n", ns, "link", "set", IFNAME, "up")
        host = Host(role, ns, cidr.split("/", 1)[0], port, self)
        self.hosts.append(host)
        return host

    def close(self) -> None:
        """Stop every process in the lab, delete its namespaces and work directory; never raises.

        Only the creating process cleans up: a forked child that unwinds this
        stack by accident (a library's helper process hit by a signal) must
        not tear the lab down under its parent.
        """
        if os.getpid() != self.owner:
            return
        namespaces, self.namespaces = list(reversed(self.namespaces)), []
        delete_namespaces(namespaces)
        shutil.rmtree(self.workdir, ignore_errors=True)
