"""Receive policy: one test per drop reason and per warning (docs/keepalived.md#packet-validation)."""

from __future__ import annotations

import struct
from ipaddress import IPv4Address, IPv6Address, ip_address

import msgspec
import pytest

from services.vrrp.packet import (
    Accepted,
    Advert,
    AdvertWarning,
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
    new_drop_counters,
    receive,
    validate,
)
from services.vrrp.packet.checksum import internet_checksum

A = ip_address
SRC = IPv4Address("192.0.2.1")
PEER = IPv4Address("192.0.2.2")
GROUP = IPv4Address("224.0.0.18")
VIPS = (A("192.0.2.100"), A("192.0.2.101"))
PW = auth_pass_bytes("secret123")

V2 = Advert(
    version=2, vrid=7, priority=100, interval_cs=100, addresses=VIPS, auth_type=AuthType.PASS, auth_data=PW
)
V2_CFG = RxConfig(vrid=7, version=2, addresses=VIPS, auth_type=AuthType.PASS, auth_data=PW)
V3 = Advert(version=3, vrid=7, priority=100, interval_cs=100, addresses=VIPS)
V3_CFG = RxConfig(vrid=7, version=3, addresses=VIPS)
V3_UC_CFG = RxConfig(vrid=7, version=3, addresses=VIPS, unicast=True)


def v2pkt(advert: Advert = V2, **kw: object) -> bytes:
    return encode_ipv4(advert, src=SRC, dst=GROUP, ident=1, **kw)  # type: ignore[arg-type]


def reason(data: bytes, cfg: RxConfig) -> DropReason | None:
    result = receive(data, {cfg.vrid: cfg})
    return result.reason if isinstance(result, Drop) else None


def reipv4(pkt: bytes, **fields: int) -> bytes:
    """Rewrite IPv4 header fields (ttl, proto, tot_len, frag) and fix the header checksum."""
    head = bytearray(pkt[:20])
    for name, value in fields.items():
        if name == "ttl":
            head[8] = value
        elif name == "proto":
            head[9] = value
        elif name == "tot_len":
            head[2:4] = value.to_bytes(2, "big")
        elif name == "frag":
            head[6:8] = value.to_bytes(2, "big")
    head[10:12] = b"\x00\x00"
    head[10:12] = internet_checksum(bytes(head)).to_bytes(2, "big")
    return bytes(head) + pkt[20:]


def test_good_v2_pass_is_accepted_without_warnings() -> None:
    result = receive(v2pkt(), {7: V2_CFG})
    assert isinstance(result, Accepted)
    assert result.advert == V2 and result.warnings == frozenset()


def test_ethernet_padding_is_tolerated_but_longer_tails_are_not() -> None:
    v3 = encode_ipv4(V3, src=SRC, dst=GROUP, ident=1)  # 36 bytes: a short frame, padded to 46
    assert isinstance(receive(v3 + bytes(46 - len(v3)), {7: V3_CFG}), Accepted)
    assert isinstance(receive(v3 + bytes(50 - len(v3)), {7: V3_CFG}), Accepted)  # stripped VLAN tag
    assert reason(v3 + bytes(51 - len(v3)), V3_CFG) is DropReason.IP_TOT_LEN
    assert isinstance(receive(v2pkt() + bytes(2), {7: V2_CFG}), Accepted)  # 44 padded to 46
    assert reason(v2pkt() + bytes(7), V2_CFG) is DropReason.IP_TOT_LEN  # 51 bytes: too long to be padding


def test_lengths() -> None:
    pkt = v2pkt()
    assert reason(pkt[:-1], V2_CFG) is DropReason.BAD_LENGTH  # tot_len beyond the data
    assert reason(reipv4(pkt[:-4], tot_len=len(pkt) - 4), V2_CFG) is DropReason.BAD_LENGTH  # naddr mismatch
    assert reason(reipv4(pkt, tot_len=10), V2_CFG) is DropReason.IP_TOT_LEN
    assert reason(pkt[:10], V2_CFG) is DropReason.BAD_LENGTH
    assert reason(b"", V2_CFG) is DropReason.BAD_LENGTH


def test_ip_header_problems() -> None:
    pkt = v2pkt()
    assert reason(reipv4(pkt, proto=17), V2_CFG) is DropReason.BAD_IP_HEADER
    assert reason(reipv4(pkt, frag=0x2000), V2_CFG) is DropReason.BAD_IP_HEADER  # MF
    assert isinstance(receive(reipv4(pkt, frag=0x4000), {7: V2_CFG}), Accepted)  # DF is harmless
    broken = bytearray(pkt)
    broken[10] ^= 0xFF
    assert reason(bytes(broken), V2_CFG) is DropReason.BAD_IP_HEADER


