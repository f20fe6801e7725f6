"""Shared sockets: one receive socket per (interface, family, protocol, group) and send sockets.

Why shared: keepalived demultiplexes received adverts per socket by VRID
(docs/keepalived.md#receive-sockets-and-vrids), so many instances on one interface cost one
socket, and the same VRID may be reused on another interface or group.  The
codec does the work: ``decode`` → pick the instance by VRID → ``validate``
against *that* instance's ``RxConfig``, so drops are counted per instance
(and, before an instance is known, per socket).

Why a repeat cache: in steady state a backup hears the same advert from the
same master every interval, byte for byte, and decoding and validating it
again in Python was most of a backup's CPU (bench/RESULTS.md, "VRRP
scale").  ``RepeatCache``
remembers, per VRID, the bytes of the last *accepted* advert and the verdict
they got; a packet that decides the same way (:func:`repeat_key`) goes
straight to the instance with that verdict, so the machine still sees every
advert at its receive time and every counter still counts it.  Anything else
(a new priority, another sender, a reload, any drop) takes the full path.
AH adverts never take the cache: each carries a new sequence number, so
the same bytes again are a replay, which only the full path (ICV, then the
instance's anti-replay counter) can refuse.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
from ipaddress import IPv6Address
from typing import NamedTuple, Protocol

from services.vrrp.core.params import Transport
from services.vrrp.instance import InstanceRunner
from services.vrrp.kernel.precise_loop import direct_readers
from services.vrrp.kernel.sockets import (
    ANCILLARY_BUFSIZE,
    RECV_BUFSIZE,
    Received,
    interface_index,
    open_recv,
    open_send_v4,
    open_send_v6,
    received,
)
from services.vrrp.packet import Accepted, Drop, DropReason, RxConfig, new_drop_counters, validate
from services.vrrp.packet.ah_sequence import AhSequence
from services.vrrp.packet.checksum import IPPROTO_AH, internet_checksum
from shared.addresses import IPAddress

Ancillary = list[tuple[int, int, bytes]]
RepeatKey = bytes | tuple[bytes, str, tuple[tuple[int, int, bytes], ...]]


def repeat_key(whole_packet: bool, data: bytes, ancdata: Ancillary, src: str) -> tuple[int, RepeatKey] | None:
    """(VRID, the bytes the verdict depends on) of a received packet, or None when it is too short.

    IPv4 (``whole_packet``): the whole packet but the IP ID and the header
    checksum, which change with every advert and play no part in the verdict
    once the checksum is known to be right, so it is verified here (None when
    it is not: the full path then counts the drop).  IPv6: the VRRP message,
    the source and the ancillary data (destination, hop limit, interface).
    AH (IP protocol 51) has no key: every copy must meet the ICV, which
    covers the IP ID, and the anti-replay counter.
    """
    if not whole_packet:
        return (data[1], (data, src, tuple(ancdata))) if len(data) >= 2 else None
    ihl = (data[0] & 0x0F) * 4 if data else 0
    if ihl < 20 or len(data) < ihl + 2 or data[9] == IPPROTO_AH or internet_checksum(data[:ihl]):
        return None
    return data[ihl + 1], data[:4] + data[6:10] + data[12:]


RECEIVE_BUFFER = 4 << 20
"""Bytes a receive socket may queue: seconds of adverts from hundreds of instances.

A Python service can be descheduled for a few hundred ms on a busy host; with
the kernel's default (~200 KiB, ~270 adverts: 0.1 s of 256 instances at 0.1 s)
the adverts that arrive meanwhile are dropped and the down timers fire
(measured: spurious takeovers under load).  Queued adverts are read before any
due timer runs, so a backup that was stalled but heard its master stays backup.
"""
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)


def grow_receive_buffer(sock: socket.socket, size: int = RECEIVE_BUFFER) -> None:
    """Raise the socket's receive buffer past ``rmem_max`` (root), else as far as allowed."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
    except PermissionError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)


