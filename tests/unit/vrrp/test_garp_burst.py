"""GARP bursts: what leaves in the caller's tick, and what is paced afterwards."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv6Address

import pytest

from services.vrrp.kernel.announce import Announcer

MAC = "02:00:00:00:00:01"
V4 = [IPv4Address("192.0.2.1"), IPv4Address("192.0.2.2"), IPv4Address("192.0.2.3")]
V6 = IPv6Address("2001:db8::1")


class Wire:
    """A datagram socketpair standing in for the packet socket: frames are read back in order."""

    def __init__(self) -> None:
        self.tx, self.rx = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.rx.setblocking(False)

    def frames(self) -> list[bytes]:
        out: list[bytes] = []
        while True:
            try:
                out.append(self.rx.recv(2048))
            except BlockingIOError:
                return out

    def close(self) -> None:
        self.tx.close()
        self.rx.close()


@pytest.fixture
def wire() -> Iterator[Wire]:
    w = Wire()
    yield w
    w.close()


def announcer(wire: Wire) -> Announcer:
    return Announcer(wire.tx, mac=MAC, ipv6_src=IPv6Address("fe80::1"))


def test_unpaced_burst_sends_the_first_round_at_once_and_the_rest_later(wire: Wire) -> None:
    ann = announcer(wire)
    sent, rest = ann.start_burst(V4, count=5, interval=0.0)
    assert sent == 3 and [f[-4:] for f in wire.frames()] == [v.packed for v in V4]
    assert rest is not None
    assert asyncio.run(rest) == 12
    assert len(wire.frames()) == 12


def test_paced_burst_sends_only_the_first_frame_at_once(wire: Wire) -> None:
    ann = announcer(wire)
    sent, rest = ann.start_burst(V4, count=2, interval=0.001)
    assert sent == 1 and len(wire.frames()) == 1
    assert rest is not None and asyncio.run(rest) == 5


def test_a_single_round_is_all_inline(wire: Wire) -> None:
    sent, rest = announcer(wire).start_burst([*V4, V6], count=1, interval=0.0)
    assert (sent, rest) == (4, None)
    assert len(wire.frames()) == 4


def test_ipv6_pacing_follows_gna_interval(wire: Wire) -> None:
    sent, rest = announcer(wire).start_burst([V6, V4[0]], count=1, interval=0.5, na_interval=0.0)
    assert sent == 2 and rest is None  # no pause after the NA, none needed after the last frame


def test_nothing_to_announce(wire: Wire) -> None:
    assert announcer(wire).start_burst([], count=5, interval=0.0) == (0, None)
    assert announcer(wire).start_burst(V4, count=0, interval=0.0) == (0, None)


def test_send_garps_is_the_whole_burst(wire: Wire) -> None:
    assert asyncio.run(announcer(wire).send_garps(V4, count=2, interval=0.0)) == 6
    assert len(wire.frames()) == 6
