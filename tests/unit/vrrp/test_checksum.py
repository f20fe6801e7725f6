"""ones_complement_sum (one big-integer mod 0xFFFF) against the RFC 1071 word-by-word fold."""

from __future__ import annotations

import random

from services.vrrp.packet.checksum import internet_checksum, ones_complement_sum


def rfc1071(data: bytes) -> int:
    """The textbook loop: add 16-bit words, fold the carries back in."""
    if len(data) % 2:
        data += b"\x00"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return total


def test_matches_the_word_by_word_fold_on_random_and_edge_buffers() -> None:
    rng = random.Random(1071)
    edges = [b"", b"\x00", b"\xff", b"\xff\xff", b"\xff\xff" * 9, b"\xff\xfe\x00\x01", bytes(20)]
    randoms = [rng.randbytes(rng.randrange(0, 80)) for _ in range(5000)]
    for data in edges + randoms:
        assert ones_complement_sum(data) == rfc1071(data), data


def test_a_filled_in_checksum_verifies_to_zero() -> None:
    header = bytearray(bytes.fromhex("45c00020000b0000ff700000c0000201e0000012"))
    header[10:12] = internet_checksum(bytes(header)).to_bytes(2, "big")
    assert internet_checksum(bytes(header)) == 0
