"""What the lab reads off the wire: adverts and gratuitous ARPs from raw Ethernet frames."""

from __future__ import annotations

import struct
from ipaddress import IPv4Address

from services.vrrp.kernel.announce import garp_frame
from services.vrrp.packet import VRRP_GROUP_V4, Advert, encode_ipv4
from shared.lab.capture import ETH_P_IP, AdvertSeen, GarpSeen, Packet, adverts, garps, parse_advert

SRC = IPv4Address("10.16.0.1")
MAC = "02:00:00:00:00:01"
VIP = IPv4Address("10.16.0.100")


def ethernet(payload: bytes, ethertype: int = ETH_P_IP) -> bytes:
    return (
        bytes.fromhex("01005e000012")
        + bytes.fromhex(MAC.replace(":", ""))
        + struct.pack("!H", ethertype)
        + payload
    )


def test_an_advert_is_read_with_the_vrrp_codec() -> None:
    advert = Advert(version=3, vrid=42, priority=200, interval_cs=10, addresses=(VIP,))
    frame = ethernet(encode_ipv4(advert, src=SRC, dst=VRRP_GROUP_V4, ident=1))
    seen = list(adverts([Packet(7, frame)]))
    assert seen == [AdvertSeen(ts_ns=7, src=str(SRC), vrid=42, priority=200, version=3)]


def test_a_garp_gives_its_sender_mac_and_address() -> None:
    packets = [Packet(9, garp_frame(MAC, VIP))]
    assert list(garps(packets)) == [GarpSeen(ts_ns=9, mac=MAC, vip=str(VIP))]
    assert list(adverts(packets)) == []


def test_other_frames_are_neither() -> None:
    udp = bytes.fromhex("4500001c0000400040110000") + SRC.packed + VIP.packed + bytes(8)
    for frame in (ethernet(udp), b"\x00" * 10, ethernet(b"\x45" + bytes(30))):
        assert parse_advert(Packet(0, frame)) is None
        assert list(garps([Packet(0, frame)])) == []
