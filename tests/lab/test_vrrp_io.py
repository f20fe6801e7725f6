"""The vrrp IO layer in real network namespaces: sockets, VIPs, GARP/NA, link state.

Every test builds its own hosts on one bridge (``pair`` / ``trio`` from
conftest: unique names, always deleted) and talks to the kernel for real: a
packet sent by our socket in namespace a is received by our socket in
namespace b and judged by the codec; addresses are checked with ``ip -j``,
the operator's view; announcement frames are captured with AF_PACKET.
Sockets are created in the namespaces with ``netns=NAME`` (see
``shared.lab.netns.in_namespace`` for when a thread must join a namespace
instead), so the test thread never changes namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections.abc import AsyncIterator, Callable, Iterator
from ipaddress import IPv4Address, IPv6Address

import pytest
from pyroute2 import AsyncIPRoute
from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6NDOptDstLLAddr, IPv6
from scapy.layers.l2 import ARP, Ether

from services.vrrp.kernel import sockets
from services.vrrp.kernel.addresses import (
    LinkState,
    add_vip,
    has_vip,
    interface_info,
    link_states,
    remove_vip,
)
from services.vrrp.kernel.announce import ETH_P_ARP, ETH_P_IPV6, Announcer, garp_frame
from services.vrrp.packet import (
    VRRP_GROUP_V4,
    VRRP_GROUP_V6,
    Accepted,
    Advert,
    AuthType,
    ChecksumForm,
    Frame,
    RxConfig,
    auth_pass_bytes,
    encode_ipv4,
    encode_vrrp,
    receive,
)
from shared.lab.capture import Capture, readable
from shared.lab.netns import in_namespace
from shared.lab.segment import Host
from tests.lab.test_vrrp_vip_netlink import VIPS, assert_every_field_applied

pytestmark = [pytest.mark.root, pytest.mark.timeout(60)]

RX_TIMEOUT = 2.0
VIP4 = IPv4Address("192.0.2.100")
VIP6 = IPv6Address("2001:db8::100")


def advert_v2(*addresses: IPv4Address, priority: int = 150) -> Advert:
    return Advert(version=2, vrid=51, priority=priority, interval_cs=100, addresses=addresses)


def recv_one(sock: socket.socket, timeout: float = RX_TIMEOUT) -> sockets.Received:
    """The next packet on a non-blocking receive socket, or fail the test."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if readable(sock, deadline - time.monotonic()):
            packet = sockets.recv_packet(sock)
            if packet is not None:
                return packet
    pytest.fail(f"nothing received within {timeout} s")


def nothing_more(sock: socket.socket, timeout: float = 0.2) -> bool:
    return not readable(sock, timeout)


@contextlib.contextmanager
def closing_all(*socks: socket.socket) -> Iterator[None]:
    try:
        yield
    finally:
        for sock in socks:
            sock.close()


# --------------------------------------------------------------------------- adverts


def test_multicast_v2_advert_crosses_segment_with_keepalived_ip_header(pair: list[Host]) -> None:
    a, b = pair
    tx = sockets.open_send_v4("eth0", netns=a.name)
    rx = sockets.open_recv("eth0", group=VRRP_GROUP_V4, netns=b.name)
    with closing_all(tx, rx):
        advert = advert_v2(VIP4)
        ids = sockets.IpIdCounter()
        for _ in range(2):
            sockets.send_advert_v4(tx, advert, src=a.ipv4, dsts=[VRRP_GROUP_V4], ids=ids)
        got = [recv_one(rx), recv_one(rx)]

    for ident, packet in enumerate(got, start=1):
        assert packet.src == a.ipv4 and packet.dst == VRRP_GROUP_V4 and packet.ttl == 255
        assert packet.whole_packet
        # byte for byte what the codec built: the kernel added nothing (IP_HDRINCL)
        assert packet.data == encode_ipv4(advert, src=a.ipv4, dst=VRRP_GROUP_V4, ident=ident)
        tos, _total, ip_id, frag = struct.unpack_from("!xBHHH", packet.data)
        assert (tos, ip_id, frag & 0x4000) == (0xC0, ident, 0)  # TOS 0xC0, ID 1 then 2, DF clear
        frame = packet.decode()
        assert isinstance(frame, Frame) and frame.advert == advert
        verdict = receive(packet.data, {51: RxConfig(vrid=51, addresses=(VIP4,))})
        assert isinstance(verdict, Accepted)


