"""AH anti-replay (docs/keepalived.md#authentication): one sequence counter per instance, as keepalived 2.2.7.

The counter itself (``packet/ah_sequence.py``), where validation consults it,
that the receive router hands every AH copy to it (the repeat cache and the
machine's fast path never let a replay through), the master's resync from a
lower-priority advert, and the hand-over across a reload restart.  Packets
are real encoder output (byte-exact with keepalived, test_packet_golden.py).
The same behaviour against the real keepalived on a real segment:
tests/lab/test_vrrp_ah_replay.py.
"""

from __future__ import annotations

import asyncio
import struct
from ipaddress import IPv4Address, ip_interface
from typing import Any, cast

import msgspec
import pytest

from services.vrrp.core.machine import VrrpMachine
from services.vrrp.core.machine_events import AdvertReceived, Start
from services.vrrp.core.machine_types import InstanceParams, State
from services.vrrp.core.params import build_plan
from services.vrrp.core.reload_plan import same_virtual_router
from services.vrrp.core.trackers import TrackerBook
from services.vrrp.instance import AdvertSender, InstanceIo, InstanceRunner
from services.vrrp.kernel.receivers import AdvertRouter, RepeatCache, repeat_key
from services.vrrp.packet import (
    Accepted,
    Advert,
    AuthType,
    Drop,
    DropReason,
    RxConfig,
    auth_pass_bytes,
    decode,
    encode_ipv4,
    encode_ipv4_ah,
    validate,
)
from services.vrrp.packet.ah_sequence import AhSequence
from services.vrrp.packet.checksum import internet_checksum
from shared.config.model_global import GlobalDefs
from shared.config.model_vrrp import Authentication, VirtualAddress, VrrpConfig, VrrpInstance

SRC = IPv4Address("192.0.2.1")
OWN = IPv4Address("192.0.2.2")
GROUP = IPv4Address("224.0.0.18")
VIP = IPv4Address("192.0.2.100")
KEY = auth_pass_bytes("secret12")
ADVERT = Advert(version=2, vrid=7, priority=200, interval_cs=100, addresses=(VIP,))
RX = RxConfig(vrid=7, addresses=(VIP,), auth_type=AuthType.AH, auth_data=KEY)


def ah_packet(seq: int, *, priority: int = 200, ident: int = 1, interval_cs: int = 100) -> bytes:
    advert = msgspec.structs.replace(ADVERT, priority=priority, interval_cs=interval_cs)
    return encode_ipv4_ah(advert, src=SRC, dst=GROUP, ident=ident, seq=seq, key=KEY)


def check(data: bytes, sequence: AhSequence, rx: RxConfig = RX) -> Accepted | Drop:
    frame = decode(data)
    assert not isinstance(frame, Drop)
    return validate(frame, rx, sequence)


def reason(verdict: Accepted | Drop) -> DropReason | None:
    return verdict.reason if isinstance(verdict, Drop) else None


# --------------------------------------------------------------------------- the counter


def test_a_number_is_admitted_once_and_only_above_the_last() -> None:
    seq = AhSequence()
    assert seq.admit(1) is None and seq.last == 1
    replay = seq.admit(1)
    assert isinstance(replay, Drop) and replay.reason is DropReason.AH_REPLAY
    assert reason_of(seq.admit(0)) is DropReason.AH_REPLAY
    assert seq.admit(5) is None  # a gap is fine (adverts lost on the way)
    assert reason_of(seq.admit(3)) is DropReason.AH_REPLAY
    assert seq.last == 5


def reason_of(drop: Drop | None) -> DropReason | None:
    return None if drop is None else drop.reason


def test_sending_continues_above_what_was_heard() -> None:
    """keepalived's one counter: a backup that takes over sends above its old master's last number."""
    seq = AhSequence()
    assert [seq.next(), seq.next()] == [1, 2]  # a fresh sender starts at 1
    seq.admit(41)
    assert seq.next() == 42
    assert reason_of(seq.admit(42)) is DropReason.AH_REPLAY  # our own number is taken


