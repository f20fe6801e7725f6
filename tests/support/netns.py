"""Throwaway network namespaces for tests that need a real network stack.

Why a library of our own: interop and lab tests run real daemons (keepalived,
our services) that look at interfaces, resolve names and send raw packets.  A
network namespace gives each test a private, reproducible host: only the
interfaces the test creates exist, and ``/etc/netns/NAME/hosts`` gives it its own
name resolution.  Everything here drives ``ip`` (iproute2), the same tool
``ip netns exec`` needs anyway, so no library state leaks between forks.

Design rules:

* Names are unique per process, per xdist worker and per call (pid + worker +
  counter) so parallel tests never collide, and short: interface names must
  fit the kernel's 15-character limit (``IFNAMSIZ - 1``).
* Nothing is left in the root namespace.  Veth pairs are created directly
  with both ends inside lab namespaces and bridges live inside a "switch"
  namespace, so deleting the namespaces deletes every link.
* Cleanup always runs (context manager / fixture finaliser), and namespaces
  left behind by a crashed earlier run (their pid is dead) are removed at
  session start by :func:`remove_stale_namespaces`.

Typical use::

    with NetnsLab() as lab:
        host = lab.host("a")            # namespace with lo up and an eth0
        host.set_hosts({"mail.example.net": "192.0.2.25"})
        proc = host.run(["keepalived", "-t", "-f", conf])

    with NetnsLab() as lab:             # N hosts on one bridged segment
        a, b = lab.segment(["a", "b"], addresses=["10.0.0.1/24", "10.0.0.2/24"])
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from shared.lab.netns import _b36, _pid_alive

PREFIX = "llt"
"""Every namespace this module creates starts with this; stale cleanup keys on it."""

IFNAMSIZ_MAX = 15
NETNS_ETC = Path("/etc/netns")
DEFAULT_TIMEOUT = 30.0

_counter = itertools.count()
_NAME_RE = re.compile(rf"^{PREFIX}-(?P<pid>[0-9a-z]+)-")


class NetnsError(RuntimeError):
    """An ``ip`` command failed; carries its stderr so the failing step is obvious."""


def _worker_id() -> str:
    """pytest-xdist's worker ("gw3" -> "3"), or "m" for the main process."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return worker.removeprefix("gw") or "m"


def unique_name(role: str = "") -> str:
    """A namespace name owned by this process: ``llt-<pid>-<worker><n>[-role]``.

    The pid is encoded so :func:`remove_stale_namespaces` can tell a crashed
    run's namespace (dead pid) from a live parallel worker's.
    """
    name = f"{PREFIX}-{_b36(os.getpid())}-{_worker_id()}{_b36(next(_counter))}"
    return f"{name}-{role}" if role else name


def check_ifname(name: str) -> str:
    """Fail early and clearly rather than with a cryptic netlink error."""
    if not name or len(name) > IFNAMSIZ_MAX or "/" in name or name.strip() != name:
        raise ValueError(f"invalid interface name {name!r} (1..{IFNAMSIZ_MAX} chars, no '/' or spaces)")
    return name


def ip(*args: str, timeout: float = DEFAULT_TIMEOUT) -> str:
    """Run ``ip ARGS`` and return stdout; raise :class:`NetnsError` with stderr on failure."""
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def list_namespaces() -> list[str]:
    """Names of all network namespaces (``ip netns list`` prints ``NAME (id: N)``)."""
    return [line.split()[0] for line in ip("netns", "list").splitlines() if line.strip()]


