"""Cross-checks against scapy's independent VRRP layers (docs/testing.md#independent-codecs).

Both directions: our encoder → scapy decoder (fields equal, and scapy's own
checksum, recomputed from scratch, equals ours: scapy uses the pseudo-header
for VRRPv3 over IPv4, i.e. keepalived's default form), and scapy's builder
→ our decoder and validator.  scapy is only a test oracle, never our codec.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6
from scapy.layers.vrrp import VRRP, VRRPv3

from services.vrrp.packet import (
    Accepted,
    Advert,
    ChecksumForm,
    Drop,
    RxConfig,
    decode,
    encode_ipv4,
    encode_ipv6,
    receive,
)

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
GROUP4 = IPv4Address("224.0.0.18")
GROUP6 = IPv6Address("ff02::12")

ipv4s = st.integers(1, 2**32 - 1).map(IPv4Address).filter(lambda a: not a.is_multicast)
ipv6s = st.integers(1, 2**128 - 1).map(IPv6Address).filter(lambda a: not a.is_multicast)
vrids = st.integers(1, 255)
prios = st.integers(0, 255)


@st.composite
def v2_adverts(draw: st.DrawFn) -> Advert:
    return Advert(
        version=2,
        vrid=draw(vrids),
        priority=draw(prios),
        interval_cs=100 * draw(st.integers(1, 255)),
        addresses=tuple(draw(st.lists(ipv4s, max_size=12))),
        auth_type=draw(st.integers(0, 255)),
        auth_data=draw(st.binary(min_size=8, max_size=8)),
    )


@st.composite
def v3_adverts(
    draw: st.DrawFn, addrs: st.SearchStrategy[IPv4Address] | st.SearchStrategy[IPv6Address]
) -> Advert:
    # at least one address: scapy's dispatcher needs 9 bytes to recognise a v3 message
    return Advert(
        version=3,
        vrid=draw(vrids),
        priority=draw(prios),
        interval_cs=draw(st.integers(1, 4095)),
        addresses=tuple(draw(st.lists(addrs, min_size=1, max_size=8))),
    )


def _scapy_recomputed(layer: VRRP | VRRPv3, pkt: IP | IPv6) -> bytes:
    """Rebuild ``pkt`` with scapy computing the VRRP checksum itself."""
    clone = pkt.copy()
    del clone[type(layer)].chksum
    return bytes(clone)


@SETTINGS
@given(st.data(), v2_adverts())
def test_our_v2_encoding_decodes_in_scapy(data: st.DataObject, advert: Advert) -> None:
    src, dst = data.draw(ipv4s), data.draw(st.one_of(st.just(GROUP4), ipv4s))
    raw = encode_ipv4(advert, src=src, dst=dst, ident=data.draw(st.integers(0, 0xFFFF)))
    pkt = IP(raw)
    v = pkt[VRRP]
    assert (v.version, v.type, v.vrid, v.priority, v.ipcount) == (
        2,
        1,
        advert.vrid,
        advert.priority,
        len(advert.addresses),
    )
    assert (v.authtype, v.adv) == (advert.auth_type, advert.interval_cs // 100)
    assert [IPv4Address(a) for a in v.addrlist] == list(advert.addresses)
    assert v.auth1.to_bytes(4, "big") + v.auth2.to_bytes(4, "big") == advert.auth_data
    assert (pkt.tos, pkt.ttl, pkt.flags, pkt.frag, pkt.proto) == (0xC0, 255, 0, 0, 112)
    assert _scapy_recomputed(v, pkt) == raw
    del pkt.chksum
    assert bytes(pkt) == raw  # scapy agrees with our IP header checksum


@SETTINGS
@given(st.data(), v3_adverts(ipv4s))
def test_our_v3_ipv4_encoding_decodes_in_scapy(data: st.DataObject, advert: Advert) -> None:
    src, dst = data.draw(ipv4s), data.draw(st.one_of(st.just(GROUP4), ipv4s))
    raw = encode_ipv4(advert, src=src, dst=dst, ident=1)
    pkt = IP(raw)
    v = pkt[VRRPv3]
    assert (v.version, v.type, v.vrid, v.priority, v.ipcount) == (
        3,
        1,
        advert.vrid,
        advert.priority,
        len(advert.addresses),
    )
    assert (v.res, v.adv) == (0, advert.interval_cs)
    assert [IPv4Address(a) for a in v.addrlist] == list(advert.addresses)
    assert _scapy_recomputed(v, pkt) == raw


@SETTINGS
@given(st.data(), v3_adverts(ipv6s))
def test_our_v3_ipv6_encoding_decodes_in_scapy(data: st.DataObject, advert: Advert) -> None:
    src, dst = data.draw(ipv6s), data.draw(st.one_of(st.just(GROUP6), ipv6s))
    raw = encode_ipv6(advert, src=src, dst=dst, flow_label=data.draw(st.integers(0, 0xFFFFF)))
    pkt = IPv6(raw)
    v = pkt[VRRPv3]
    assert (v.version, v.vrid, v.priority, v.adv) == (3, advert.vrid, advert.priority, advert.interval_cs)
    assert [IPv6Address(a) for a in v.addrlist] == list(advert.addresses)
    assert (pkt.tc, pkt.hlim, pkt.nh) == (0xC0, 255, 112)
    assert _scapy_recomputed(v, pkt) == raw


def _accepts(raw: bytes, advert: Advert, **meta: object) -> None:
    """Our decoder reads scapy's bytes back, and a matching instance accepts them."""
    frame = decode(raw, **meta)  # type: ignore[arg-type]
    assert not isinstance(frame, Drop), frame
    assert frame.advert == advert
    unicast = not frame.dst.is_multicast
    cfg = RxConfig(
        vrid=advert.vrid,
        version=advert.version,
        interval_cs=advert.interval_cs,
        addresses=advert.addresses,
        auth_type=advert.auth_type,
        auth_data=advert.auth_data,
        unicast=unicast,
    )
    result = receive(raw, {advert.vrid: cfg}, **meta)  # type: ignore[arg-type]
    assert isinstance(result, Accepted), result
    assert result.warnings == frozenset()
    assert result.checksum_form is (ChecksumForm.PLAIN if advert.version == 2 else ChecksumForm.PSEUDO)


