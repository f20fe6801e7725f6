"""The privilege-free parts of the vrrp IO layer: frame builders, counters, netlink specs.

Cross-checked against scapy as an independent builder (docs/testing.md#independent-codecs); the lab
tests (tests/lab/test_vrrp_io.py) then prove the same bytes on a real link.
"""

from __future__ import annotations

import socket
import struct
from ipaddress import IPv4Address, IPv6Address, ip_interface

import pytest
from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6NDOptDstLLAddr, IPv6
from scapy.layers.l2 import ARP, Ether

from services.vrrp.kernel import addresses, sockets
from services.vrrp.kernel.announce import Announcer, garp_frame, mac_bytes, na_frame
from services.vrrp.packet import VRRP_GROUP_V4, VRRP_GROUP_V6, Advert, Frame, encode_ipv4, encode_vrrp

MAC = "02:00:5e:10:20:30"
VIP4 = IPv4Address("192.0.2.100")
VIP6 = IPv6Address("2001:db8::100")
LL = IPv6Address("fe80::1")


def test_garp_frame_matches_scapy_arp_request() -> None:
    want = Ether(dst="ff:ff:ff:ff:ff:ff", src=MAC) / ARP(
        op=1, hwsrc=MAC, psrc=str(VIP4), hwdst="ff:ff:ff:ff:ff:ff", pdst=str(VIP4)
    )
    assert garp_frame(MAC, VIP4) == bytes(want)
    assert len(garp_frame(MAC, VIP4)) == 42


@pytest.mark.parametrize("router", [False, True])
def test_na_frame_matches_scapy_unsolicited_na(router: bool) -> None:
    want = (
        Ether(dst="33:33:00:00:00:01", src=MAC)
        / IPv6(src=str(LL), dst="ff02::1", hlim=255)
        / ICMPv6ND_NA(R=int(router), S=0, O=1, tgt=str(VIP6))
        / ICMPv6NDOptDstLLAddr(lladdr=MAC)
    )
    assert na_frame(MAC, LL, VIP6, router=router) == bytes(want)


def test_mac_bytes_accepts_both_forms_and_refuses_garbage() -> None:
    assert mac_bytes(MAC) == mac_bytes(bytes.fromhex("02005e102030"))
    with pytest.raises(ValueError):
        mac_bytes("02:00")


def test_announcer_needs_a_link_local_for_ipv6() -> None:
    left, right = socket.socketpair()
    try:
        announcer = Announcer(left, mac=MAC)
        assert announcer.frame(VIP4) == garp_frame(MAC, VIP4)
        with pytest.raises(ValueError):
            announcer.frame(VIP6)
    finally:
        left.close()
        right.close()


def test_ip_id_counter_starts_at_one_and_skips_zero() -> None:
    ids = sockets.IpIdCounter()
    assert [ids.next() for _ in range(2)] == [1, 2]
    wrap = sockets.IpIdCounter(0xFFFF)
    assert [wrap.next() for _ in range(2)] == [0xFFFF, 1]
    with pytest.raises(ValueError):
        sockets.IpIdCounter(0)


def test_ancillary_data_gives_destination_ttl_and_ifindex() -> None:
    v4 = [
        (socket.IPPROTO_IP, sockets.IP_PKTINFO, struct.pack("@i4s4s", 3, bytes(4), VRRP_GROUP_V4.packed)),
        (socket.IPPROTO_IP, sockets.IP_TTL, struct.pack("@i", 255)),
    ]
    assert sockets._parse_ancillary(v4) == (VRRP_GROUP_V4, 255, 3)
    v6 = [
        (socket.IPPROTO_IPV6, socket.IPV6_HOPLIMIT, struct.pack("@i", 254)),
        (socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, VRRP_GROUP_V6.packed + struct.pack("@I", 7)),
    ]
    assert sockets._parse_ancillary(v6) == (VRRP_GROUP_V6, 254, 7)


def test_received_hands_each_family_to_the_codec_in_its_form() -> None:
    advert4 = Advert(version=2, vrid=1, priority=100, interval_cs=100, addresses=(VIP4,))
    src4 = IPv4Address("10.0.0.1")
    whole = encode_ipv4(advert4, src=src4, dst=VRRP_GROUP_V4, ident=1)
    rx4 = sockets.Received(data=whole, src=src4, dst=VRRP_GROUP_V4, ttl=255, ifindex=2, whole_packet=True)
    frame4 = rx4.decode()
    assert isinstance(frame4, Frame) and frame4.advert == advert4

    advert6 = Advert(version=3, vrid=1, priority=100, interval_cs=100, addresses=(VIP6,))
    payload = encode_vrrp(advert6, src=LL, dst=VRRP_GROUP_V6)
    rx6 = sockets.Received(data=payload, src=LL, dst=VRRP_GROUP_V6, ttl=255, ifindex=2, whole_packet=False)
    frame6 = rx6.decode()
    assert isinstance(frame6, Frame) and frame6.advert == advert6 and frame6.ttl == 255


def test_vip_netlink_spec_carries_every_virtual_ipaddress_field() -> None:
    vip = addresses.Vip(
        address=ip_interface("192.0.2.100/24"), brd=IPv4Address("192.0.2.255"), scope="link", label="eth0:1"
    )
    spec = addresses._add_spec(vip, 4)
    assert spec == {
        "index": 4,
        "family": socket.AF_INET,
        "address": "192.0.2.100",
        "prefixlen": 24,
        "broadcast": "192.0.2.255",
        "scope": 253,
        "label": "eth0:1",
    }
    v6 = addresses._add_spec(addresses.Vip(address=ip_interface("2001:db8::1"), preferred_lft=0), 4)
    assert (v6["prefixlen"], v6["flags"], v6["preferred_lft"]) == (128, addresses.IFA_F_NODAD, 0)
    assert "flags" not in addresses._add_spec(
        addresses.Vip(address=ip_interface("2001:db8::1"), nodad=False), 4
    )
    with pytest.raises(ValueError):
        addresses._add_spec(addresses.Vip(address=ip_interface("10.0.0.1"), scope="galaxy"), 4)
