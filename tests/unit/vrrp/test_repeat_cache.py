"""The receive fast path (receivers.repeat_key / RepeatCache): a repeat decides as the full path would.

The property that matters: whenever two packets get the same key, decoding
and validating them gives the same verdict, so handing the remembered
verdict to the instance is what the full path would have done.  Packets are
real encoder output (the encoder is byte-exact with keepalived, see
test_packet_golden.py).
"""

from __future__ import annotations

import random
import socket
import struct
from ipaddress import IPv4Address, IPv6Address

from services.vrrp.kernel.receivers import RepeatCache, repeat_key
from services.vrrp.packet import (
    Accepted,
    Advert,
    Drop,
    RxConfig,
    decode,
    encode_ipv4,
    encode_vrrp,
    validate,
)
from services.vrrp.packet.checksum import internet_checksum

SRC = IPv4Address("192.0.2.1")
OTHER = IPv4Address("192.0.2.3")
GROUP = IPv4Address("224.0.0.18")
VIP = IPv4Address("192.0.2.100")
ADVERT = Advert(version=3, vrid=7, priority=200, interval_cs=10, addresses=(VIP,))
RX = RxConfig(vrid=7, version=3, interval_cs=10, addresses=(VIP,))


def packet(ident: int, advert: Advert = ADVERT, src: IPv4Address = SRC, ttl: int = 255) -> bytes:
    return encode_ipv4(advert, src=src, dst=GROUP, ident=ident, ttl=ttl)


def verdict(data: bytes) -> Accepted | Drop:
    frame = decode(data)
    return frame if isinstance(frame, Drop) else validate(frame, RX)


def decision(data: bytes) -> object:
    """What the instance acts on: everything of the verdict but the IP header kept for AH (ID, checksum)."""
    v = verdict(data)
    if isinstance(v, Drop):
        return v.reason
    f = v.frame
    return (f.advert, f.src, f.dst, f.ttl, f.checksum, f.vrrp, f.ah, v.checksum_form, v.warnings)


def key(data: bytes) -> object:
    found = repeat_key(True, data, [], str(SRC))
    return None if found is None else found


def test_adverts_differing_only_in_ip_id_share_a_key() -> None:
    one, two = packet(1), packet(2)
    assert one != two  # the IP ID and the header checksum differ
    assert key(one) == key(two) == (7, key(one)[1])  # type: ignore[index]
    assert decision(one) == decision(two)
    assert isinstance(verdict(one), Accepted)


def test_anything_the_verdict_reads_changes_the_key() -> None:
    base = key(packet(1))
    assert key(packet(1, msgspec_replace(ADVERT, priority=100))) != base
    assert key(packet(1, src=OTHER)) != base
    assert key(packet(1, ttl=254)) != base
    assert key(packet(1, msgspec_replace(ADVERT, interval_cs=20))) != base


def test_a_bad_header_checksum_or_a_short_packet_has_no_key() -> None:
    data = bytearray(packet(1))
    data[10] ^= 0xFF
    assert repeat_key(True, bytes(data), [], str(SRC)) is None
    assert repeat_key(True, packet(1)[:21], [], str(SRC)) is None
    assert repeat_key(True, b"", [], str(SRC)) is None
    assert repeat_key(False, b"\x31", [], "fe80::1%eth0") is None


def test_same_key_means_same_verdict_under_random_corruption() -> None:
    """Flip bytes anywhere (fixing the header checksum as a sender would): equal keys, equal verdicts."""
    rng = random.Random(6)
    original = packet(1)
    expected_key, expected = key(original), decision(original)
    same = 0
    for _ in range(3000):
        data = bytearray(packet(rng.randrange(1, 0xFFFF)))
        for _ in range(rng.randrange(0, 3)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.8 and len(data) >= 20:
            data[10:12] = b"\x00\x00"
            data[10:12] = struct.pack("!H", internet_checksum(bytes(data[:20])))
        if key(bytes(data)) == expected_key:
            same += 1
            assert decision(bytes(data)) == expected
    assert same > 500  # the property was exercised, not skipped


def test_ipv6_key_covers_message_source_and_ancillary_data() -> None:
    src, dst = IPv6Address("fe80::1"), IPv6Address("ff02::12")
    advert6 = msgspec_replace(ADVERT, addresses=(IPv6Address("fe80::100"),))
    msg = encode_vrrp(advert6, src=src, dst=dst)
    hop = [(socket.IPPROTO_IPV6, socket.IPV6_HOPLIMIT, struct.pack("@i", 255))]
    base = repeat_key(False, msg, hop, "fe80::1%eth0")
    assert base is not None and base[0] == 7
    assert repeat_key(False, msg, list(hop), "fe80::1%eth0") == base
    other_hop = [(socket.IPPROTO_IPV6, socket.IPV6_HOPLIMIT, struct.pack("@i", 1))]
    assert repeat_key(False, msg, other_hop, "fe80::1%eth0") != base
    assert repeat_key(False, msg, hop, "fe80::2%eth0") != base


def test_cache_hits_only_for_the_same_key_and_the_same_policy_object() -> None:
    cache = RepeatCache()
    found = key(packet(1))
    assert found is not None
    vrid, k = found  # type: ignore[misc]
    accepted = verdict(packet(1))
    assert isinstance(accepted, Accepted)
    assert cache.hit(vrid, k, RX) is None
    cache.remember(vrid, k, RX, accepted)
    assert cache.hit(vrid, key(packet(9))[1], RX) is accepted  # type: ignore[index]
    assert cache.hit(vrid, key(packet(1, src=OTHER))[1], RX) is None  # type: ignore[index]
    reloaded = RxConfig(vrid=7, version=3, interval_cs=10, addresses=(VIP,))  # equal, but a new plan
    assert cache.hit(vrid, k, reloaded) is None
    assert cache.hit(8, k, RX) is None


def msgspec_replace(advert: Advert, **changes: object) -> Advert:
    import msgspec

    return msgspec.structs.replace(advert, **changes)
