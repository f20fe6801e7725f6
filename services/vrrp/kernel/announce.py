"""Gratuitous ARP and unsolicited Neighbour Advertisements, as keepalived 2.2.7 sends them.

A new MASTER must move the VIPs' layer-2 binding to itself at once; switches
learn the source MAC, hosts update their ARP / neighbour caches.  The frames
follow docs/keepalived.md#gratuitous-arp-and-unsolicited-na exactly:

* **GARP**: an ARP *request* (op 1) to the broadcast MAC, from the interface
  (or VMAC) MAC, sender IP = target IP = VIP, target MAC ff:ff:ff:ff:ff:ff.
* **Unsolicited NA** (RFC 4861 §7.2.6): from the interface's link-local to
  ff02::1 (MAC 33:33:00:00:00:01), hop limit 255, Override set, Solicited
  clear, Router set only when the node forwards, and a target link-layer
  address option; the ICMPv6 checksum is ours (a packet socket gets no help).

Frames are built with ``struct`` (no scapy on the product path) by pure
functions, so unit tests check bytes without privileges; :class:`Announcer`
owns the AF_PACKET socket.  Pacing (``garp_interval`` / ``gna_interval``,
the repeat count) is the caller's policy, passed to :func:`start_burst`.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Coroutine, Iterable
from ipaddress import IPv4Address, IPv6Address
from typing import cast

from pyroute2 import netns as pr_netns

from services.vrrp.packet.checksum import internet_checksum
from shared.addresses import IPAddress

ETH_P_ARP = 0x0806
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
BROADCAST_MAC = b"\xff" * 6
ALL_NODES = IPv6Address("ff02::1")
ALL_NODES_MAC = b"\x33\x33\x00\x00\x00\x01"
ARP_REQUEST = 1
ARPHRD_ETHER = 1
IPPROTO_ICMPV6 = 58
ND_NEIGHBOR_ADVERT = 136
ND_OPT_TARGET_LINKADDR = 2
NA_FLAG_ROUTER = 0x80000000
NA_FLAG_SOLICITED = 0x40000000
NA_FLAG_OVERRIDE = 0x20000000
HOP_LIMIT = 255


def mac_bytes(mac: str | bytes) -> bytes:
    """``"aa:bb:cc:dd:ee:ff"`` (pyroute2's form) or 6 raw bytes -> 6 raw bytes."""
    raw = mac if isinstance(mac, bytes) else bytes.fromhex(mac.replace(":", "").replace("-", ""))
    if len(raw) != 6:
        raise ValueError(f"not a MAC address: {mac!r}")
    return raw


def ethernet_header(dst: bytes, src: bytes, ethertype: int) -> bytes:
    return dst + src + struct.pack("!H", ethertype)


def garp_frame(mac: str | bytes, vip: IPv4Address) -> bytes:
    """The 42-byte gratuitous ARP frame keepalived sends for ``vip`` (the kernel pads on real NICs)."""
    src = mac_bytes(mac)
    arp = struct.pack("!HHBBH", ARPHRD_ETHER, ETH_P_IP, 6, 4, ARP_REQUEST)
    arp += src + vip.packed + BROADCAST_MAC + vip.packed
    return ethernet_header(BROADCAST_MAC, src, ETH_P_ARP) + arp


def _icmpv6_checksum(src: IPv6Address, dst: IPv6Address, message: bytes) -> int:
    pseudo = src.packed + dst.packed + struct.pack("!I3xB", len(message), IPPROTO_ICMPV6)
    return internet_checksum(pseudo, message)


def na_frame(mac: str | bytes, src: IPv6Address, vip: IPv6Address, *, router: bool = False) -> bytes:
    """An unsolicited Neighbour Advertisement for ``vip`` from ``src`` (the link-local) to ff02::1."""
    lladdr = mac_bytes(mac)
    flags = NA_FLAG_OVERRIDE | (NA_FLAG_ROUTER if router else 0)
    option = struct.pack("!BB", ND_OPT_TARGET_LINKADDR, 1) + lladdr
    message = struct.pack("!BBHI", ND_NEIGHBOR_ADVERT, 0, 0, flags) + vip.packed + option
    csum = _icmpv6_checksum(src, ALL_NODES, message)
    message = message[:2] + struct.pack("!H", csum) + message[4:]
    ipv6 = (
        struct.pack("!IHBB", 6 << 28, len(message), IPPROTO_ICMPV6, HOP_LIMIT) + src.packed + ALL_NODES.packed
    )
    return ethernet_header(ALL_NODES_MAC, lladdr, ETH_P_IPV6) + ipv6 + message


def open_packet_socket(ifname: str, *, netns: str | None = None) -> socket.socket:
    """A send-only AF_PACKET socket on ``ifname`` (protocol 0: it never queues received frames)."""
    if netns is None:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    else:
        sock = cast(socket.socket, pr_netns.create_socket(netns, socket.AF_PACKET, socket.SOCK_RAW, 0))
    try:
        sock.bind((ifname, 0))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class Announcer:
    """Sends GARPs and unsolicited NAs for one interface (or VMAC).

    ``mac`` is the source MAC (the VMAC with ``use_vmac``); ``ipv6_src`` the
    interface's link-local, needed only for IPv6 VIPs; ``router`` sets the NA's
    Router flag (keepalived sets it when IPv6 forwarding is on).
    """

    def __init__(
        self,
        sock: socket.socket,
        *,
        mac: str | bytes,
        ipv6_src: IPv6Address | None = None,
        router: bool = False,
    ) -> None:
        self.sock = sock
        self.mac = mac_bytes(mac)
        self.ipv6_src = ipv6_src
        self.router = router
        self.sent = 0
        self.errors = 0

    @classmethod
    def open(
        cls,
        ifname: str,
        *,
        mac: str | bytes,
        ipv6_src: IPv6Address | None = None,
        router: bool = False,
        netns: str | None = None,
    ) -> Announcer:
        return cls(open_packet_socket(ifname, netns=netns), mac=mac, ipv6_src=ipv6_src, router=router)

    def frame(self, vip: IPAddress) -> bytes:
        """The announcement frame for ``vip`` (GARP for IPv4, unsolicited NA for IPv6)."""
        if isinstance(vip, IPv4Address):
            return garp_frame(self.mac, vip)
        if self.ipv6_src is None:
            raise ValueError(f"no IPv6 link-local source to announce {vip}")
        return na_frame(self.mac, self.ipv6_src, vip, router=self.router)

    def announce(self, vip: IPAddress) -> bool:
        """Send one announcement; a failure (link down, full queue) is counted, not raised."""
        try:
            self.sock.send(self.frame(vip))
        except OSError:
            self.errors += 1
            return False
        self.sent += 1
        return True

    def start_burst(
        self, vips: Iterable[IPAddress], count: int, interval: float, *, na_interval: float | None = None
    ) -> tuple[int, Coroutine[None, None, int] | None]:
        """:func:`start_burst` on this interface alone."""
        return start_burst([(self, vip) for vip in vips], count, interval, na_interval=na_interval)

    async def send_garps(
        self, vips: Iterable[IPAddress], count: int, interval: float, *, na_interval: float | None = None
    ) -> int:
        """A whole burst (:meth:`start_burst` and its paced rest); returns how many frames went out."""
        sent, rest = self.start_burst(vips, count, interval, na_interval=na_interval)
        return sent + (await rest if rest is not None else 0)

    def close(self) -> None:
        self.sock.close()


Target = tuple[Announcer, IPAddress]
"""One announcement of a burst: which interface's sender, which VIP."""


def start_burst(
    targets: Iterable[Target], count: int, interval: float, *, na_interval: float | None = None
) -> tuple[int, Coroutine[None, None, int] | None]:
    """Send what is due now; return the frames sent and a coroutine pacing the rest (or None).

    ``count`` rounds of one announcement per target.  ``interval``
    (``garp_interval``) is the pause after each IPv4 frame and
    ``na_interval`` (``gna_interval``, default ``interval``) after each
    IPv6 one, each frame as it comes (the service's paced GARPs go through
    ``garp_pacer.py`` instead, which is keepalived's coalescing rate limit).
    The first frames leave in the caller's tick (a new master's first GARP
    must not wait for the event loop: it ends the failover); the first round
    ends the inline part even unpaced, so 80 VIPs x 5 rounds never hold the
    loop for long.
    """
    per_round = list(targets)
    gna = interval if na_interval is None else na_interval
    frames = per_round * count
    sent = 0
    for done, (announcer, vip) in enumerate(frames, start=1):
        sent += announcer.announce(vip)
        pause = interval if isinstance(vip, IPv4Address) else gna
        if done == len(frames):
            break
        if pause > 0 or done % len(per_round) == 0:
            return sent, _paced(frames[done:], pause, interval, gna)
    return sent, None


async def _paced(frames: list[Target], first_pause: float, interval: float, gna: float) -> int:
    """The rest of a burst, after ``first_pause``; a zero pause still yields to the loop."""
    await asyncio.sleep(first_pause)
    sent = 0
    for announcer, vip in frames:
        sent += announcer.announce(vip)
        await asyncio.sleep(interval if isinstance(vip, IPv4Address) else gna)
    return sent


__all__ = [
    "Announcer",
    "Target",
    "garp_frame",
    "mac_bytes",
    "na_frame",
    "open_packet_socket",
    "start_burst",
]
