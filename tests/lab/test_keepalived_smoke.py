"""Interop smoke test: the real keepalived 2.2.7 as MASTER in namespace a, our IO layer in b.

Proves against the reference implementation, not our own encoder, that our
receive socket gets keepalived's adverts (TTL 255) and the codec accepts
them byte for byte as it would build them itself, that keepalived's GARPs
are exactly :func:`garp_frame`, and that its priority-0 advert on shutdown
is seen.  Takes about 4 s: keepalived waits Master_Down_Interval (3 x 1 s +
skew) before it becomes MASTER with priority 150, as the reference says.
"""

from __future__ import annotations

import shutil
import signal
import socket
import struct
import time
from collections.abc import Iterator
from ipaddress import IPv4Address

import pytest

from services.vrrp.kernel import sockets
from services.vrrp.kernel.announce import ETH_P_ARP, garp_frame
from services.vrrp.packet import VRRP_GROUP_V4, Accepted, RxConfig, encode_ipv4, receive
from shared.lab.capture import Capture, readable
from shared.lab.daemon import Daemon
from shared.lab.segment import Host

pytestmark = [
    pytest.mark.root,
    pytest.mark.interop,
    pytest.mark.timeout(60),
    pytest.mark.skipif(shutil.which("keepalived") is None, reason="keepalived is not installed"),
]

VIP = IPv4Address("192.0.2.100")
CONFIG = """\
global_defs {{
    router_id lab_a
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 1
    virtual_ipaddress {{
        {vip}/32
    }}
}}
"""


@pytest.fixture
def keepalived_master(pair: list[Host]) -> Iterator[Daemon]:
    """keepalived in namespace a; always stopped (by its own pid) after the test."""
    a, _ = pair
    daemon = a.start("keepalived", CONFIG.format(vip=VIP))
    try:
        yield daemon
    finally:
        daemon.stop()


def collect(sock: socket.socket, want: int, timeout: float) -> list[sockets.Received]:
    got: list[sockets.Received] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and readable(sock, max(0.0, deadline - time.monotonic())):
        packet = sockets.recv_packet(sock)
        if packet is not None:
            got.append(packet)
    return got


def test_keepalived_adverts_and_garps_are_understood(pair: list[Host], keepalived_master: Daemon) -> None:
    a, b = pair
    rx = sockets.open_recv("eth0", group=VRRP_GROUP_V4, netns=b.name)
    cfg = RxConfig(vrid=51, version=2, interval_cs=100, addresses=(VIP,))
    try:
        with Capture(b.name, "eth0", ETH_P_ARP) as cap:
            adverts = collect(rx, 2, 8.0)
            garps = cap.frames(5, 3.0, lambda f: f[28:32] == VIP.packed)
        assert len(adverts) == 2, "keepalived never became MASTER"
        for packet in adverts:
            assert (packet.src, packet.dst, packet.ttl) == (a.ipv4, VRRP_GROUP_V4, 255)
            verdict = receive(packet.data, {51: cfg})
            assert isinstance(verdict, Accepted) and verdict.advert.priority == 150
            ident = struct.unpack_from("!H", packet.data, 4)[0]
            assert packet.data == encode_ipv4(verdict.advert, src=a.ipv4, dst=VRRP_GROUP_V4, ident=ident)
        assert len(garps) == 5  # vrrp_garp_master_repeat default
        assert all(frame == garp_frame(a.mac, VIP) for frame in garps)

        keepalived_master.send(signal.SIGTERM)
        last = collect(rx, 1, 5.0)
        assert last and isinstance(verdict := receive(last[0].data, {51: cfg}), Accepted)
        assert verdict.advert.priority == 0  # a backup takes over after skew time
    finally:
        rx.close()
