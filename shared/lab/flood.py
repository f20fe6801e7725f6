"""A flood of hostile VRRP adverts onto a segment: foreign VRIDs, wrong passwords, lower priorities.

Why frames from a packet socket: the flood comes from the observer, which has
no address and must not route; an AF_PACKET socket puts complete Ethernet
frames on its ``eth0`` as fast as asked, with any source address.  The adverts
are built with lifeline's own encoder (:mod:`services.vrrp.packet`), whose
bytes the interop tests prove keepalived accepts, so a frame that is dropped
is dropped for what the flood made wrong on purpose, not for a bad checksum.
"""

from __future__ import annotations

import socket
import time
from collections import Counter
from dataclasses import dataclass
from ipaddress import IPv4Address

from services.vrrp.packet import Advert, AuthType
from services.vrrp.packet.encode import encode_ipv4
from shared.lab.netns import IFNAME, in_namespace

VRRP_GROUP = IPv4Address("224.0.0.18")
GROUP_MAC = bytes.fromhex("01005e000012")
FLOOD_MAC = bytes.fromhex("020000c0ffee")


@dataclass(frozen=True)
class Kind:
    """One sort of hostile advert: what it gets wrong (a name for the report) and the advert itself."""

    name: str
    advert: Advert


def hostile_kinds(vrid: int, vip: str, password: str, priority: int, interval_cs: int = 100) -> list[Kind]:
    """The three adverts a master must shrug off (VRRPv2, PASS): another router's VRID, a wrong
    password for its own VRID, and its own VRID at a lower priority than it has."""
    vips = (IPv4Address(vip),)

    def advert(vrid: int, priority: int, pw: str) -> Advert:
        return Advert(
            version=2,
            vrid=vrid,
            priority=priority,
            interval_cs=interval_cs,
            addresses=vips,
            auth_type=AuthType.PASS,
            auth_data=pw.encode().ljust(8, b"\0")[:8],
        )

    wrong = "x" + password[1:] if password[:1] != "x" else "y" + password[1:]
    return [
        Kind("foreign_vrid", advert(vrid % 255 + 1, 200, password)),
        Kind("wrong_auth", advert(vrid, 254, wrong)),
        Kind("lower_priority", advert(vrid, max(1, priority - 1), password)),
    ]


def flood(
    ns: str, src: str, kinds: list[Kind], *, seconds: float, rate: int, ifname: str = IFNAME
) -> Counter[str]:
    """Send the ``kinds`` in turn from namespace ``ns`` at about ``rate`` frames a second for
    ``seconds``; returns how many of each kind were sent."""
    frames = []
    for i, kind in enumerate(kinds):
        packet = encode_ipv4(kind.advert, src=IPv4Address(src), dst=VRRP_GROUP, ident=i + 1)
        frames.append((kind.name, GROUP_MAC + FLOOD_MAC + b"\x08\x00" + packet))
    sock = in_namespace(ns, lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW))
    sent: Counter[str] = Counter()
    try:
        sock.bind((ifname, 0))
        start = time.monotonic()
        n = 0
        while (elapsed := time.monotonic() - start) < seconds:
            if n > elapsed * rate:  # ahead of the rate: yield the CPU (the machine is shared)
                time.sleep(0.002)
                continue
            name, frame = frames[n % len(frames)]
            sock.send(frame)
            sent[name] += 1
            n += 1
    finally:
        sock.close()
    return sent