def test_resync_puts_the_next_advert_above_the_lower_router() -> None:
    """A restarted master (counter near 0) hears a lower router at 1000: its next advert carries 1002."""
    seq = AhSequence()
    seq.next()
    seq.resync(1000)
    assert seq.next() == 1002  # keepalived: seq + 1, then the send adds one
    wrap = AhSequence()
    wrap.resync(0xFFFFFFFF)
    assert wrap.last == 0  # 32-bit arithmetic, as keepalived's uint32_t


def test_the_counter_stops_at_its_top_and_stays_32_bit() -> None:
    seq = AhSequence(0xFFFFFFFD)
    assert [seq.next(), seq.next(), seq.next()] == [0xFFFFFFFE, 0xFFFFFFFE, 0xFFFFFFFE]
    seq.admit(0xFFFFFFFF)
    assert seq.next() == 0xFFFFFFFF
    ah_packet(seq.next())  # still encodable


# --------------------------------------------------------------------------- validation


def test_validation_drops_a_replayed_advert_with_its_own_reason() -> None:
    seq = AhSequence()
    first = ah_packet(10)
    assert isinstance(check(first, seq), Accepted)
    assert reason(check(first, seq)) is DropReason.AH_REPLAY
    assert reason(check(ah_packet(9, priority=0), seq)) is DropReason.AH_REPLAY  # an old goodbye
    assert isinstance(check(ah_packet(11), seq), Accepted)


def test_only_an_authentic_advert_moves_the_counter() -> None:
    """A forged number must not push the counter up (it would lock the real master out)."""
    seq = AhSequence(10)
    forged = bytearray(ah_packet(10_000))
    forged[-1] ^= 1  # the ICV no longer matches (VIP changed; the checksum fixed as a forger would)
    forged[50:52] = b"\x00\x00"  # the VRRP checksum, after IP (20) and AH (24)
    forged[50:52] = struct.pack("!H", internet_checksum(bytes(forged[44:])))
    assert reason(check(bytes(forged), seq)) is DropReason.AUTH_FAILURE
    spoofed = bytearray(ah_packet(10_000))
    spoofed[28:32] = OWN.packed  # SPI is not the source
    assert reason(check(bytes(spoofed), seq)) is DropReason.AUTH_FAILURE
    assert seq.last == 10


def test_the_counter_moves_before_the_interval_check_as_in_keepalived() -> None:
    """keepalived checks the sequence right after the ICV: an authentic advert, other interval, moves it."""
    seq = AhSequence()
    assert reason(check(ah_packet(7, interval_cs=200), seq)) is DropReason.INTERVAL_MISMATCH
    assert seq.last == 7


def test_without_a_counter_only_the_stateless_checks_run() -> None:
    frame = decode(ah_packet(1))
    assert not isinstance(frame, Drop)
    assert isinstance(validate(frame, RX), Accepted)
    assert isinstance(validate(frame, RX), Accepted)


# --------------------------------------------------------------------------- the receive router


class FakeInstance:
    """A listener that records what the router hands it (``InstanceRunner``'s receive surface)."""

    def __init__(self, rx: RxConfig = RX) -> None:
        self.rx = rx
        self.ah_sequence = AhSequence()
        self.adverts: list[Accepted] = []
        self.drops: list[DropReason] = []

    def on_advert(self, accepted: Accepted) -> None:
        self.adverts.append(accepted)

    def on_drop(self, drop: Drop) -> None:
        self.drops.append(drop.reason)


def route(data: bytes, instance: FakeInstance) -> AdvertRouter:
    router = AdvertRouter(whole_packet=True)
    router.instances[7] = instance
    router.on_datagram(data, [], str(SRC))
    return router


