"""Malformed input never raises: any bytes become a ``Frame`` or a ``Drop``."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

from hypothesis import given, settings
from hypothesis import strategies as st

from services.vrrp.packet import (
    Accepted,
    Advert,
    AuthType,
    ChecksumMode,
    Drop,
    Frame,
    RxConfig,
    decode,
    encode_ipv4,
    encode_ipv4_ah,
    encode_ipv6,
    receive,
)

SRC4, GROUP4 = IPv4Address("192.0.2.1"), IPv4Address("224.0.0.18")
SRC6, GROUP6 = IPv6Address("fe80::1"), IPv6Address("ff02::12")
VIP4 = (IPv4Address("192.0.2.100"),)
KEY = b"secret12"

SEEDS = [
    encode_ipv4(
        Advert(
            version=2,
            vrid=1,
            priority=100,
            interval_cs=100,
            addresses=VIP4,
            auth_type=AuthType.PASS,
            auth_data=KEY,
        ),
        src=SRC4,
        dst=GROUP4,
        ident=1,
    ),
    encode_ipv4(
        Advert(version=3, vrid=1, priority=100, interval_cs=100, addresses=VIP4),
        src=SRC4,
        dst=GROUP4,
        ident=1,
    ),
    encode_ipv4_ah(
        Advert(version=2, vrid=1, priority=100, interval_cs=100, addresses=VIP4),
        src=SRC4,
        dst=GROUP4,
        ident=1,
        seq=1,
        key=KEY,
    ),
    encode_ipv6(
        Advert(version=3, vrid=1, priority=100, interval_cs=100, addresses=(SRC6,)), src=SRC6, dst=GROUP6
    ),
]
CONFIGS = [
    {1: RxConfig(vrid=1, version=2, addresses=VIP4, auth_type=AuthType.PASS, auth_data=KEY)},
    {1: RxConfig(vrid=1, version=3, addresses=VIP4, checksum_mode=ChecksumMode.AS_V2)},
    {1: RxConfig(vrid=1, version=2, addresses=VIP4, auth_type=AuthType.AH, auth_data=KEY)},
    {1: RxConfig(vrid=1, version=3, unicast=True, checksum_mode=ChecksumMode.OLD_UNICAST)},
]


def _check(data: bytes) -> None:
    assert isinstance(decode(data), Frame | Drop)
    for instances in CONFIGS:
        assert isinstance(receive(data, instances), Accepted | Drop)
    for src, dst in ((SRC4, GROUP4), (SRC6, GROUP6)):
        assert isinstance(receive(data, CONFIGS[1], src=src, dst=dst, ttl=255), Accepted | Drop)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    _check(data)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(SEEDS),
    st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=4),
    st.integers(0, 120),
    st.binary(max_size=8),
)
def test_mutated_adverts_never_raise(
    seed: bytes, flips: list[tuple[int, int]], cut: int, tail: bytes
) -> None:
    """Near-valid packets reach the deeper checks that pure noise never gets to."""
    data = bytearray(seed)
    for pos, value in flips:
        if pos < len(data):
            data[pos] = value
    _check(bytes(data[:cut]) + tail)
    _check(bytes(data))
