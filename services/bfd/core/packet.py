"""The BFD Control packet (RFC 5880 section 4.1): encode, decode and the header checks of 6.8.6.

Only the mandatory section is spoken: lifeline, like keepalived 2.2.7, runs
no authentication, no echo function and no demand mode.  A packet that
fails a check raises ``MalformedPacket`` naming the rule, so the shell can
count it by reason and drop it.
"""

from __future__ import annotations

import enum
import struct

import msgspec

VERSION = 1
HEADER_LEN = 24
"""The mandatory section's length; 26 is the least with the A bit set (6.8.6)."""

_FORMAT = struct.Struct("!BBBBIIIII")

P_BIT, F_BIT, C_BIT, A_BIT, D_BIT, M_BIT = 0x20, 0x10, 0x08, 0x04, 0x02, 0x01


class SessionState(enum.IntEnum):
    """The two-bit State field and bfd.SessionState (RFC 5880 4.1, 6.2)."""

    ADMIN_DOWN = 0
    DOWN = 1
    INIT = 2
    UP = 3


class Diag(enum.IntEnum):
    """The Diagnostic codes of RFC 5880 4.1 that a session without echo or concatenation sets."""

    NONE = 0
    DETECTION_TIME_EXPIRED = 1
    ECHO_FAILED = 2
    NEIGHBOR_DOWN = 3
    FORWARDING_RESET = 4
    PATH_DOWN = 5
    CONCATENATED_PATH_DOWN = 6
    ADMIN_DOWN = 7
    REVERSE_CONCATENATED_PATH_DOWN = 8


class MalformedPacket(ValueError):
    """A datagram 6.8.6 says to discard; ``reason`` is a short counter label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


class ControlPacket(msgspec.Struct, frozen=True, kw_only=True):
    """The mandatory section; intervals in microseconds as on the wire."""

    state: SessionState
    diag: int = Diag.NONE
    poll: bool = False
    final: bool = False
    control_independent: bool = False
    demand: bool = False
    detect_mult: int
    my_discr: int
    your_discr: int = 0
    desired_min_tx_us: int
    required_min_rx_us: int
    required_min_echo_rx_us: int = 0


def encode(packet: ControlPacket) -> bytes:
    """The 24-byte wire form; P and F together are a caller bug (4.1 forbids it)."""
    if packet.poll and packet.final:
        raise ValueError("a BFD Control packet must not have both P and F set")
    flags = (packet.state << 6) | (P_BIT if packet.poll else 0) | (F_BIT if packet.final else 0)
    flags |= (C_BIT if packet.control_independent else 0) | (D_BIT if packet.demand else 0)
    return _FORMAT.pack(
        (VERSION << 5) | (packet.diag & 0x1F),
        flags,
        packet.detect_mult,
        HEADER_LEN,
        packet.my_discr,
        packet.your_discr,
        packet.desired_min_tx_us,
        packet.required_min_rx_us,
        packet.required_min_echo_rx_us,
    )


def decode(data: bytes) -> ControlPacket:
    """Parse one UDP payload, applying every check 6.8.6 makes before a session is chosen."""
    if len(data) < HEADER_LEN:
        raise MalformedPacket("short", f"{len(data)} bytes, a Control packet has at least {HEADER_LEN}")
    vd, flags, mult, length, my_discr, your_discr, tx, rx, echo = _FORMAT.unpack_from(data)
    if vd >> 5 != VERSION:
        raise MalformedPacket("version", f"version {vd >> 5}, not {VERSION}")
    auth = bool(flags & A_BIT)
    if length < (HEADER_LEN + 2 if auth else HEADER_LEN):
        raise MalformedPacket("length", f"Length field {length} is below the minimum")
    if length > len(data):
        raise MalformedPacket("length", f"Length field {length} exceeds the {len(data)}-byte payload")
    if mult == 0:
        raise MalformedPacket("detect_mult", "Detect Mult is zero")
    if flags & M_BIT:
        raise MalformedPacket("multipoint", "the Multipoint bit is set")
    if my_discr == 0:
        raise MalformedPacket("my_discr", "My Discriminator is zero")
    state = SessionState(flags >> 6)
    if your_discr == 0 and state not in (SessionState.DOWN, SessionState.ADMIN_DOWN):
        raise MalformedPacket("your_discr", f"Your Discriminator is zero in state {state.name}")
    if auth:
        raise MalformedPacket("auth", "the A bit is set and no authentication is configured")
    return ControlPacket(
        state=state,
        diag=vd & 0x1F,
        poll=bool(flags & P_BIT),
        final=bool(flags & F_BIT),
        control_independent=bool(flags & C_BIT),
        demand=bool(flags & D_BIT),
        detect_mult=mult,
        my_discr=my_discr,
        your_discr=your_discr,
        desired_min_tx_us=tx,
        required_min_rx_us=rx,
        required_min_echo_rx_us=echo,
    )
