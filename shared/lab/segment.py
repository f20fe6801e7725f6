"""Hosts on one bridged segment, each able to run keepalived or lifeline; the cable; who holds a VIP.

Why one segment for everyone: the interop tests, the lab tests, the
benchmarks and ``lifeline demo`` all need the same thing (N hosts on one
Ethernet, a real VRRP daemon started from a config text, a cable to cut, the
kernel's word on who holds a VIP, the frames on the wire), so they all build
it here.

Topology (all of it inside namespaces; nothing is left in the root namespace):

* a switch namespace with bridge ``br0`` (multicast snooping off, so
  flooding never depends on IGMP/MLD timing) and one port ``pN`` per host;
* host namespaces, each with ``eth0``: IPv4 ``<subnet>.<N>`` (by default
  ``10.<net>.0.<N>/24``, ``net`` drawn per segment) and a fixed link-local
  ``fe80::<N>`` added ``nodad`` (the kernel's own is disabled, so nothing
  waits for DAD);
* optionally an observer namespace on the same bridge, where
  :meth:`Segment.capture` reads every frame with a kernel receive timestamp.
  Being a third party on the segment, it sees exactly what any host would;
* optionally more links (:meth:`Segment.add_link`): bridge ``br<k>`` with
  ``eth<k>`` in every host (``10.<net>.<100+k>.<N>/24``) and the observer.

A lifeline host runs its own nats-server on its own loopback (each node has
its own bus, as in production).  :meth:`Segment.close` kills every process
still inside the segment's namespaces and deletes them, whatever happened.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Address, ip_address
from pathlib import Path
from typing import Literal

from shared.lab.capture import Capture
from shared.lab.daemon import Daemon, keepalived_binary
from shared.lab.errors import LabError
from shared.lab.nats import NatsServer
from shared.lab.netns import IFNAME, TEST_PREFIX, Lab, Namespace

Impl = Literal["keepalived", "lifeline"]
IMPLS: tuple[Impl, ...] = ("keepalived", "lifeline")

_nets = itertools.count()


class Host:
    """One host on the segment: its namespace, addresses and switch port; runs at most one VRRP daemon."""

    def __init__(self, segment: Segment, role: str, ns: Namespace, index: int, port: str) -> None:
        self.segment = segment
        self.role = role
        """The host's part in the story ("a", "b"): its node name and its work directory."""
        self.ns = ns
        self.index = index
        self.port = port
        self.ifname = IFNAME
        self.ipv4 = IPv4Address(segment.address(index))
        self.prefix = IPv4Interface(f"{self.ipv4}/{segment.subnet.prefixlen}")
        self.link_local = IPv6Address(f"fe80::{index:x}")
        self.daemon: Daemon | None = None
        self.impl: Impl | None = None
        self.nats: NatsServer | None = None
        ns.add_address(IFNAME, str(self.prefix))
        ns.ip("addr", "add", f"{self.link_local}/64", "dev", IFNAME, "nodad")
        self.mac = str(json.loads(ns.ip("-j", "link", "show", "dev", IFNAME))[0]["address"])

    @property
    def name(self) -> str:
        """The namespace's name (what ``ip netns exec`` and ``netns=`` take)."""
        return self.ns.name

    @property
    def switch(self) -> Namespace:
        return self.segment.switch

    @property
    def workdir(self) -> Path:
        path = self.segment.workdir / self.role
        path.mkdir(parents=True, exist_ok=True)
        return path

    def ip(self, *args: str) -> str:
        """``ip -n <this host> ARGS``."""
        return self.ns.ip(*args)

    # --- addresses -------------------------------------------------------------
    def addr_info(self, dev: str | None = IFNAME) -> list[dict[str, object]]:
        """``ip -j addr``'s entries on ``dev`` (None: every interface), label, scope and flags included."""
        return self.ns.addr_info(dev)

    def addresses(self, dev: str | None = IFNAME) -> set[str]:
        """Every address on ``dev`` (None: on every interface), as the kernel reports it."""
        return self.ns.addresses(dev)

    def holds(self, vip: str, dev: str | None = IFNAME) -> bool:
        return str(ip_address(vip.split("/", 1)[0])) in self.addresses(dev)

    # --- link ------------------------------------------------------------------
    def cut(self) -> None:
        """Pull the cable: the switch port goes down, so eth0 loses carrier and nothing crosses."""
        self.switch.ip("link", "set", self.port, "down")

    def restore(self) -> None:
        """Plug the cable back in."""
        self.switch.ip("link", "set", self.port, "up")

    # --- daemons ---------------------------------------------------------------
    def start(self, impl: Impl, config: str | Path) -> Daemon:
        """Start ``impl`` on ``config`` (a file, or a text written to the host's work dir).

        lifeline gets this host's own nats-server, started first.
        """
        if self.daemon is not None and self.daemon.running:
            raise LabError(f"{self.role}: a daemon is already running")
        work = self.workdir
        if isinstance(config, str):
            path = work / f"{impl}.conf"
            path.write_text(config)
        else:
            path = config
        env = None
        if impl == "keepalived":
            pids = ["-p", str(work / "k.pid"), "-r", str(work / "v.pid"), "-c", str(work / "c.pid")]
            argv = [keepalived_binary(), "-n", "-l", "-D", "-f", str(path), *pids]
        else:
            url = self.ensure_nats().url
            argv = [sys.executable, "-m", "services.vrrp", "--config", str(path), "--node", self.role]
            argv += ["--nats", url]
            env = os.environ | {"LIFELINE_STATE_DIR": str(work / "state")}  # the host's own, never shared
        self.daemon = Daemon(argv, work / f"{impl}.log", self.name, env).start()
        self.impl = impl
        return self.daemon

    def ensure_nats(self) -> NatsServer:
        """This host's nats-server on its loopback, started (and waited for) if it is not running."""
        if self.nats is None:
            self.nats = NatsServer(self.workdir / "nats", name=self.role, ns=self.name)
        self.nats.start()
        return self.nats

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful stop (SIGTERM): the daemon's priority-0 advert lets a backup take over after skew."""
        if self.daemon is not None:
            self.daemon.stop(timeout=timeout)

    def kill(self) -> None:
        """``kill -9``: no priority-0 advert, VIPs left on the interface (like a crash)."""
        if self.daemon is not None:
            self.daemon.kill()


