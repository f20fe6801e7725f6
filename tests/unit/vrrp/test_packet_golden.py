"""Golden vectors: adverts captured from the real keepalived 2.2.7, decoded and rebuilt byte for byte.

How they were captured (Debian keepalived 2.2.7, as root, 2026-11): two
throwaway namespaces joined by a veth pair named eth0 on both sides,
10.99.0.1/24 (MAC 02:00:00:00:00:01) running ``keepalived -n -l -D -P -f CONF``
and 10.99.0.2/24 capturing with an AF_PACKET socket; each instance was
``state MASTER``, ``priority 255``, stopped with SIGTERM after ~4 s so the
last advert is the priority-0 one.  The namespaces were deleted afterwards.
The hex below is the IP packet (Ethernet header removed).  Config per vector:

* v2_pass: vrid 51, version 2, advert_int 1, auth PASS "secret123", VIPs .100 .101
* v3_mcast: vrid 52, version 3, advert_int 1, VIP .102
* v3_ucast: vrid 53, version 3, advert_int 0.5, unicast_src_ip .1, peer .2, VIP .103
* v3_old_ucast: as v3_ucast with vrid 56, advert_int 1, ``old_unicast_checksum``, VIP .106
* v2_ah: vrid 54, version 2, auth AH "secret123", VIP .104 (multicast)
* v2_ah_ucast: vrid 57, version 2, auth AH "shortpw", unicast to .2, VIPs .107 .108
* v3_ipv6: vrid 55, version 3, VIPs fe80::55 2001:db8::55 (flow label set by the kernel)
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest

from services.vrrp.packet import (
    Accepted,
    Advert,
    AuthType,
    ChecksumForm,
    ChecksumMode,
    Drop,
    DropReason,
    RxConfig,
    auth_pass_bytes,
    decode,
    encode_ipv4,
    encode_ipv4_ah,
    encode_ipv6,
    encode_vrrp,
    internet_checksum,
    receive,
)

A = ip_address
SRC4 = IPv4Address("10.99.0.1")
PEER4 = IPv4Address("10.99.0.2")
GROUP4 = IPv4Address("224.0.0.18")
SRC6 = IPv6Address("fe80::ff:fe00:1")
GROUP6 = IPv6Address("ff02::12")


@dataclass(frozen=True)
class Golden:
    name: str
    hex: str
    cfg: RxConfig
    priority: int
    form: ChecksumForm = ChecksumForm.PSEUDO
    mode: ChecksumMode = ChecksumMode.PSEUDO
    key: bytes = b""  # AH key

    @property
    def packet(self) -> bytes:
        return bytes.fromhex(self.hex)


V2_PASS = RxConfig(
    vrid=51,
    version=2,
    addresses=(A("10.99.0.100"), A("10.99.0.101")),
    auth_type=AuthType.PASS,
    auth_data=auth_pass_bytes("secret123"),
)
V3_MCAST = RxConfig(vrid=52, version=3, addresses=(A("10.99.0.102"),))
V3_UCAST = RxConfig(
    vrid=53,
    version=3,
    interval_cs=50,
    addresses=(A("10.99.0.103"),),
    unicast=True,
    unicast_peers=frozenset({SRC4}),
    check_unicast_src=True,
)
V3_OLD = RxConfig(
    vrid=56, version=3, addresses=(A("10.99.0.106"),), unicast=True, checksum_mode=ChecksumMode.OLD_UNICAST
)
V2_AH = RxConfig(
    vrid=54,
    version=2,
    addresses=(A("10.99.0.104"),),
    auth_type=AuthType.AH,
    auth_data=auth_pass_bytes("secret123"),
)
V2_AH_UC = RxConfig(
    vrid=57,
    version=2,
    addresses=(A("10.99.0.107"), A("10.99.0.108")),
    unicast=True,
    auth_type=AuthType.AH,
    auth_data=auth_pass_bytes("shortpw"),
)
V3_V6 = RxConfig(vrid=55, version=3, addresses=(A("fe80::55"), A("2001:db8::55")))

# fmt: off
GOLDEN = [
    Golden(
        "v2_pass",
        "45c0002c00010000ff70d02a0a630001e00000122133ff0201015bbb0a6300640a63006573656372"
        "65743132",
        V2_PASS, 255, ChecksumForm.PLAIN,
    ),
    Golden(
        "v2_pass_prio0",
        "45c0002c00060000ff70d0250a630001e00000122133000201015abc0a6300640a63006573656372"
        "65743132",
        V2_PASS, 0, ChecksumForm.PLAIN,
    ),
    Golden(
        "v3_mcast",
        "45c0002000010000ff70d0360a630001e00000123134ff010064d9a90a630066",
        V3_MCAST, 255,
    ),
    Golden(
        "v3_mcast_prio0",
        "45c0002000060000ff70d0310a630001e0000012313400010064d8aa0a630066",
        V3_MCAST, 0,
    ),
    Golden(
        "v3_ucast",
        "45c0002000010000ff70a5e40a6300010a6300023135ff010032af870a630067",
        V3_UCAST, 255,
    ),
    Golden(
        "v3_ucast_prio0",
        "45c00020000a0000ff70a5db0a6300010a630002313500010032ae880a630067",
        V3_UCAST, 0,
    ),
    Golden(
        "v3_old_ucast",
        "45c0002000010000ff70a5e40a6300010a6300023138ff010064d9a10a63006a",
        V3_OLD, 255, ChecksumForm.OLD_UNICAST, ChecksumMode.OLD_UNICAST,
    ),
    Golden(
        "v2_ah",
        "45c0004000010000ff33d0530a630001e0000012700400000a6300010000000183ea09df67dc730d"
        "cb867b762136ff010201d2fb0a6300680000000000000000",
        V2_AH, 255, ChecksumForm.PLAIN, key=auth_pass_bytes("secret123"),
    ),
    Golden(
        "v2_ah_prio0",
        "45c0004000060000ff33d04e0a630001e0000012700400000a63000100000006c4a66270f3c43ee5"
        "2cbc12c9213600010201d1fc0a6300680000000000000000",
        V2_AH, 0, ChecksumForm.PLAIN, key=auth_pass_bytes("secret123"),
    ),
    Golden(
        "v2_ah_ucast",
        "45c0004400010000ff33a5fd0a6300010a630002700400000a630001000000011032a677598a1980"
        "8eab83532139ff020201c8250a63006b0a63006c0000000000000000",
        V2_AH_UC, 255, ChecksumForm.PLAIN, key=auth_pass_bytes("shortpw"),
    ),
    Golden(
        "v3_ipv6",
        "6c011b59002870fffe80000000000000000000fffe000001ff020000000000000000000000000012"
        "3137ff020064a54efe80000000000000000000000000005520010db8000000000000000000000055",
        V3_V6, 255,
    ),
]
# fmt: on


def _rebuild(g: Golden, accepted: Accepted) -> bytes:
    frame = accepted.frame
    pkt = g.packet
    if isinstance(frame.src, IPv6Address):
        assert isinstance(frame.dst, IPv6Address)
        return encode_ipv6(
            frame.advert, src=frame.src, dst=frame.dst, flow_label=int.from_bytes(pkt[:4], "big") & 0xFFFFF
        )
    assert isinstance(frame.dst, IPv4Address)
    ident = int.from_bytes(pkt[4:6], "big")
    if frame.ah is not None:
        return encode_ipv4_ah(
            frame.advert, src=frame.src, dst=frame.dst, ident=ident, seq=frame.ah.seq, key=g.key
        )
    return encode_ipv4(frame.advert, src=frame.src, dst=frame.dst, ident=ident, checksum_mode=g.mode)


@pytest.mark.parametrize("g", GOLDEN, ids=lambda g: g.name)
def test_captured_advert_is_accepted_and_rebuilt_byte_for_byte(g: Golden) -> None:
    result = receive(g.packet, {g.cfg.vrid: g.cfg})
    assert isinstance(result, Accepted), result
    advert = result.advert
    assert advert.vrid == g.cfg.vrid
    assert advert.priority == g.priority
    assert advert.interval_cs == g.cfg.interval_cs
    assert advert.addresses == g.cfg.addresses
    assert result.checksum_form is g.form
    assert result.warnings == frozenset()
    assert _rebuild(g, result) == g.packet


def test_v2_pass_field_layout_matches_keepalived() -> None:
    frame = decode(GOLDEN[0].packet)
    assert not isinstance(frame, Drop)
    assert frame.advert == Advert(
        version=2,
        vrid=51,
        priority=255,
        interval_cs=100,
        addresses=(A("10.99.0.100"), A("10.99.0.101")),
        auth_type=AuthType.PASS,
        auth_data=b"secret12",
    )
    assert (frame.src, frame.dst, frame.ttl) == (SRC4, GROUP4, 255)
    pkt = GOLDEN[0].packet
    assert pkt[1] == 0xC0  # TOS
    assert pkt[6:8] == b"\x00\x00"  # DF clear, no fragment
    assert len(frame.vrrp) == 24 and len(pkt) == 44


def test_old_unicast_capture_triggers_compat_switch_when_we_send_the_new_form() -> None:
    """A peer still on the pre-1.3.6 checksum is accepted and reported, so the caller can switch."""
    g = next(g for g in GOLDEN if g.name == "v3_old_ucast")
    cfg = RxConfig(vrid=56, version=3, addresses=g.cfg.addresses, unicast=True)
    result = receive(g.packet, {56: cfg})
    assert isinstance(result, Accepted)
    assert result.checksum_form is ChecksumForm.OLD_UNICAST
    assert "old_unicast_checksum" in result.warnings
    never = RxConfig(
        vrid=56, version=3, addresses=g.cfg.addresses, unicast=True, old_unicast_autodetect=False
    )
    assert receive(g.packet, {56: never}) == Drop(DropReason.BAD_CHECKSUM, "v3 with pseudo-header")


def test_v3_ucast_checksum_uses_the_peer_not_the_group() -> None:
    advert = Advert(version=3, vrid=53, priority=255, interval_cs=50, addresses=(A("10.99.0.103"),))
    to_peer = encode_vrrp(advert, src=SRC4, dst=PEER4)
    assert to_peer == bytes.fromhex("3135ff010032af870a630067")
    old = encode_vrrp(advert, src=SRC4, dst=PEER4, checksum_mode=ChecksumMode.OLD_UNICAST)
    assert old == encode_vrrp(advert, src=SRC4, dst=GROUP4)


def test_synthetic_sizes_and_checksums() -> None:
    """The handbook's size table: v2 + 2 VIPs = 24/44 bytes, v3 + 1 VIP = 12/32 (v2 hex built by scapy)."""
    v2 = Advert(
        version=2,
        vrid=1,
        priority=100,
        interval_cs=100,
        addresses=(A("192.0.2.1"), A("192.0.2.2")),
        auth_type=AuthType.PASS,
        auth_data=auth_pass_bytes("pw"),
    )
    v2_vrrp = encode_vrrp(v2, src=A("192.0.2.10"), dst=GROUP4)
    assert len(v2_vrrp) == 24
    assert internet_checksum(v2_vrrp) == 0  # no pseudo-header
    assert v2_vrrp == bytes.fromhex("210164020101857fc0000201c00002027077000000000000")
    v2_ip = encode_ipv4(v2, src=IPv4Address("192.0.2.10"), dst=GROUP4, ident=1)
    assert len(v2_ip) == 44 and internet_checksum(v2_ip[:20]) == 0
    v3 = Advert(version=3, vrid=1, priority=100, interval_cs=100, addresses=(A("192.0.2.1"),))
    v3_ip = encode_ipv4(v3, src=IPv4Address("192.0.2.10"), dst=GROUP4, ident=1)
    assert len(v3_ip) == 32 and len(v3_ip) - 20 == 12
    pseudo = bytes.fromhex("c000020ae0000012") + bytes([0, 112, 0, 12])
    assert internet_checksum(pseudo, v3_ip[20:]) == 0
    as_v2 = encode_vrrp(v3, src=A("192.0.2.10"), dst=GROUP4, checksum_mode=ChecksumMode.AS_V2)
    assert internet_checksum(as_v2) == 0 and as_v2 != v3_ip[20:]


def test_ah_packet_is_64_bytes() -> None:
    advert = Advert(version=2, vrid=9, priority=100, interval_cs=100, addresses=(A("192.0.2.1"),))
    pkt = encode_ipv4_ah(advert, src=IPv4Address("192.0.2.10"), dst=GROUP4, ident=7, seq=1, key=b"k" * 8)
    assert len(pkt) == 64 and pkt[9] == 51


def test_auth_pass_is_truncated_and_zero_padded() -> None:
    assert auth_pass_bytes("secret123") == b"secret12"
    assert auth_pass_bytes("pw") == b"pw\x00\x00\x00\x00\x00\x00"
    assert auth_pass_bytes(b"") == bytes(8)