def test_the_router_drops_the_same_ah_bytes_the_second_time() -> None:
    """A captured advert replayed byte for byte: counted as ``ah_replay``, never handed to the machine."""
    instance = FakeInstance()
    router = AdvertRouter(whole_packet=True)
    router.instances[7] = instance
    captured = ah_packet(5, priority=0)
    router.on_datagram(captured, [], str(SRC))
    router.on_datagram(ah_packet(6), [], str(SRC))
    for _ in range(3):
        router.on_datagram(captured, [], str(SRC))
    assert [a.advert.priority for a in instance.adverts] == [0, 200]
    assert instance.drops == [DropReason.AH_REPLAY] * 3


@pytest.mark.parametrize("vrid", [7, 4])  # 4: where the VRID byte would sit if AH were read as VRRP
def test_an_ah_advert_is_never_taken_from_the_repeat_cache(vrid: int) -> None:
    """The repeat key leaves out the IP ID, which the ICV covers: a copy with another ID must fail the ICV."""
    rx = msgspec.structs.replace(RX, vrid=vrid)
    instance = FakeInstance(rx)
    router = AdvertRouter(whole_packet=True)
    router.instances[vrid] = instance
    advert = msgspec.structs.replace(ADVERT, vrid=vrid)
    original = encode_ipv4_ah(advert, src=SRC, dst=GROUP, ident=1, seq=5, key=KEY)
    assert repeat_key(True, original, [], str(SRC)) is None
    router.on_datagram(original, [], str(SRC))
    altered = bytearray(original)
    altered[4:6] = b"\x12\x34"  # another IP ID, header checksum fixed
    altered[10:12] = b"\x00\x00"
    altered[10:12] = struct.pack("!H", internet_checksum(bytes(altered[:20])))
    router.on_datagram(bytes(altered), [], str(SRC))
    assert len(instance.adverts) == 1
    assert instance.drops == [DropReason.AUTH_FAILURE]


def test_the_cache_still_serves_repeats_without_ah() -> None:
    """Unchanged for PASS/none: the same bytes again reach the instance as the very same verdict."""
    rx = RxConfig(vrid=7, addresses=(VIP,))
    instance = FakeInstance(rx)
    router = AdvertRouter(whole_packet=True)
    router.instances[7] = instance
    plain = encode_ipv4(ADVERT, src=SRC, dst=GROUP, ident=1)
    router.on_datagram(plain, [], str(SRC))
    router.on_datagram(encode_ipv4(ADVERT, src=SRC, dst=GROUP, ident=2), [], str(SRC))
    assert len(instance.adverts) == 2 and instance.adverts[0] is instance.adverts[1]


def test_repeat_cache_never_remembers_an_ah_verdict() -> None:
    """Defence in depth: even handed an AH verdict under some key, the cache keeps nothing."""
    cache = RepeatCache()
    accepted = check(ah_packet(3), AhSequence())
    assert isinstance(accepted, Accepted)
    cache.remember(7, b"key", RX, accepted)
    assert cache.hit(7, b"key", RX) is None


def test_drops_before_an_instance_is_known_are_the_router_s() -> None:
    router = route(ah_packet(3)[:30], FakeInstance())
    assert router.drops["bad_length"] == 1


# --------------------------------------------------------------------------- the machine's rank


def params(priority: int) -> InstanceParams:
    return InstanceParams(
        name="VI_1", vrid=7, address=OWN, interface="eth0", version=2, priority=priority, advert_int_cs=100
    )


@pytest.mark.parametrize(
    ("ours", "theirs", "src", "below"),
    [
        (255, 200, SRC, True),  # lower priority
        (255, 255, SRC, True),  # same priority, lower address (.1 < .2)
        (255, 255, IPv4Address("192.0.2.3"), False),  # same priority, higher address
        (200, 255, SRC, False),  # higher priority
        (255, 0, SRC, False),  # a goodbye ranks nowhere
    ],
)
def test_outranks_is_the_masters_lower_priority_rule(
    ours: int, theirs: int, src: IPv4Address, below: bool
) -> None:
    machine = VrrpMachine(params(ours))
    machine.handle(0.0, Start())
    advert = AdvertReceived(src=src, priority=theirs, interval_cs=100)
    if ours == 255:
        assert machine.state is State.MASTER
        assert machine.outranks(advert) is below
    else:
        assert machine.state is State.BACKUP
        assert machine.outranks(advert) is False  # only a MASTER ranks others