class RepeatCache:
    """Per VRID: the key of the last accepted advert, the verdict, and for which instance and policy.

    Pure bookkeeping (no socket), so it is unit-tested on bytes.  A hit needs
    the same key *and* the same ``RxConfig`` object: a reload that changes an
    instance's receive policy replaces that object, so nothing stale is reused.
    """

    def __init__(self) -> None:
        self._last: dict[int, tuple[RepeatKey, RxConfig, Accepted]] = {}

    def hit(self, vrid: int, key: RepeatKey, rx: RxConfig) -> Accepted | None:
        """The verdict the same bytes got under the same policy, or None."""
        found = self._last.get(vrid)
        if found is None or found[1] is not rx or found[0] != key:
            return None
        return found[2]

    def remember(self, vrid: int, key: RepeatKey, rx: RxConfig, accepted: Accepted) -> None:
        """Only accepted adverts without AH: a drop is rare, and must be counted with its reason each time.

        Never AH: a legitimate AH advert is never repeated (its sequence
        number grows), the key leaves out the IP ID that the ICV covers, and
        anti-replay must see every copy (docs/vrrp.md#ah-auth_type-ah).
        """
        if accepted.frame.ah is None:
            self._last[vrid] = (key, rx, accepted)


class Listener(Protocol):
    """An instance as the router sees it (``instance.InstanceRunner``)."""

    @property
    def rx(self) -> RxConfig:
        """Its receive policy (replaced, not mutated, by a reload)."""
        ...

    @property
    def ah_sequence(self) -> AhSequence:
        """Its AH anti-replay counter (shared with its sender)."""
        ...

    def on_advert(self, accepted: Accepted) -> None: ...

    def on_drop(self, drop: Drop) -> None: ...


class AdvertRouter:
    """What one receive socket does with a datagram, without the socket: sans-IO, unit-tested on bytes.

    decode → the instance of that VRID → its validation (with its AH
    counter) → its machine; a repeat of the last accepted advert skips
    straight to the instance (``RepeatCache``).  Drops before an instance is
    known are counted here, the others by the instance.
    """

    def __init__(self, *, whole_packet: bool) -> None:
        self.instances: dict[int, Listener] = {}
        self.drops: dict[str, int] = {str(k): v for k, v in new_drop_counters().items()}
        self.repeats = RepeatCache()
        self._whole = whole_packet  # raw IPv4 sockets return the IP header

    def _count(self, drop: Drop) -> None:
        key = str(drop.reason)
        self.drops[key] = self.drops.get(key, 0) + 1

    def on_datagram(self, data: bytes, ancdata: Ancillary, src: str) -> None:
        """A repeat of the last accepted advert goes straight to its instance; anything else is decoded."""
        found = repeat_key(self._whole, data, ancdata, src)
        runner = None if found is None else self.instances.get(found[0])
        if runner is None or found is None:
            self.on_packet(received(data, ancdata, src, whole_packet=self._whole))
            return
        vrid, key = found
        rx = runner.rx
        accepted = self.repeats.hit(vrid, key, rx)
        if accepted is not None:
            runner.on_advert(accepted)
            return
        verdict = self.on_packet(received(data, ancdata, src, whole_packet=self._whole))
        if isinstance(verdict, Accepted) and verdict.advert.vrid == vrid:
            self.repeats.remember(vrid, key, rx, verdict)

    def on_packet(self, packet: Received) -> Accepted | Drop:
        """decode → VRID → that instance's validation → its machine; never raises on bad input."""
        frame = packet.decode()
        if isinstance(frame, Drop):
            self._count(frame)
            return frame
        runner = self.instances.get(frame.advert.vrid)
        if runner is None:
            drop = Drop(DropReason.UNKNOWN_VRID)
            self._count(drop)
            return drop
        verdict = validate(frame, runner.rx, runner.ah_sequence)
        if isinstance(verdict, Drop):
            runner.on_drop(verdict)
        else:
            runner.on_advert(verdict)
        return verdict


class SocketKey(NamedTuple):
    """Identity of a receive socket; ``group`` is None for unicast."""

    interface: str
    family: int
    proto: int
    group: IPAddress | None

    @classmethod
    def of(cls, t: Transport) -> SocketKey:
        return cls(t.interface, t.family, t.proto, None if t.unicast else t.group)