def test_ttl_checked_for_multicast_only() -> None:
    assert reason(v2pkt(ttl=254), V2_CFG) is DropReason.BAD_TTL
    uc = encode_ipv4(V3, src=SRC, dst=PEER, ident=1, ttl=64)
    assert isinstance(receive(uc, {7: V3_UC_CFG}), Accepted)
    v6 = Advert(version=3, vrid=7, priority=100, interval_cs=100, addresses=(A("fe80::1"),))
    cfg6 = RxConfig(vrid=7, version=3, addresses=(A("fe80::1"),))
    src6, grp6 = IPv6Address("fe80::2"), IPv6Address("ff02::12")
    assert reason(encode_ipv6(v6, src=src6, dst=grp6, hop_limit=1), cfg6) is DropReason.BAD_TTL
    payload = encode_vrrp(v6, src=src6, dst=grp6)
    assert isinstance(receive(payload, {7: cfg6}, src=src6, dst=grp6, ttl=255), Accepted)
    assert reason_payload(payload, cfg6, src6, grp6, 64) is DropReason.BAD_TTL


def reason_payload(
    data: bytes, cfg: RxConfig, src: IPv6Address, dst: IPv6Address, ttl: int
) -> DropReason | None:
    result = receive(data, {cfg.vrid: cfg}, src=src, dst=dst, ttl=ttl)
    return result.reason if isinstance(result, Drop) else None


def test_version_type_and_vrid() -> None:
    assert reason(v2pkt(), V3_CFG) is DropReason.BAD_VERSION
    pkt = bytearray(v2pkt())
    pkt[20] = 0x22  # type 2
    assert reason(bytes(pkt), V2_CFG) is DropReason.BAD_TYPE
    pkt[20] = 0x41  # version 4
    assert reason(bytes(pkt), V2_CFG) is DropReason.BAD_VERSION
    assert reason(v2pkt(), RxConfig(vrid=8)) is DropReason.UNKNOWN_VRID
    frame = decode(v2pkt())
    assert not isinstance(frame, Drop)
    assert validate(frame, RxConfig(vrid=8)) == Drop(DropReason.VRID_MISMATCH, "VRID 7, expected 8")


def test_unicast_multicast_mode_and_source() -> None:
    assert reason(encode_ipv4(V3, src=SRC, dst=GROUP, ident=1), V3_UC_CFG) is DropReason.MODE_MISMATCH
    assert reason(encode_ipv4(V3, src=SRC, dst=PEER, ident=1), V3_CFG) is DropReason.MODE_MISMATCH
    strict = RxConfig(
        vrid=7,
        version=3,
        addresses=VIPS,
        unicast=True,
        check_unicast_src=True,
        unicast_peers=frozenset({IPv4Address("192.0.2.9")}),
    )
    assert reason(encode_ipv4(V3, src=SRC, dst=PEER, ident=1), strict) is DropReason.UNKNOWN_UNICAST_SRC


def test_bad_checksums() -> None:
    pkt = bytearray(v2pkt())
    pkt[-1] ^= 1  # inside the auth data: covered by the v2 checksum
    assert (
        reason(
            bytes(pkt), RxConfig(vrid=7, addresses=VIPS, auth_type=AuthType.PASS, auth_data=bytes(pkt[-8:]))
        )
        is DropReason.BAD_CHECKSUM
    )
    as_v2 = encode_ipv4(V3, src=SRC, dst=GROUP, ident=1, checksum_mode=ChecksumMode.AS_V2)
    assert reason(as_v2, V3_CFG) is DropReason.BAD_CHECKSUM  # the v2 form only if configured


def test_v3_checksum_as_v2_quirk_tolerates_bad_checksums() -> None:
    cfg = RxConfig(vrid=7, version=3, addresses=VIPS, checksum_mode=ChecksumMode.AS_V2)
    good = encode_ipv4(V3, src=SRC, dst=GROUP, ident=1, checksum_mode=ChecksumMode.AS_V2)
    result = receive(good, {7: cfg})
    assert isinstance(result, Accepted) and result.checksum_form is ChecksumForm.PLAIN
    bad = bytearray(good)
    bad[27] ^= 0x55
    result = receive(bytes(bad), {7: cfg})
    assert isinstance(result, Accepted)
    assert result.checksum_form is ChecksumForm.UNVERIFIED
    assert result.warnings == {AdvertWarning.CHECKSUM_UNVERIFIED}