def test_multicast_loop_off_and_multicast_all_off(pair: list[Host]) -> None:
    """LOOP 0: the sender's own receive socket never hears it.  ALL 0: a socket hears only the
    groups *it* joined, even when another socket on the same host joined 224.0.0.18."""
    a, b = pair
    tx = sockets.open_send_v4("eth0", netns=a.name)
    own = sockets.open_recv("eth0", group=VRRP_GROUP_V4, netns=a.name)
    other = sockets.open_recv("eth0", group=IPv4Address("224.0.0.99"), netns=b.name)
    right = sockets.open_recv("eth0", group=VRRP_GROUP_V4, netns=b.name)
    with closing_all(tx, own, other, right):
        sockets.send_advert_v4(
            tx, advert_v2(VIP4), src=a.ipv4, dsts=[VRRP_GROUP_V4], ids=sockets.IpIdCounter()
        )
        assert recv_one(right).src == a.ipv4
        assert nothing_more(own)
        assert nothing_more(other)


def test_unicast_v3_one_copy_per_peer_with_own_id_and_pseudo_header(trio: list[Host]) -> None:
    a, b, c = trio
    tx = sockets.open_send_v4("eth0", netns=a.name)
    rx_b = sockets.open_recv("eth0", group=None, bind_address=b.ipv4, netns=b.name)
    rx_c = sockets.open_recv("eth0", group=None, bind_address=c.ipv4, netns=c.name)
    advert = Advert(version=3, vrid=7, priority=200, interval_cs=50, addresses=(VIP4,))
    with closing_all(tx, rx_b, rx_c):
        sent = sockets.send_advert_v4(
            tx, advert, src=a.ipv4, dsts=[b.ipv4, c.ipv4], ids=sockets.IpIdCounter()
        )
        assert sent == 2
        got_b, got_c = recv_one(rx_b), recv_one(rx_c)
        assert nothing_more(rx_b) and nothing_more(rx_c)

    for packet, me, ident in ((got_b, b, 1), (got_c, c, 2)):
        assert (packet.src, packet.dst, packet.ttl) == (a.ipv4, me.ipv4, 255)
        assert struct.unpack_from("!H", packet.data, 4)[0] == ident
        cfg = RxConfig(vrid=7, version=3, interval_cs=50, addresses=(VIP4,), unicast=True)
        verdict = receive(packet.data, {7: cfg})
        assert isinstance(verdict, Accepted) and verdict.checksum_form is ChecksumForm.PSEUDO


def test_send_on_a_down_link_is_counted_not_raised(pair: list[Host]) -> None:
    """A MASTER whose link goes down keeps running: the send returns 0 (ENETDOWN), and the
    copies to other destinations are still attempted.  (With SO_BINDTODEVICE even an
    off-subnet unicast peer is treated as on-link by the kernel, so "no route" never happens.)"""
    a, _ = pair
    tx = sockets.open_send_v4("eth0", netns=a.name)
    advert = Advert(version=3, vrid=7, priority=100, interval_cs=100, addresses=(VIP4,))
    with closing_all(tx):
        a.ip("link", "set", "eth0", "down")
        dsts = [VRRP_GROUP_V4, IPv4Address("198.51.100.1")]
        assert sockets.send_advert_v4(tx, advert, src=a.ipv4, dsts=dsts, ids=sockets.IpIdCounter()) == 0


def test_ah_advert_uses_protocol_51_and_verifies(pair: list[Host]) -> None:
    a, b = pair
    key = auth_pass_bytes("secret")
    tx = sockets.open_send_v4("eth0", proto=sockets.IPPROTO_AH, netns=a.name)
    rx = sockets.open_recv("eth0", group=VRRP_GROUP_V4, proto=sockets.IPPROTO_AH, netns=b.name)
    with closing_all(tx, rx):
        sockets.send_advert_v4(
            tx,
            advert_v2(VIP4),
            src=a.ipv4,
            dsts=[VRRP_GROUP_V4],
            ids=sockets.IpIdCounter(),
            ah_key=key,
            ah_seq=1,
        )
        packet = recv_one(rx)
    assert packet.data[9] == sockets.IPPROTO_AH and len(packet.data) == 64
    cfg = RxConfig(vrid=51, auth_type=AuthType.AH, auth_data=key, addresses=(VIP4,))
    assert isinstance(receive(packet.data, {51: cfg}), Accepted)