class Receiver:
    """One receive socket and the instances (by VRID) that listen on it."""

    def __init__(self, key: SocketKey) -> None:
        family = socket.AF_INET6 if key.family == 6 else socket.AF_INET
        self.sock = open_recv(key.interface, group=key.group, proto=key.proto, family=family)
        grow_receive_buffer(self.sock)
        self.key = key
        self.router = AdvertRouter(whole_packet=family == socket.AF_INET)
        self.instances = self.router.instances
        """The instances listening here, by VRID (the router's own dict)."""
        self._more = select.poll()  # is another datagram queued? (see ``_readable``)
        self._more.register(self.sock.fileno(), select.POLLIN)
        self._loop = asyncio.get_running_loop()
        self._direct = direct_readers(self._loop)  # the vrrp service's loop: precise_loop()
        if self._direct is not None:
            self._direct.add_direct_reader(self.sock.fileno(), self._readable)
        else:
            self._loop.add_reader(self.sock.fileno(), self._readable)

    def size_buffer(self) -> int:
        """``kernel_rx_buf_size``: the sum of the instances' sizes, as keepalived 2.2.7 sizes a shared socket.

        Set with ``SO_RCVBUFFORCE`` (the kernel doubles it, for its own
        bookkeeping); without any, :data:`RECEIVE_BUFFER`.  Returns the size asked.
        """
        size = sum(i.rx.rx_buf_size for i in self.instances.values()) or RECEIVE_BUFFER
        grow_receive_buffer(self.sock, size)
        return size

    def _readable(self) -> None:
        """Drain the socket: one wake-up serves every advert queued meanwhile, each handled at once.

        Why ``poll(0)`` between reads rather than reading until EAGAIN: a
        backup usually wakes for a single advert, and the failing ``recvmsg``
        (buffers allocated, an exception raised and caught) cost more than the
        advert itself (measured ~4 µs vs ~1 µs for the poll).
        """
        recvmsg, more, on_datagram = self.sock.recvmsg, self._more.poll, self.router.on_datagram
        while True:
            try:
                data, ancdata, _flags, addr = recvmsg(RECV_BUFSIZE, ANCILLARY_BUFSIZE)
            except (BlockingIOError, InterruptedError):
                return
            on_datagram(data, ancdata, addr[0])
            ready = more(0)
            if not ready or not ready[0][1] & select.POLLIN:
                return

    def status(self) -> dict[str, object]:
        k = self.key
        return {
            "interface": k.interface,
            "family": k.family,
            "proto": k.proto,
            "mode": "unicast" if k.group is None else f"multicast {k.group}",
            "vrids": sorted(self.instances),
            "drops": dict(self.router.drops),
            "rcvbuf": self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF),
        }

    def close(self) -> None:
        if self._direct is not None:
            self._direct.remove_direct_reader(self.sock.fileno())
        else:
            self._loop.remove_reader(self.sock.fileno())
        with contextlib.suppress(OSError):
            self.sock.close()


class SendKey(NamedTuple):
    interface: str
    family: int
    proto: int
    src: IPAddress | None  # IPv6 sockets are bound to their source


class SocketPool:
    """Receive and send sockets shared between instances, opened on first use."""

    def __init__(self) -> None:
        self.receivers: dict[SocketKey, Receiver] = {}
        self._senders: dict[SendKey, tuple[socket.socket, int]] = {}

    def attach(self, runner: InstanceRunner) -> None:
        """Route adverts for the runner's VRID on its socket to it (opening the socket if needed)."""
        key = SocketKey.of(runner.plan.transport)
        receiver = self.receivers.get(key)
        if receiver is None:
            receiver = self.receivers[key] = Receiver(key)
        receiver.instances[runner.plan.params.vrid] = runner
        receiver.size_buffer()

    def refresh(self, runner: InstanceRunner) -> None:
        """A reload changed the runner's receive policy in place: its socket's buffer follows."""
        receiver = self.receivers.get(SocketKey.of(runner.plan.transport))
        if receiver is not None:
            receiver.size_buffer()

    def detach(self, runner: InstanceRunner) -> None:
        """Stop routing to the runner; a socket nobody listens on is closed."""
        key = SocketKey.of(runner.plan.transport)
        receiver = self.receivers.get(key)
        if receiver is None:
            return
        if receiver.instances.get(runner.plan.params.vrid) is runner:
            del receiver.instances[runner.plan.params.vrid]
        if not receiver.instances:
            receiver.close()
            del self.receivers[key]
        else:
            receiver.size_buffer()

    def sender(self, t: Transport) -> tuple[socket.socket, int]:
        """The send socket for this transport and its interface index."""
        key = SendKey(t.interface, t.family, t.proto, t.src if t.family == 6 else None)
        found = self._senders.get(key)
        if found is None:
            if isinstance(t.src, IPv6Address):
                sock = open_send_v6(t.interface, t.src)
            else:
                sock = open_send_v4(t.interface, proto=t.proto)
            found = self._senders[key] = (sock, interface_index(sock, t.interface))
        return found

    def close(self) -> None:
        for receiver in self.receivers.values():
            receiver.close()
        self.receivers.clear()
        for sock, _ in self._senders.values():
            sock.close()
        self._senders.clear()
