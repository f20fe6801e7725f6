"""Interop: lifeline's bfd service against keepalived 2.2.7's BFD child, on one segment.

What is proven, each from both daemons' logs: the session comes Up whoever
starts it; the timers in force follow the slower side (RFC 5880 6.8.2,
6.8.4) in both directions; a peer killed with SIGKILL (no AdminDown sent) is
detected within its detection time plus a bound, measured from its last
packet and printed; a ``passive`` lifeline session sends nothing before its
peer speaks and still comes Up once it does.
"""

from __future__ import annotations

import signal
import socket
import struct
import time

import pytest

from shared.lab.capture import Packet
from shared.lab.netns import in_namespace
from shared.lab.segment import Segment
from shared.lab.wait import wait_until
from tests.interop.bfd_peers import (
    Timers,
    bfd_config,
    bfd_status,
    start_keepalived,
    start_lifeline_bfd,
    wait_log,
)

pytestmark = pytest.mark.usefixtures("netns_session")

UP_WITHIN = 15.0
"""Seconds for the three-way handshake: idle packets are 1 s apart, jittered, and start-up takes a few."""

DETECTION_BOUND_MS = 100.0
"""How much later than the detection time a lost peer may be declared down (a loaded 2-core box)."""

KEEPALIVED = Timers(min_tx=50, min_rx=20, multiplier=3)
OURS = Timers(min_tx=10, min_rx=40, multiplier=4)


def test_sessions_come_up_and_timers_follow_the_slower_side() -> None:
    """Ours: tx max(10, 20) = 20 ms, detect 3 x max(40, 50) = 150 ms; keepalived: 4 x max(20, 10) = 80 ms."""
    with Segment(("a", "b")) as seg:
        a, b = seg.host("a"), seg.host("b")
        ka = start_keepalived(a, bfd_config(seg, 1, 2, KEEPALIVED))
        ours = start_lifeline_bfd(b, bfd_config(seg, 2, 1, OURS))
        wait_log(ours, r"bfd1: (DOWN|INIT) -> UP", UP_WITHIN)
        wait_log(ka, r"\(bfd1\) Entering Up state", UP_WITHIN)
        wait_log(ours, r"bfd1: transmit every 20 ms, detection time 150 ms", 5.0)
        wait_log(ka, r"Detection time is 80000 us", 5.0)


@pytest.mark.parametrize("killed", ["keepalived", "lifeline"])
def test_a_killed_peer_is_detected_within_detection_time(killed: str) -> None:
    """SIGKILL sends no AdminDown: the survivor must see the silence within its detection time (+ bound)."""
    with Segment(("a", "b")) as seg:
        a, b = seg.host("a"), seg.host("b")
        ka = start_keepalived(a, bfd_config(seg, 1, 2, KEEPALIVED))
        ours = start_lifeline_bfd(b, bfd_config(seg, 2, 1, OURS))
        wait_log(ours, r"bfd1: transmit every 20 ms, detection time 150 ms", UP_WITHIN)
        wait_log(ka, r"Detection time is 80000 us", UP_WITHIN)
        if killed == "keepalived":
            mark = len(ours.output())
            ka.kill()
            found = wait_log(
                ours, r"bfd1: UP -> DOWN \(diag detection_time_expired\), ([\d.]+) ms", 5.0, mark
            )
            silent_ms = float(found.group(1))
            print(f"\nlifeline: peer silent -> Down after {silent_ms:.1f} ms (detection time 150 ms)")
            assert 150.0 <= silent_ms <= 150.0 + DETECTION_BOUND_MS
        else:
            mark = len(ka.output())
            killed_at = time.monotonic()
            ours.kill()
            wait_log(ka, r"\(bfd1\) Entering Down state", 5.0, mark)
            print(f"\nkeepalived: saw lifeline's silence within {time.monotonic() - killed_at:.2f} s (80 ms)")


def test_passive_sends_nothing_until_the_peer_speaks() -> None:
    """A passive lifeline session is silent to a listener on the peer port, then Up with keepalived."""
    with Segment(("a", "b")) as seg:
        a, b = seg.host("a"), seg.host("b")
        listener = in_namespace(a.name, lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        with listener:
            listener.bind((seg.address(1), 3784))
            listener.settimeout(3.0)  # an active session sends every idle_tx (1 s): two or three by now
            ours = start_lifeline_bfd(b, bfd_config(seg, 2, 1, Timers(passive=True)))
            wait_log(ours, r"lifeline-bfd ready", 15.0)
            with pytest.raises(TimeoutError):
                listener.recvfrom(1500)
        ka = start_keepalived(a, bfd_config(seg, 1, 2, KEEPALIVED))
        wait_log(ours, r"bfd1: (DOWN|INIT) -> UP", UP_WITHIN)
        wait_log(ka, r"\(bfd1\) Entering Up state", UP_WITHIN)


def _datagram(state: int, *, mult: int = 3, version: int = 1, length: int = 24, your: int = 0) -> bytes:
    """A Control packet as a peer would write it (``state`` in the two high bits of byte 1)."""
    return struct.pack("!BBBBIIIII", version << 5, state << 6, mult, length, 99, your, 1000, 1000, 0)


def test_bad_packets_are_counted_and_dropped_and_a_reload_retimes_in_place() -> None:
    """From the peer's own address: malformed ones by reason; a Down packet with TTL 64 must not take the
    session down (RFC 5881's TTL 255 rule); then ``min_tx`` changed by a SIGHUP, the session stays Up."""
    with Segment(("a", "b")) as seg:
        a, b = seg.host("a"), seg.host("b")
        ka = start_keepalived(a, bfd_config(seg, 1, 2, KEEPALIVED))
        ours = start_lifeline_bfd(b, bfd_config(seg, 2, 1, OURS))
        wait_log(ours, r"bfd1: transmit every 20 ms, detection time 150 ms", UP_WITHIN)
        sender = in_namespace(a.name, lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        with sender:
            sender.bind((seg.address(1), 0))
            target = (seg.address(2), 3784)
            sender.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 255)
            for bad in (b"\x20" * 10, _datagram(1, version=2), _datagram(1, mult=0), _datagram(3, your=0)):
                sender.sendto(bad, target)
            sender.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 64)
            sender.sendto(_datagram(1), target)  # a valid "Down" that would end the session at TTL 255
        expected = {"short": 1, "version": 1, "detect_mult": 1, "your_discr": 1}
        wait_until("the drops counted", lambda: bfd_status(b)["dropped"], 10.0, expect=expected)
        session = bfd_status(b)["sessions"]["bfd1"]
        assert session["counters"]["dropped_ttl"] == 1 and session["state"] == "UP", session

        mark = len(ours.output())
        (b.workdir / "lifeline-bfd.conf").write_text(
            bfd_config(seg, 2, 1, Timers(min_tx=30, min_rx=40, multiplier=4))
        )
        ours.send(signal.SIGHUP)
        wait_log(ours, r"lifeline-bfd reloaded: 0 added, 0 removed, 1 retimed", 10.0, mark)
        wait_log(ours, r"bfd1: transmit every 30 ms, detection time 150 ms", 5.0, mark)
        assert "DOWN" not in ours.output()[mark:] and "Entering Down" not in ka.output()