def test_old_unicast_form_only_for_unicast_and_when_allowed() -> None:
    old = encode_ipv4(V3, src=SRC, dst=PEER, ident=1, checksum_mode=ChecksumMode.OLD_UNICAST)
    result = receive(old, {7: V3_UC_CFG})
    assert isinstance(result, Accepted) and result.checksum_form is ChecksumForm.OLD_UNICAST
    never = RxConfig(vrid=7, version=3, addresses=VIPS, unicast=True, old_unicast_autodetect=False)
    assert reason(old, never) is DropReason.BAD_CHECKSUM
    compat = RxConfig(vrid=7, version=3, addresses=VIPS, unicast=True, checksum_mode=ChecksumMode.OLD_UNICAST)
    new = encode_ipv4(V3, src=SRC, dst=PEER, ident=1)
    result = receive(new, {7: compat})
    assert isinstance(result, Accepted) and result.checksum_form is ChecksumForm.PSEUDO


def test_pass_authentication() -> None:
    assert reason(v2pkt(), RxConfig(vrid=7, addresses=VIPS)) is DropReason.AUTH_TYPE_MISMATCH
    wrong = RxConfig(vrid=7, addresses=VIPS, auth_type=AuthType.PASS, auth_data=auth_pass_bytes("secret1"))
    assert reason(v2pkt(), wrong) is DropReason.AUTH_FAILURE
    # the 9th character is not on the wire, so these two passwords are equal
    same = RxConfig(vrid=7, addresses=VIPS, auth_type=AuthType.PASS, auth_data=auth_pass_bytes("secret12X"))
    assert isinstance(receive(v2pkt(), {7: same}), Accepted)


def test_ah_authentication() -> None:
    key = auth_pass_bytes("secret")
    advert = Advert(version=2, vrid=7, priority=100, interval_cs=100, addresses=VIPS)
    cfg = RxConfig(vrid=7, addresses=VIPS, auth_type=AuthType.AH, auth_data=key)
    pkt = encode_ipv4_ah(advert, src=SRC, dst=GROUP, ident=3, seq=42, key=key)
    result = receive(pkt, {7: cfg})
    assert isinstance(result, Accepted) and result.frame.ah is not None and result.frame.ah.seq == 42
    assert (
        reason(pkt, RxConfig(vrid=7, addresses=VIPS, auth_type=AuthType.AH, auth_data=bytes(8)))
        is DropReason.AUTH_FAILURE
    )
    assert reason(pkt, V2_CFG) is DropReason.AUTH_TYPE_MISMATCH  # AH received, PASS configured
    assert reason(v2pkt(), cfg) is DropReason.AUTH_TYPE_MISMATCH  # PASS received, AH configured
    spoofed = bytearray(pkt)
    spoofed[28:32] = b"\x01\x02\x03\x04"  # SPI is not the source
    assert reason(bytes(spoofed), cfg) is DropReason.AUTH_FAILURE
    not_vrrp = bytearray(pkt)
    not_vrrp[20] = 17
    assert reason(bytes(not_vrrp), cfg) is DropReason.UNSUPPORTED_AH


def test_ah_around_v3_is_unsupported() -> None:
    v3_in_ah = bytearray(
        encode_ipv4_ah(
            Advert(version=2, vrid=7, priority=1, interval_cs=100, addresses=()),
            src=SRC,
            dst=GROUP,
            ident=1,
            seq=1,
            key=bytes(8),
        )
    )
    body = encode_vrrp(
        Advert(version=3, vrid=7, priority=1, interval_cs=100, addresses=()), src=SRC, dst=GROUP
    )
    pkt = reipv4(bytes(v3_in_ah[:44]) + body, tot_len=44 + len(body))
    assert reason(pkt, RxConfig(vrid=7, version=3)) is DropReason.UNSUPPORTED_AH


def test_interval_mismatch_drops_v2_and_warns_v3() -> None:
    slow = Advert(
        version=2,
        vrid=7,
        priority=100,
        interval_cs=200,
        addresses=VIPS,
        auth_type=AuthType.PASS,
        auth_data=PW,
    )
    assert reason(v2pkt(slow), V2_CFG) is DropReason.INTERVAL_MISMATCH
    fast = Advert(version=3, vrid=7, priority=100, interval_cs=25, addresses=VIPS)
    result = receive(encode_ipv4(fast, src=SRC, dst=GROUP, ident=1), {7: V3_CFG})
    assert isinstance(result, Accepted) and result.warnings == {AdvertWarning.INTERVAL_MISMATCH}
    assert result.advert.interval_cs == 25


