"""Lab helpers for the vrrp IO tests, on top of :mod:`tests.support.netns`.

Two ways to run code "inside" a namespace, and when to use which:

* **Product code takes ``netns=NAME``** (``services.vrrp.kernel.sockets``,
  ``announce``, ``addresses.link_states``; ``AsyncIPRoute(netns=NAME)``): a
  socket belongs for life to the namespace it was created in, and pyroute2
  creates it there in a short-lived child process, passing the descriptor
  back.  The test's own thread and event loop never change namespace, so
  asyncio, pytest and xdist see nothing unusual.  This is the default.
* **:func:`in_netns`** runs a callable in a fresh thread that has called
  ``setns(CLONE_NEWNET)`` first (network namespace membership is per thread
  on Linux).  Use it for things that follow the *thread's* namespace rather
  than a socket's: plain ``socket.socket()`` calls in test helpers,
  ``socket.if_nametoindex``.  The thread ends afterwards, so no thread of
  the test process is ever left in a lab namespace.

:func:`vrrp_segment` builds the usual topology: N hosts with an ``eth0`` on
one bridge, IPv4 10.<x>.0.<n>/24, a fixed link-local ``fe80::<n>`` added
with ``nodad`` (the kernel's own is flushed: DAD would keep it tentative for
a second or more, and tests must not wait on that), and bridge multicast
snooping off so flooding does not depend on MLD/IGMP timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv6Address
from typing import TypeVar

from pyroute2 import netns as pr_netns

from tests.support.netns import Namespace, NetnsLab

T = TypeVar("T")
ETH_P_ALL = 0x0003


def in_netns(ns: Namespace | str, fn: Callable[[], T], timeout: float = 10.0) -> T:
    """Run ``fn()`` in a new thread that first joins network namespace ``ns``; return its result."""
    name = ns.name if isinstance(ns, Namespace) else ns
    box: dict[str, object] = {}

    def target() -> None:
        try:
            pr_netns.setns(name, flags=0)
            box["result"] = fn()
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"netns-{name}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"in_netns({name}) did not finish in {timeout} s")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["result"]  # type: ignore[return-value]


@dataclass
class LabHost:
    """One host on a :func:`vrrp_segment`: its namespace, addresses and MAC."""

    ns: Namespace
    ifname: str
    ipv4: IPv4Address
    prefix: IPv4Interface
    link_local: IPv6Address
    mac: str
    switch: Namespace
    port: str

    @property
    def name(self) -> str:
        return self.ns.name

    def ip(self, *args: str) -> str:
        return self.ns.ip(*args)

    def addresses(self) -> list[dict[str, object]]:
        """``ip -j addr show dev IF``'s addr_info list (what an operator would see)."""
        data = json.loads(self.ip("-j", "addr", "show", "dev", self.ifname))
        return list(data[0]["addr_info"]) if data else []


_subnet = iter(range(10_000))


def vrrp_segment(lab: NetnsLab, roles: Sequence[str], ifname: str = "eth0") -> list[LabHost]:
    """N :class:`LabHost` on one bridge (see module docstring); all removed with ``lab``."""
    switch = lab.namespace("sw")
    bridge = lab.bridge(switch)
    switch.ip("link", "set", bridge, "type", "bridge", "mcast_snooping", "0")
    net = 16 + (os.getpid() + next(_subnet)) % 200  # private, and only inside the namespaces anyway
    hosts = []
    for index, role in enumerate(roles, start=1):
        ns = lab.namespace(role)
        port = f"p{index}"
        lab.veth(ns, ifname, switch, port)
        switch.ip("link", "set", port, "master", bridge)
        switch.link_up(port)
        ns.ip("link", "set", ifname, "addrgenmode", "none")  # no kernel link-local (and so no DAD)
        ns.link_up(ifname)
        prefix = IPv4Interface(f"10.{net}.0.{index}/24")
        link_local = IPv6Address(f"fe80::{index:x}")
        ns.ip("addr", "add", str(prefix), "dev", ifname)
        ns.ip("addr", "add", f"{link_local}/64", "dev", ifname, "nodad")
        mac = json.loads(ns.ip("-j", "link", "show", "dev", ifname))[0]["address"]
        hosts.append(LabHost(ns, ifname, prefix.ip, prefix, link_local, mac, switch, port))
    return hosts


def wait_readable(sock: socket.socket, timeout: float) -> bool:
    """Block until ``sock`` has data or ``timeout`` passes (non-blocking sockets in sync tests)."""
    ready, _, _ = select.select([sock], [], [], timeout)
    return bool(ready)


class PacketCapture:
    """An AF_PACKET capture on one interface of a namespace (a tiny, deterministic tcpdump)."""

    def __init__(self, ns: Namespace | str, ifname: str, ethertype: int = ETH_P_ALL) -> None:
        name = ns.name if isinstance(ns, Namespace) else ns
        self.sock: socket.socket = pr_netns.create_socket(
            name, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ethertype)
        )
        self.sock.bind((ifname, ethertype))
        self.sock.setblocking(False)

    def frames(
        self, want: int, timeout: float, match: Callable[[bytes], bool] = lambda _f: True
    ) -> list[bytes]:
        """Up to ``want`` frames accepted by ``match``, waiting at most ``timeout`` seconds."""
        got: list[bytes] = []
        deadline = time.monotonic() + timeout
        while len(got) < want:
            left = deadline - time.monotonic()
            if left <= 0 or not wait_readable(self.sock, left):
                break
            frame, addr = self.sock.recvfrom(65535)
            if addr[2] != socket.PACKET_OUTGOING and match(frame):
                got.append(frame)
        return got

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> PacketCapture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class NatsProxy:
    """Listen on 127.0.0.1:<port> inside a namespace, relay each connection to the real server.

    A host namespace has its own loopback, so services started there with
    ``ip netns exec`` reach a nats-server in the root namespace through this.
    Stopping the server breaks the relayed connections as a server stop would.
    """

    def __init__(self, ns: str, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        sock: socket.socket = pr_netns.create_socket(ns, socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        sock.setblocking(False)
        self.port = int(sock.getsockname()[1])
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name=f"proxy-{ns}")
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(sock), self._loop).result(5)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    async def _serve(self, sock: socket.socket) -> None:
        self._server = await asyncio.start_server(self._relay, sock=sock)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def close(self) -> None:
        async def stop() -> None:
            self._server.close()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