# --------------------------------------------------------------------------- the instance (resync)


class CapturingSocket:
    """Where the sender's packets go: recorded, never sent."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def sendto(self, packet: bytes, flags: int, address: tuple[str, int]) -> int:
        self.sent.append(packet)
        return len(packet)


class NoVips:
    def add(self, *args: object, **kwargs: object) -> None:
        pass

    def remove(self, *args: object, **kwargs: object) -> None:
        pass


class NoBus:
    def publish(self, event: object) -> None:
        pass


def owner_plan(priority: int = 255) -> Any:
    auth = Authentication(type="AH", password=b"secret12")
    inst = VrrpInstance(
        name="VI_1",
        interface="eth0",
        vrid=7,
        family=4,
        priority=priority,
        vips=[VirtualAddress(address=ip_interface(f"{VIP}/32"))],
        authentication=auth,
    )
    return build_plan(inst, GlobalDefs(), VrrpConfig(), OWN)


def sent_seqs(sock: CapturingSocket) -> list[tuple[int, int]]:
    """(priority, AH sequence) of every advert sent."""
    out = []
    for packet in sock.sent:
        frame = decode(packet)
        assert not isinstance(frame, Drop) and frame.ah is not None
        out.append((frame.advert.priority, frame.ah.seq))
    return out


async def test_a_restarted_master_resyncs_from_a_lower_advert_and_is_heard_again() -> None:
    """keepalived's recovery after a restart: the owner starts at 1, hears the backup's 1000, sends 1002."""
    sock = CapturingSocket()
    plan = owner_plan()
    io = InstanceIo(
        sender=AdvertSender(plan, cast(Any, sock), 1),
        ipr=cast(Any, None),
        netlink_lock=asyncio.Lock(),
        vips=cast(Any, NoVips()),
        publisher=cast(Any, NoBus()),
        announcer_for=lambda _dev: None,
    )
    runner = InstanceRunner(plan, io, TrackerBook(asyncio.get_running_loop().time))
    try:
        runner.feed(Start())
        assert runner.machine.state is State.MASTER
        assert sent_seqs(sock) == [(255, 1)]
        backup = ah_packet(1000, priority=100)  # from SRC (.1), which took over meanwhile
        router = AdvertRouter(whole_packet=True)
        router.instances[7] = runner
        router.on_datagram(backup, [], str(SRC))
        assert runner.counters.adverts_received == 1
        assert sent_seqs(sock)[-1] == (255, 1002)  # the answer: above what the backup holds
        router.on_datagram(backup, [], str(SRC))  # the same advert again: a replay now
        assert runner.counters.drops["ah_replay"] == 1
        assert runner.counters.adverts_received == 1
    finally:
        runner.close()


# --------------------------------------------------------------------------- reload


def test_a_reload_restart_keeps_the_counter_only_for_the_same_virtual_router() -> None:
    old = owner_plan(255)
    assert same_virtual_router(old, owner_plan(200))  # owner to not owner: a restart, same router
    other_vrid = msgspec.structs.replace(old, params=msgspec.structs.replace(old.params, vrid=8))
    assert not same_virtual_router(old, other_vrid)
    other_if = msgspec.structs.replace(
        old, transport=msgspec.structs.replace(old.transport, interface="eth1")
    )
    assert not same_virtual_router(old, other_if)
    other_group = msgspec.structs.replace(
        old, transport=msgspec.structs.replace(old.transport, group=IPv4Address("224.0.0.19"))
    )
    assert not same_virtual_router(old, other_group)