def test_ipv6_advert_kernel_checksum_hop_limit_and_link_local_source(pair: list[Host]) -> None:
    a, b = pair
    tx = sockets.open_send_v6("eth0", a.link_local, netns=a.name)
    rx = sockets.open_recv("eth0", group=VRRP_GROUP_V6, netns=b.name)
    advert = Advert(
        version=3, vrid=9, priority=100, interval_cs=100, addresses=(IPv6Address("fe80::99"), VIP6)
    )
    good = encode_vrrp(advert, src=a.link_local, dst=VRRP_GROUP_V6)
    zeroed = good[:6] + b"\x00\x00" + good[8:]  # the kernel must fill it (IPV6_CHECKSUM 6)
    with closing_all(tx, rx), Capture(b.name, "eth0", ETH_P_IPV6) as cap:
        sockets.send_v6(tx, zeroed, VRRP_GROUP_V6, sockets.interface_index(tx, "eth0"))
        packet = recv_one(rx)
        wire = cap.frames(1, RX_TIMEOUT, lambda f: f[20] == sockets.IPPROTO_VRRP)
    assert (packet.src, packet.dst, packet.ttl) == (a.link_local, VRRP_GROUP_V6, 255)
    assert not packet.whole_packet
    assert packet.data == good  # the kernel's checksum is the codec's
    cfg = RxConfig(vrid=9, version=3, addresses=advert.addresses)
    verdict = receive(packet.data, {9: cfg}, src=packet.src, dst=packet.dst, ttl=packet.ttl)
    assert isinstance(verdict, Accepted)
    ip6 = IPv6(wire[0][14:])
    assert (ip6.tc, ip6.hlim, ip6.src, ip6.dst) == (0xC0, 255, str(a.link_local), str(VRRP_GROUP_V6))


def test_received_adverts_carry_source_ttl_and_one_ip_id_per_advert(pair: list[Host]) -> None:
    a, b = pair
    tx = sockets.open_send_v4("eth0", netns=a.name)
    rx = sockets.open_recv("eth0", group=VRRP_GROUP_V4, netns=b.name)
    ids = sockets.IpIdCounter()
    with closing_all(tx, rx):
        for _ in range(4):
            sockets.send_advert_v4(tx, advert_v2(VIP4), src=a.ipv4, dsts=[VRRP_GROUP_V4], ids=ids)
        first = recv_one(rx)
        assert first.src == a.ipv4 and first.ttl == 255
        seen = [recv_one(rx) for _ in range(3)]
        assert [struct.unpack_from("!H", p.data, 4)[0] for p in seen] == [2, 3, 4]


def test_in_netns_thread_sees_the_namespace(pair: list[Host]) -> None:
    """The setns-in-a-thread pattern: plain stdlib calls resolve names in the lab namespace."""
    a, _ = pair
    index = in_namespace(a.ns, lambda: socket.if_nametoindex("eth0"))
    sock = sockets.open_recv("eth0", group=VRRP_GROUP_V4, netns=a.name)
    with closing_all(sock):
        assert sockets.interface_index(sock, "eth0") == index


# --------------------------------------------------------------------------- addresses


@contextlib.asynccontextmanager
async def rtnl(host: Host) -> AsyncIterator[object]:
    ipr = AsyncIPRoute(netns=host.name)
    try:
        yield ipr
    finally:
        ipr.close()


def find(host: Host, address: str) -> dict[str, object] | None:
    return next((entry for entry in host.addr_info() if entry.get("local") == address), None)


async def test_vips_with_label_scope_brd_and_nodad_added_and_removed(pair: list[Host]) -> None:
    """pyroute2's path (static addresses) applies a VIP line as the takeover path does."""
    a, _ = pair
    async with rtnl(a) as ipr:
        for vip in VIPS:
            assert await add_vip(ipr, vip, default_dev="eth0") is True
            assert await add_vip(ipr, vip, default_dev="eth0") is False  # idempotent
            assert await has_vip(ipr, vip, default_dev="eth0")
        assert_every_field_applied(a)
        for vip in VIPS:
            assert await remove_vip(ipr, vip, default_dev="eth0") is True
            assert await remove_vip(ipr, vip, default_dev="eth0") is False  # idempotent
        assert await remove_vip(ipr, VIPS[0], default_dev="nosuchdev") is False

    remaining = a.addresses()
    assert remaining == {str(a.ipv4), str(a.link_local)}