SAME = Timers(min_tx=20, min_rx=20, multiplier=3)
"""Both sides alike (detection time 60 ms each), so keepalived's figure and ours compare."""


def _bfd_on_wire(packets: list[Packet]) -> list[tuple[int, str, int]]:
    """(kernel time ns, source address, State) of each IPv4 BFD Control packet among ``packets``."""
    out = []
    for p in packets:
        frame = p.data
        if len(frame) < 14 + 20 + 8 + 24 or frame[12:14] != b"\x08\x00" or frame[23] != socket.IPPROTO_UDP:
            continue
        ihl = (frame[14] & 0x0F) * 4
        udp = 14 + ihl
        if struct.unpack_from("!H", frame, udp + 2)[0] != 3784:
            continue
        out.append((p.ts_ns, socket.inet_ntoa(frame[26:30]), frame[udp + 8 + 1] >> 6))
    return out


@pytest.mark.parametrize("killed", ["keepalived", "lifeline"])
def test_detection_on_the_wire_keepalived_beside_lifeline(killed: str) -> None:
    """From the victim's last packet to the survivor's first Down packet, seen by a third host.

    lifeline sends its Down at once; keepalived's may wait for its next
    transmission (at most one 20 ms interval), so the bound allows an
    interval: each must be within detection time + interval + the bound.
    """
    with Segment(("a", "b")) as seg:
        a, b = seg.host("a"), seg.host("b")
        ka = start_keepalived(a, bfd_config(seg, 1, 2, SAME))
        ours = start_lifeline_bfd(b, bfd_config(seg, 2, 1, SAME))
        wait_log(ours, r"bfd1: transmit every 20 ms, detection time 60 ms", UP_WITHIN)
        wait_log(ka, r"Detection time is 60000 us", UP_WITHIN)
        victim, survivor = (
            (seg.address(1), seg.address(2)) if killed == "keepalived" else (seg.address(2), seg.address(1))
        )
        seg.switch.ip(
            "link", "set", "br0", "type", "bridge", "ageing_time", "0"
        )  # a hub: the observer sees unicast
        with seg.capture() as capture:
            time.sleep(0.2)  # a few packets each way on the wire first (the capture keeps them all)
            (ka if killed == "keepalived" else ours).kill()
            seen: list[tuple[int, str, int]] = []

            def survivor_down() -> bool:
                seen.extend(_bfd_on_wire(capture.drain(0.05)))
                return any(src == survivor and state == 1 for _, src, state in seen)

            wait_until(f"{survivor} to send Down", survivor_down, 5.0)
        last = max(ts for ts, src, _ in seen if src == victim)
        down = min(ts for ts, src, state in seen if src == survivor and state == 1)
        ms = (down - last) / 1e6
        print(
            f"\n{'lifeline' if killed == 'keepalived' else 'keepalived'} on the wire: last packet of the "
            f"killed peer -> first Down packet {ms:.1f} ms (detection 60 ms, interval 20 ms)"
        )
        assert 60.0 <= ms <= 60.0 + 20.0 + DETECTION_BOUND_MS


def test_ipv6_session_comes_up_with_keepalived_hop_limits() -> None:
    """IPv6 both ways at keepalived's default hop limit (64, sent and required); the slower side wins."""
    with Segment(("a", "b")) as seg:
        a, b = seg.host("a"), seg.host("b")
        six = {1: f"fd00:{seg.net:x}::1", 2: f"fd00:{seg.net:x}::2"}
        for host, index in ((a, 1), (b, 2)):
            host.ip("addr", "add", f"{six[index]}/64", "dev", "eth0", "nodad")
        ka = start_keepalived(a, KEEPALIVED.block("bfd1", six[2], six[1]))
        ours = start_lifeline_bfd(b, OURS.block("bfd1", six[1], six[2]))
        wait_log(ours, r"bfd1: (DOWN|INIT) -> UP", UP_WITHIN)
        wait_log(ka, r"\(bfd1\) Entering Up state", UP_WITHIN)
        wait_log(ours, r"bfd1: transmit every 20 ms, detection time 150 ms", 5.0)