@pytest.mark.parametrize("addresses", [VIPS[:1], (*VIPS, A("192.0.2.102")), (VIPS[0], A("192.0.2.200")), ()])
def test_address_list_mismatch_is_dropped_as_2_2_7_does(addresses: tuple[IPv4Address, ...]) -> None:
    """2.2.7 refuses another VIP count or set; ``skip_check_adv_addr`` leaves it to the instance."""
    advert = Advert(version=3, vrid=7, priority=100, interval_cs=100, addresses=addresses)
    pkt = encode_ipv4(advert, src=SRC, dst=GROUP, ident=1)
    assert reason(pkt, V3_CFG) is DropReason.ADDR_LIST_MISMATCH
    skip = RxConfig(vrid=7, version=3, addresses=VIPS, skip_check_adv_addr=True)
    result = receive(pkt, {7: skip})
    assert isinstance(result, Accepted) and result.warnings == {AdvertWarning.ADDR_LIST_MISMATCH}


def test_unicast_peer_ttl_range_applies_with_check_unicast_src_only() -> None:
    """``unicast_peer { IP min_ttl N max_ttl M }``: 2.2.7 checks it inside its unicast source check."""
    advert = Advert(version=3, vrid=7, priority=100, interval_cs=100, addresses=VIPS)
    ranged = RxConfig(
        vrid=7,
        version=3,
        addresses=VIPS,
        unicast=True,
        unicast_peers=frozenset({PEER}),
        check_unicast_src=True,
        peer_ttls=((PEER, 250, 254),),
    )
    at = {ttl: encode_ipv4(advert, src=PEER, dst=SRC, ident=1, ttl=ttl) for ttl in (249, 250, 254, 255)}
    assert [reason(at[t], ranged) for t in (249, 250, 254, 255)] == [
        DropReason.TTL_OUT_OF_RANGE,
        None,
        None,
        DropReason.TTL_OUT_OF_RANGE,
    ]
    unchecked = msgspec.structs.replace(ranged, check_unicast_src=False)
    assert reason(at[249], unchecked) is None
    skip = msgspec.structs.replace(ranged, skip_check_adv_addr=True)
    result = receive(at[255], {7: skip})
    assert isinstance(result, Accepted) and result.warnings == {AdvertWarning.TTL_OUT_OF_RANGE}


def test_address_order_does_not_matter() -> None:
    advert = Advert(version=3, vrid=7, priority=100, interval_cs=100, addresses=VIPS[::-1])
    result = receive(encode_ipv4(advert, src=SRC, dst=GROUP, ident=1), {7: V3_CFG})
    assert isinstance(result, Accepted) and result.warnings == frozenset()


def test_counters_cover_every_reason() -> None:
    counters = new_drop_counters()
    assert set(counters) == set(DropReason) and not any(counters.values())
    counters[DropReason.BAD_TTL] += 1
    assert counters["bad_ttl"] == 1  # type: ignore[index]


@pytest.mark.parametrize(
    ("advert", "family"),
    [
        (Advert(version=2, vrid=1, priority=1, interval_cs=150, addresses=()), 4),
        (Advert(version=2, vrid=0, priority=1, interval_cs=100, addresses=()), 4),
        (Advert(version=2, vrid=1, priority=256, interval_cs=100, addresses=()), 4),
        (Advert(version=2, vrid=1, priority=1, interval_cs=100, addresses=(), auth_data=b"short"), 4),
        (Advert(version=3, vrid=1, priority=1, interval_cs=4096, addresses=()), 4),
        (Advert(version=3, vrid=1, priority=1, interval_cs=0, addresses=()), 4),
        (Advert(version=3, vrid=1, priority=1, interval_cs=100, addresses=(A("fe80::1"),)), 4),
        (Advert(version=2, vrid=1, priority=1, interval_cs=100, addresses=()), 6),
        (Advert(version=4, vrid=1, priority=1, interval_cs=100, addresses=()), 4),
    ],
)
def test_encoder_refuses_what_keepalived_cannot_send(advert: Advert, family: int) -> None:
    src, dst = (SRC, GROUP) if family == 4 else (IPv6Address("fe80::2"), IPv6Address("ff02::12"))
    with pytest.raises(ValueError, match="cannot encode"):
        encode_vrrp(advert, src=src, dst=dst)


def test_v3_reserved_bits_are_ignored_on_receive() -> None:
    pkt = bytearray(encode_ipv4(V3, src=SRC, dst=GROUP, ident=1))
    pkt[24] |= 0xF0
    csum = struct.unpack_from("!H", pkt, 26)[0]
    pkt[26:28] = ((csum - 0xF000) % 0xFFFF).to_bytes(2, "big")  # one's-complement fix-up of the checksum
    result = receive(bytes(pkt), {7: V3_CFG})
    assert isinstance(result, Accepted) and result.advert.interval_cs == 100