async def test_interface_info_primary_ipv4_link_local_and_mac(pair: list[Host]) -> None:
    a, _ = pair
    a.ip("addr", "add", f"{a.prefix.network.network_address + 50}/24", "dev", "eth0")  # a secondary
    async with rtnl(a) as ipr:
        info = await interface_info(ipr, "eth0")
        with pytest.raises(LookupError):
            await interface_info(ipr, "nosuch0")
    assert (info.ipv4, info.ipv6_link_local, info.mac, info.up) == (a.ipv4, a.link_local, a.mac, True)


async def test_link_monitor_sees_down_and_carrier_loss_within_a_second(pair: list[Host]) -> None:
    a, _ = pair
    async with contextlib.aclosing(link_states(["eth0"], netns=a.name)) as states:
        assert await asyncio.wait_for(anext(states), RX_TIMEOUT) == LinkState("eth0", True)

        start = time.monotonic()
        await asyncio.to_thread(a.ip, "link", "set", "eth0", "down")
        assert await asyncio.wait_for(anext(states), 1.0) == LinkState("eth0", False)
        admin_down = time.monotonic() - start

        await asyncio.to_thread(a.ip, "link", "set", "eth0", "up")
        assert await asyncio.wait_for(anext(states), 1.0) == LinkState("eth0", True)

        start = time.monotonic()
        await asyncio.to_thread(a.switch.ip, "link", "set", a.port, "down")  # cable pulled: no carrier
        assert await asyncio.wait_for(anext(states), 1.0) == LinkState("eth0", False)
        carrier_loss = time.monotonic() - start
    assert admin_down < 1.0 and carrier_loss < 1.0


# --------------------------------------------------------------------------- announcements


def is_garp_for(vip: IPv4Address) -> Callable[[bytes], bool]:
    return lambda f: f[12:14] == b"\x08\x06" and f[28:32] == vip.packed


async def test_garp_frames_have_keepalived_layout(pair: list[Host]) -> None:
    a, b = pair
    announcer = Announcer.open("eth0", mac=a.mac, netns=a.name)
    with Capture(b.name, "eth0", ETH_P_ARP) as cap:
        try:
            sent = await announcer.send_garps([VIP4], count=3, interval=0.01)
        finally:
            announcer.close()
        frames = cap.frames(3, RX_TIMEOUT, is_garp_for(VIP4))
    assert sent == 3 and len(frames) == 3
    mac = bytes.fromhex(a.mac.replace(":", ""))
    for frame in frames:
        assert frame[:42] == garp_frame(a.mac, VIP4)
        assert frame[:6] == b"\xff" * 6 and frame[6:12] == mac
        htype, ptype, hlen, plen, op = struct.unpack_from("!HHBBH", frame, 14)
        assert (htype, ptype, hlen, plen, op) == (1, 0x0800, 6, 4, 1)  # ARP REQUEST
        assert frame[22:28] == mac and frame[28:32] == VIP4.packed  # sender = VIP
        assert frame[32:38] == b"\xff" * 6 and frame[38:42] == VIP4.packed  # target = VIP, MAC ff..ff
        arp = Ether(frame)[ARP]  # independent decoder agrees
        assert (arp.op, arp.psrc, arp.pdst, arp.hwdst) == (1, str(VIP4), str(VIP4), "ff:ff:ff:ff:ff:ff")


async def test_unsolicited_na_decodes_with_valid_checksum(pair: list[Host]) -> None:
    a, b = pair
    announcer = Announcer.open("eth0", mac=a.mac, ipv6_src=a.link_local, netns=a.name)
    with Capture(b.name, "eth0", ETH_P_IPV6) as cap:
        try:
            assert await announcer.send_garps([VIP6], count=2, interval=0.0) == 2
        finally:
            announcer.close()
        frames = cap.frames(2, RX_TIMEOUT, lambda f: f[20] == 58 and f[54] == 136)
    assert len(frames) == 2
    for frame in frames:
        packet = Ether(frame)
        ip6, na = packet[IPv6], packet[ICMPv6ND_NA]
        assert (packet.dst, packet.src) == ("33:33:00:00:00:01", a.mac)
        assert (ip6.src, ip6.dst, ip6.hlim) == (str(a.link_local), "ff02::1", 255)
        assert (na.R, na.S, na.O, na.tgt) == (0, 0, 1, str(VIP6))
        assert packet[ICMPv6NDOptDstLLAddr].lladdr == a.mac  # target link-layer address option
        rebuilt = Ether(frame)
        del rebuilt[ICMPv6ND_NA].cksum
        assert Ether(bytes(rebuilt))[ICMPv6ND_NA].cksum == na.cksum  # scapy's checksum == ours
