"""The wire: frames captured in a namespace with kernel timestamps, and the adverts and GARPs among them.

Why our own capture and not tcpdump: the benchmarks time failovers to the
tenth of a millisecond from the kernel's receive timestamp
(``SO_TIMESTAMPNS``, CLOCK_REALTIME, the clock of ``time.time_ns()``), and
the tests assert on exact bytes; an AF_PACKET socket gives both with nothing
to parse but the frame itself.  Adverts are decoded with lifeline's own
codec (:mod:`services.vrrp.packet`), which reads keepalived's adverts as well
(the interop tests prove it), so the lab needs no packet library.

Frames the capturing host sent itself are left out: a capture on a host's
``eth0`` shows what that host received, and an observer sends nothing.
"""

from __future__ import annotations

import select
import socket
import struct
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address

from services.vrrp.packet import Drop, decode
from shared.lab.netns import IFNAME, in_namespace

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
IPPROTO_VRRP = 112
IPPROTO_AH = 51  # auth_type AH: the advert follows an AH header
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # asm-generic value, Python lacks the name
CAPTURE_RCVBUF = 32 * 1024 * 1024
"""Room for a busy segment between two drains (1,000 instances at 1 s are 1,000 frames a second)."""


def readable(sock: socket.socket, timeout: float) -> bool:
    """Block until ``sock`` has data or ``timeout`` passes (non-blocking sockets in sync code)."""
    ready, _, _ = select.select([sock], [], [], timeout)
    return bool(ready)


@dataclass(frozen=True)
class Packet:
    """One frame: kernel receive time (CLOCK_REALTIME ns) and its bytes, Ethernet header first."""

    ts_ns: int
    data: bytes


@dataclass(frozen=True)
class AdvertSeen:
    """A VRRP advert on the wire, reduced to what the benchmarks and tests look at."""

    ts_ns: int
    src: str
    vrid: int
    priority: int
    version: int


@dataclass(frozen=True)
class GarpSeen:
    """A gratuitous ARP (sender IP = target IP) on the wire."""

    ts_ns: int
    mac: str
    vip: str


class Capture:
    """AF_PACKET on ``ifname`` of namespace ``ns``, kernel timestamps on: a tiny, exact tcpdump.

    ``ethertype`` narrows what the kernel queues (ETH_P_ARP: only ARP).
    """

    def __init__(self, ns: str, ifname: str = IFNAME, ethertype: int = ETH_P_ALL) -> None:
        proto = socket.htons(ethertype)
        # made by a thread inside ``ns``: a packet socket belongs to its creator's namespace for life
        self.sock = in_namespace(ns, lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW, proto))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, CAPTURE_RCVBUF)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.bind((ifname, ethertype))
        self.sock.setblocking(False)

    def drain(self, wait: float = 0.0) -> list[Packet]:
        """Every frame queued now; if there is none, wait up to ``wait`` seconds for some.

        Returns as soon as the queue is empty, so it never spins forever on a
        busy segment.
        """
        out: list[Packet] = []
        if readable(self.sock, wait):
            while (packet := self._recv()) is not None:
                out.append(packet)
        return out

    def frames(
        self, want: int, timeout: float, match: Callable[[bytes], bool] = lambda _frame: True
    ) -> list[bytes]:
        """Up to ``want`` frames accepted by ``match``, waiting at most ``timeout`` seconds in all."""
        got: list[bytes] = []
        deadline = time.monotonic() + timeout
        while len(got) < want:
            left = deadline - time.monotonic()
            if left <= 0 or not readable(self.sock, left):
                break
            packet = self._recv()
            if packet is not None and match(packet.data):
                got.append(packet.data)
        return got

    def _recv(self) -> Packet | None:
        """The next received frame, None once the queue is empty (frames sent from here are skipped)."""
        while True:
            try:
                data, ancdata, _flags, addr = self.sock.recvmsg(65535, 64)
            except BlockingIOError:
                return None
            if addr[2] == socket.PACKET_OUTGOING:
                continue
            ts = time.time_ns()
            for level, kind, raw in ancdata:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(raw) >= 16:
                    sec, nsec = struct.unpack_from("qq", raw)
                    ts = sec * 1_000_000_000 + nsec
            return Packet(ts, data)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Capture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def parse_advert(packet: Packet) -> AdvertSeen | None:
    """A VRRP advert (IPv4 or IPv6, any version, AH or not) or None, via lifeline's own decoder."""
    data = packet.data
    if len(data) < 14:
        return None
    ethertype = struct.unpack_from("!H", data, 12)[0]
    if ethertype == ETH_P_IP and len(data) > 23 and data[23] not in (IPPROTO_VRRP, IPPROTO_AH):
        return None
    if ethertype == ETH_P_IPV6 and (len(data) < 21 or data[20] != IPPROTO_VRRP):
        return None
    if ethertype not in (ETH_P_IP, ETH_P_IPV6):
        return None
    frame = decode(data[14:])
    if isinstance(frame, Drop):
        return None
    advert = frame.advert
    return AdvertSeen(packet.ts_ns, str(frame.src), advert.vrid, advert.priority, advert.version)


def parse_garp(packet: Packet) -> GarpSeen | None:
    """A gratuitous ARP request or reply (sender IP == target IP) or None."""
    data = packet.data
    if len(data) < 42 or struct.unpack_from("!H", data, 12)[0] != ETH_P_ARP:
        return None
    sender_ip, target_ip = data[28:32], data[38:42]
    if sender_ip != target_ip:
        return None
    mac = ":".join(f"{b:02x}" for b in data[22:28])
    return GarpSeen(packet.ts_ns, mac, str(IPv4Address(sender_ip)))


def adverts(packets: Iterable[Packet]) -> Iterator[AdvertSeen]:
    return (a for p in packets if (a := parse_advert(p)) is not None)


def garps(packets: Iterable[Packet]) -> Iterator[GarpSeen]:
    return (g for p in packets if (g := parse_garp(p)) is not None)
