"""The Control packet codec: round trips and every discard rule of RFC 5880 6.8.6 it owns."""

from __future__ import annotations

import struct

import pytest

from services.bfd.core.packet import (
    A_BIT,
    M_BIT,
    ControlPacket,
    MalformedPacket,
    SessionState,
    decode,
    encode,
)

GOOD = ControlPacket(
    state=SessionState.UP,
    diag=3,
    poll=True,
    detect_mult=5,
    my_discr=0x01020304,
    your_discr=0xA0B0C0D0,
    desired_min_tx_us=10_000,
    required_min_rx_us=20_000,
)


def test_round_trip_and_wire_layout() -> None:
    wire = encode(GOOD)
    assert len(wire) == 24
    assert wire[0] == (1 << 5) | 3  # version 1, diag 3
    assert wire[1] == (3 << 6) | 0x20  # Up, P
    assert wire[2:4] == bytes([5, 24])
    assert struct.unpack("!IIIII", wire[4:]) == (0x01020304, 0xA0B0C0D0, 10_000, 20_000, 0)
    assert decode(wire) == GOOD


def test_p_and_f_together_are_refused_on_encode() -> None:
    with pytest.raises(ValueError, match="both P and F"):
        encode(
            ControlPacket(
                state=SessionState.UP,
                poll=True,
                final=True,
                detect_mult=3,
                my_discr=1,
                your_discr=2,
                desired_min_tx_us=1,
                required_min_rx_us=1,
            )
        )


def _patched(offset: int, value: int) -> bytes:
    wire = bytearray(encode(GOOD))
    wire[offset] = value
    return bytes(wire)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (encode(GOOD)[:23], "short"),
        (_patched(0, (2 << 5) | 3), "version"),
        (_patched(3, 23), "length"),
        (_patched(3, 25), "length"),
        (_patched(2, 0), "detect_mult"),
        (_patched(1, (3 << 6) | M_BIT), "multipoint"),
        (encode(GOOD)[:4] + bytes(4) + encode(GOOD)[8:], "my_discr"),
        (encode(GOOD)[:8] + bytes(4) + encode(GOOD)[12:], "your_discr"),
        (_patched(1, (3 << 6) | A_BIT), "length"),
        ((_patched(1, (3 << 6) | A_BIT)[:3] + bytes([26]) + encode(GOOD)[4:] + b"\x01\x02"), "auth"),
    ],
    ids=[
        "short",
        "version",
        "length-small",
        "length-over-payload",
        "mult-0",
        "multipoint",
        "my-discr-0",
        "your-discr-0-while-up",
        "auth-too-short",
        "auth-unconfigured",
    ],
)
def test_discard_rules(data: bytes, reason: str) -> None:
    with pytest.raises(MalformedPacket) as caught:
        decode(data)
    assert caught.value.reason == reason


def test_your_discr_zero_is_fine_in_down_and_admin_down() -> None:
    for state in (SessionState.DOWN, SessionState.ADMIN_DOWN):
        packet = ControlPacket(
            state=state, detect_mult=3, my_discr=9, desired_min_tx_us=1, required_min_rx_us=1
        )
        assert decode(encode(packet)) == packet


def test_a_length_within_the_payload_is_fine() -> None:
    assert decode(_patched(3, 26) + b"\x01\x02") == GOOD


def test_trailing_bytes_beyond_length_are_ignored() -> None:
    assert decode(encode(GOOD) + b"\x00" * 8) == GOOD