@SETTINGS
@given(st.data(), v2_adverts())
def test_scapy_v2_decodes_in_ours(data: st.DataObject, advert: Advert) -> None:
    if advert.auth_type == 2:  # AH is carried in protocol 51, which scapy's VRRP layer does not build
        advert = Advert(
            version=2,
            vrid=advert.vrid,
            priority=advert.priority,
            interval_cs=advert.interval_cs,
            addresses=advert.addresses,
            auth_type=1,
            auth_data=advert.auth_data,
        )
    src, dst = data.draw(ipv4s), data.draw(st.one_of(st.just(GROUP4), ipv4s))
    pkt = IP(src=str(src), dst=str(dst), ttl=255, tos=0xC0, id=9) / VRRP(
        vrid=advert.vrid,
        priority=advert.priority,
        authtype=advert.auth_type,
        adv=advert.interval_cs // 100,
        addrlist=[str(a) for a in advert.addresses],
        auth1=int.from_bytes(advert.auth_data[:4], "big"),
        auth2=int.from_bytes(advert.auth_data[4:], "big"),
    )
    _accepts(bytes(pkt), advert)


@SETTINGS
@given(st.data(), v3_adverts(ipv4s))
def test_scapy_v3_ipv4_decodes_in_ours(data: st.DataObject, advert: Advert) -> None:
    src, dst = data.draw(ipv4s), data.draw(st.one_of(st.just(GROUP4), ipv4s))
    pkt = IP(src=str(src), dst=str(dst), ttl=255) / VRRPv3(
        vrid=advert.vrid,
        priority=advert.priority,
        adv=advert.interval_cs,
        addrlist=[str(a) for a in advert.addresses],
    )
    _accepts(bytes(pkt), advert)


@SETTINGS
@given(st.data(), v3_adverts(ipv6s))
def test_scapy_v3_ipv6_decodes_in_ours(data: st.DataObject, advert: Advert) -> None:
    src, dst = data.draw(ipv6s), data.draw(st.one_of(st.just(GROUP6), ipv6s))
    pkt = IPv6(src=str(src), dst=str(dst), hlim=255) / VRRPv3(
        vrid=advert.vrid,
        priority=advert.priority,
        adv=advert.interval_cs,
        addrlist=[str(a) for a in advert.addresses],
    )
    raw = bytes(pkt)
    _accepts(raw, advert)
    _accepts(raw[40:], advert, src=src, dst=dst, ttl=255)  # as an IPv6 raw socket delivers it