def run_in_netns(
    ns: str | Namespace,
    argv: Sequence[str | os.PathLike[str]],
    timeout: float = DEFAULT_TIMEOUT,
    *,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` inside namespace ``ns`` and capture its output (never raises on exit status).

    ``ip netns exec`` is used (not ``nsenter``) because it also bind-mounts
    ``/etc/netns/NS/*`` over ``/etc``, which is how a test host gets its own
    ``hosts`` file.  ``ip`` execs the command, so the return code is the
    command's own (negative for a signal, e.g. -11 for a segfault).
    """
    name = ns.name if isinstance(ns, Namespace) else ns
    return subprocess.run(
        ["ip", "netns", "exec", name, *map(os.fspath, argv)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
        env=dict(env) if env is not None else None,
    )


def delete_namespace(name: str) -> None:
    """Delete a namespace and its ``/etc/netns`` directory; missing pieces are fine."""
    with contextlib.suppress(NetnsError):
        ip("netns", "delete", name)
    shutil.rmtree(NETNS_ETC / name, ignore_errors=True)


def remove_stale_namespaces() -> list[str]:
    """Delete our namespaces whose creating process is gone (a crashed or killed run).

    Safe to call from every xdist worker at once: a live worker's namespaces
    carry a live pid and are left alone.
    """
    removed = []
    for name in list_namespaces():
        match = _NAME_RE.match(name)
        if match and not _pid_alive(int(match["pid"], 36)):
            delete_namespace(name)
            removed.append(name)
    if NETNS_ETC.is_dir():
        for leftover in NETNS_ETC.glob(f"{PREFIX}-*"):
            match = _NAME_RE.match(leftover.name)
            if match and not _pid_alive(int(match["pid"], 36)):
                shutil.rmtree(leftover, ignore_errors=True)
    return removed


@dataclass
class Namespace:
    """One network namespace: a host, a switch, or a peer end's parking place."""

    name: str

    def run(
        self, argv: Sequence[str | os.PathLike[str]], timeout: float = DEFAULT_TIMEOUT, **kwargs: object
    ) -> subprocess.CompletedProcess[str]:
        return run_in_netns(self, argv, timeout, **kwargs)  # type: ignore[arg-type]

    def ip(self, *args: str) -> str:
        """``ip -n NAME ARGS``: configure this namespace from outside it."""
        return ip("-n", self.name, *args)

    def link_up(self, ifname: str) -> None:
        self.ip("link", "set", check_ifname(ifname), "up")

    def add_address(self, ifname: str, cidr: str) -> None:
        self.ip("addr", "add", cidr, "dev", check_ifname(ifname))

    def interfaces(self) -> list[str]:
        """Interface names as seen inside (``eth0@if12`` is reported as ``eth0``)."""
        out = self.ip("-o", "link", "show")
        return [line.split(":", 2)[1].strip().split("@", 1)[0] for line in out.splitlines()]

    def set_hosts(self, names: Mapping[str, str]) -> Path:
        """Give this namespace its own ``/etc/hosts`` (name -> address), localhost included.

        ``ip netns exec`` bind-mounts ``/etc/netns/NAME/hosts`` over ``/etc/hosts``
        for the command it runs; an empty mapping still replaces the host's file,
        so no name leaks in from the machine the tests run on.
        """
        directory = NETNS_ETC / self.name
        directory.mkdir(parents=True, exist_ok=True)
        lines = ["127.0.0.1 localhost", "::1 localhost", *(f"{addr} {name}" for name, addr in names.items())]
        path = directory / "hosts"
        path.write_text("\n".join(lines) + "\n")
        return path


@dataclass
class NetnsLab:
    """Owns every namespace a test creates and deletes them all on exit, whatever happened."""

    tag: str = ""
    namespaces: list[Namespace] = field(default_factory=list)

    def __enter__(self) -> NetnsLab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Delete in reverse order of creation; keep going past individual failures."""
        while self.namespaces:
            delete_namespace(self.namespaces.pop().name)

    def namespace(self, role: str = "") -> Namespace:
        """A new empty namespace with ``lo`` up (many daemons misbehave with lo down)."""
        ns = Namespace(unique_name("-".join(filter(None, (self.tag, role)))))
        ip("netns", "add", ns.name)
        self.namespaces.append(ns)
        ns.link_up("lo")
        return ns

    def veth(self, a: Namespace, a_if: str, b: Namespace, b_if: str, *, up: bool = False) -> None:
        """A veth pair created with its ends already in ``a`` and ``b`` (never in the root ns)."""
        ip(
            "link", "add", check_ifname(a_if), "netns", a.name, "type", "veth",
            "peer", "name", check_ifname(b_if), "netns", b.name,
        )  # fmt: skip
        if up:
            a.link_up(a_if)
            b.link_up(b_if)

    def bridge(self, ns: Namespace, name: str = "br0") -> str:
        """A Linux bridge inside ``ns`` (up), to join several veth ends into one segment."""
        ns.ip("link", "add", check_ifname(name), "type", "bridge")
        ns.link_up(name)
        return name

    def host(self, role: str = "host", ifname: str = "eth0", *, up: bool = False) -> Namespace:
        """A namespace with only ``lo`` (up) and ``ifname`` (a veth, down unless ``up``).

        The veth's peer is parked in its own throwaway namespace so interface
        lookups inside the host see exactly ``lo`` and ``ifname``.
        """
        host = self.namespace(role)
        peer = self.namespace(f"{role}p")
        self.veth(host, ifname, peer, "peer0", up=up)
        return host

    def segment(
        self, roles: Sequence[str], *, ifname: str = "eth0", addresses: Sequence[str] | None = None
    ) -> list[Namespace]:
        """N hosts on one Ethernet segment: each ``ifname`` plugs into a bridge in a switch namespace."""
        switch = self.namespace("sw")
        bridge = self.bridge(switch)
        hosts = []
        for index, role in enumerate(roles):
            host = self.namespace(role)
            port = f"p{index}"
            self.veth(host, ifname, switch, port, up=True)
            switch.ip("link", "set", port, "master", bridge)
            if addresses is not None:
                host.add_address(ifname, addresses[index])
            hosts.append(host)
        return hosts


def require_root() -> None:
    """Namespaces need CAP_SYS_ADMIN; say so plainly instead of failing on ``ip``."""
    if os.geteuid() != 0:
        pytest.fail("network-namespace tests need root (run them as root or in CI)")


@pytest.fixture(scope="session")
def netns_session() -> Iterator[None]:
    """Session start: check privileges and sweep namespaces left by crashed earlier runs."""
    require_root()
    remove_stale_namespaces()
    yield


@pytest.fixture
def netns_lab(netns_session: None) -> Iterator[NetnsLab]:
    """A per-test :class:`NetnsLab`; everything it created is deleted after the test."""
    with NetnsLab() as lab:
        yield lab