class Segment:
    """Hosts ``roles`` (and an observer) on one bridge; a context manager that always cleans up.

    ``prefix``: the namespace names' (:data:`~shared.lab.netns.TEST_PREFIX`
    unless a demo); ``subnet``: the hosts' IPv4 network (host N gets its Nth
    address); ``grace``: seconds the processes get after SIGTERM at close
    (0: SIGKILL at once).
    """

    def __init__(
        self,
        roles: Sequence[str],
        *,
        prefix: str = TEST_PREFIX,
        subnet: IPv4Network | None = None,
        observer: bool = True,
        links: int = 1,
        grace: float = 0.0,
        workdir: Path | None = None,
    ) -> None:
        self.roles = list(roles)
        self.net = 16 + (os.getpid() + next(_nets) * 7) % 200  # private, and only inside namespaces anyway
        self.subnet = subnet or IPv4Network(f"10.{self.net}.0.0/24")
        self.lab = Lab(prefix, grace)
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="lifeline-lab-"))
        self.hosts: list[Host] = []
        self.links = 0
        self._want_links = links
        self._want_observer = observer
        self._switch: Namespace | None = None
        self.observer: Namespace | None = None

    def __enter__(self) -> Segment:
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def switch(self) -> Namespace:
        if self._switch is None:
            raise LabError("the segment is not built (use it as a context manager)")
        return self._switch

    def host(self, role: str) -> Host:
        return next(h for h in self.hosts if h.role == role)

    def _build(self) -> None:
        self._switch = self.lab.namespace("sw")
        self.lab.bridge(self._switch, "br0")
        self.links = 1
        for index, role in enumerate(self.roles, start=1):
            ns = self.lab.namespace(role)
            port = f"p{index}"
            self._plug(ns, port, 0)
            self.hosts.append(Host(self, role, ns, index, port))
        if self._want_observer:
            self.observer = self.lab.namespace("obs")
            self._plug(self.observer, "pobs", 0)
        while self.links < self._want_links:
            self.add_link()

    def _plug(self, ns: Namespace, port: str, link: int) -> None:
        """A veth from ``ns``'s ``eth<link>`` to port ``port`` of bridge ``br<link>``, both ends up."""
        dev = f"eth{link}"
        self.lab.veth(ns, dev, self.switch, port)
        self.switch.ip("link", "set", port, "master", f"br{link}")
        self.switch.link_up(port)
        ns.ip("link", "set", dev, "addrgenmode", "none")  # no kernel link-local, so no DAD to wait for
        ns.link_up(dev)

    def add_link(self) -> int:
        """One more parallel segment: bridge ``br<k>``, ``eth<k>`` in every host and the observer; ``k``."""
        link = self.links
        self.lab.bridge(self.switch, f"br{link}")
        for host in self.hosts:
            self._plug(host.ns, f"p{host.index}l{link}", link)
            host.ns.add_address(f"eth{link}", f"{self.link_address(link, host.index)}/24")
        if self.observer is not None:
            self._plug(self.observer, f"pobs{link}", link)
        self.links += 1
        return link

    def address(self, host: int) -> str:
        """Address ``host`` of the subnet: host N's own, or an unused one for a VIP (100 and up)."""
        return str(self.subnet[host])

    def link_address(self, link: int, host: int) -> str:
        """Host ``host``'s address on ``eth<link>`` (link 0 is ``eth0``'s)."""
        return self.address(host) if link == 0 else f"10.{self.net}.{100 + link}.{host}"

    def capture(self, ifname: str = IFNAME) -> Capture:
        """Every frame the observer sees on its ``ifname``, kernel-timestamped, from now on."""
        if self.observer is None:
            raise LabError("this segment has no observer")
        return Capture(self.observer.name, ifname)

    def holders(self, vip: str, dev: str | None = IFNAME) -> list[str]:
        """Roles of the hosts whose ``dev`` (None: any interface) carries ``vip`` now (the kernel's view)."""
        return [h.role for h in self.hosts if h.holds(vip, dev)]

    def close(self) -> None:
        """Kill every process in the segment's namespaces, delete them and the work dir; never raises.

        A graceful stop is something a test or benchmark does on purpose (and
        checks); teardown only has to be quick and certain (``grace`` 0), and
        deleting a namespace takes every VIP with it anyway.
        """
        if os.getpid() != self.lab.owner:  # a forked helper unwinding our stack must not tear the lab down
            return
        self.lab.close()
        for host in self.hosts:
            if host.daemon is not None:
                host.daemon.kill()  # gone already: this only reaps it
            if host.nats is not None:
                host.nats.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)
