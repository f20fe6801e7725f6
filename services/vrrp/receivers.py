"""Shared sockets: one receive socket per (interface, family, protocol, group) and send sockets.

Why shared: keepalived demultiplexes received adverts per socket by VRID
(keepalived-behaviour.md §2.7), so many instances on one interface cost one
socket, and the same VRID may be reused on another interface or group.  The
codec does the work: ``decode`` → pick the instance by VRID → ``validate``
against *that* instance's ``RxConfig``, so drops are counted per instance
(and, before an instance is known, per socket).
"""

from __future__ import annotations

import socket
from ipaddress import IPv6Address
from typing import NamedTuple

from services.vrrp.instance import InstanceRunner
from services.vrrp.packet import Drop, DropReason, new_drop_counters, validate
from services.vrrp.params import IPAddress, Transport
from services.vrrp.sockets import (
    AsyncReceiver,
    Received,
    interface_index,
    open_recv,
    open_send_v4,
    open_send_v6,
)


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
        sock = open_recv(key.interface, group=key.group, proto=key.proto, family=family)
        self.key = key
        self.instances: dict[int, InstanceRunner] = {}
        self.drops: dict[str, int] = {str(k): v for k, v in new_drop_counters().items()}
        self._rx = AsyncReceiver(sock)
        self._rx.on_packet(self._on_packet)

    def _count(self, drop: Drop) -> None:
        key = str(drop.reason)
        self.drops[key] = self.drops.get(key, 0) + 1

    def _on_packet(self, packet: Received) -> None:
        """decode → VRID → that instance's validation → its machine; never raises on bad input."""
        frame = packet.decode()
        if isinstance(frame, Drop):
            self._count(frame)
            return
        runner = self.instances.get(frame.advert.vrid)
        if runner is None:
            self._count(Drop(DropReason.UNKNOWN_VRID))
            return
        verdict = validate(frame, runner.plan.rx)
        if isinstance(verdict, Drop):
            runner.on_drop(verdict)
        else:
            runner.on_advert(verdict)

    def status(self) -> dict[str, object]:
        k = self.key
        return {
            "interface": k.interface,
            "family": k.family,
            "proto": k.proto,
            "mode": "unicast" if k.group is None else f"multicast {k.group}",
            "vrids": sorted(self.instances),
            "drops": dict(self.drops),
        }

    def close(self) -> None:
        self._rx.close()


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
