"""The kernel side: read the IPVS table and apply operations over generic netlink.

Why not ``pyroute2.IPVS`` directly: its message map decodes the tunnel port in
host byte order, has no daemon attributes, treats the netmask as an IPv4
address (IPv6 services carry a prefix length there) and sends one request per
round trip.  ``IpvsMsg`` declares the complete ``linux/ip_vs.h`` attribute set
on top of pyroute2's ``genlmsg``/``nla`` classes; it is the reference encoding
(and what pyroute2-based tools can decode our traffic with).  The hot path
uses ``ipvs_codec`` (the same bytes, ~50x faster, checked against ``IpvsMsg``
in the unit tests), and our own netlink socket sends operations in batches
with one ack each: that is what makes 40,000 real servers take seconds.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from services.lvs.core.desired import ServiceEntry, Table
from services.lvs.core.reconcile import Op, OpKind
from services.lvs.core.sync import DaemonSpec
from services.lvs.core.timeouts import Timeouts
from services.lvs.kernel import ipvs_codec as codec
from shared.netns import socket_in

NETLINK_GENERIC = 16
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x4, 0x300
GENL_ID_CTRL, CTRL_CMD_GETFAMILY = 0x10, 3
CTRL_ATTR_FAMILY_ID, CTRL_ATTR_FAMILY_NAME = 1, 2
NLMSG_ERROR = 2
NLMSG_DONE = 3
_HDR = struct.Struct("=IHHII")

CMD = {
    OpKind.ADD_SERVICE: 1,
    OpKind.SET_SERVICE: 2,
    OpKind.DEL_SERVICE: 3,
    OpKind.ADD_DEST: 5,
    OpKind.SET_DEST: 6,
    OpKind.DEL_DEST: 7,
}
CMD_GET_SERVICE = 4
CMD_GET_DEST = 8
CMD_NEW_DAEMON = 9
CMD_DEL_DAEMON = 10
CMD_GET_DAEMON = 11
CMD_SET_CONFIG = 12
CMD_GET_CONFIG = 13
CMD_GET_INFO = 15
CMD_FLUSH = 17
ATTR_TIMEOUT_TCP, ATTR_TIMEOUT_TCP_FIN, ATTR_TIMEOUT_UDP = 4, 5, 6


class IpvsError(OSError):
    """The kernel refused an operation; carries the operation for the log."""

    def __init__(self, err: int, what: str) -> None:
        super().__init__(err, f"{what}: {os.strerror(err)}")


@dataclass
class ApplyResult:
    applied: int
    errors: list[tuple[Op, int]]


class Ipvs:
    """One generic netlink socket bound to the IPVS family; blocking, batched, counted.

    ``netns``: the network namespace whose IPVS table this is (``net_namespace_ipvs``;
    ``""`` is process 1's); None, the caller's.
    """

    def __init__(self, batch: int = 512, netns: str | None = None) -> None:
        self.batch = batch
        if netns is None:
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
        else:
            self.sock = socket_in(netns, socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((0, 0))
        self._seq = 0
        self.family = self._resolve_family("IPVS")
        self.ops_applied = 0
        """Operations the kernel accepted since this object was created (tests count these)."""

    def close(self) -> None:
        self.sock.close()

    # ------------------------------------------------------------------ plumbing

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFFFFFFFF
        return self._seq

    def _recv(self) -> Iterator[tuple[int, int, int, bytes]]:
        """(type, flags, seq, whole message) for every netlink message in one datagram."""
        data = self.sock.recv(1 << 20)
        offset = 0
        while offset + _HDR.size <= len(data):
            length, mtype, mflags, seq, _pid = _HDR.unpack_from(data, offset)
            if length < _HDR.size:
                break
            yield mtype, mflags, seq, data[offset : offset + length]
            offset += (length + 3) & ~3

    def _resolve_family(self, name: str) -> int:
        seq = self._next_seq()
        attrs = codec.nla(CTRL_ATTR_FAMILY_NAME, name.encode() + b"\0")
        self.sock.send(codec.message(GENL_ID_CTRL, NLM_F_REQUEST, seq, CTRL_CMD_GETFAMILY, attrs))
        while True:
            for mtype, _f, rseq, raw in self._recv():
                if rseq != seq:
                    continue
                if mtype == NLMSG_ERROR:
                    err = -struct.unpack_from("=i", raw, _HDR.size)[0]
                    raise IpvsError(err, f"generic netlink family {name} (is ip_vs loaded?)")
                found = codec.parse_attrs(raw, _HDR.size + codec.GENL_HDR.size)
                return int.from_bytes(found[CTRL_ATTR_FAMILY_ID][:2], "little")

    def _dump(self, cmd: int, attrs: bytes) -> list[bytes]:
        """Every reply of one dump request, as raw attribute bytes after the genl header."""
        seq = self._next_seq()
        self.sock.send(codec.message(self.family, NLM_F_REQUEST | NLM_F_DUMP, seq, cmd, attrs))
        out: list[bytes] = []
        while True:
            for mtype, _f, rseq, raw in self._recv():
                if rseq != seq:
                    continue
                if mtype == NLMSG_DONE:
                    return out
                if mtype == NLMSG_ERROR:
                    err = -struct.unpack_from("=i", raw, _HDR.size)[0]
                    if err:
                        raise IpvsError(err, "IPVS dump")
                    return out
                out.append(raw[_HDR.size + codec.GENL_HDR.size :])

    # ------------------------------------------------------------------ read

    def read_table(self) -> Table:
        """Every service and its real servers, as the kernel has them now."""
        table: Table = {}
        for raw in self._dump(CMD_GET_SERVICE, b""):
            key, attrs = codec.decode_service(codec.parse_attrs(raw)[codec.CMD_ATTR_SERVICE])
            table[key] = ServiceEntry(attrs)
        for key, entry in table.items():
            svc = codec.nla(codec.CMD_ATTR_SERVICE, codec.service_attrs_bytes(key, None))
            for raw in self._dump(CMD_GET_DEST, svc):
                dkey, dattrs = codec.decode_dest(codec.parse_attrs(raw)[codec.CMD_ATTR_DEST], key.af)
                entry.dests[dkey] = dattrs
        return table

    # ------------------------------------------------------------------ write

    def encode_op(self, op: Op) -> tuple[int, bytes]:
        seq = self._next_seq()
        with_attrs = op.kind in (OpKind.ADD_SERVICE, OpKind.SET_SERVICE)
        attrs = codec.nla(
            codec.CMD_ATTR_SERVICE,
            codec.service_attrs_bytes(op.service, op.service_attrs if with_attrs else None),
        )
        if op.dest is not None:
            attrs += codec.nla(codec.CMD_ATTR_DEST, codec.dest_attrs_bytes(op.dest, op.dest_attrs))
        return seq, codec.message(self.family, NLM_F_REQUEST | NLM_F_ACK, seq, CMD[op.kind], attrs)

    def apply(self, ops: Sequence[Op]) -> ApplyResult:
        """Send ``ops`` in order, ``batch`` per datagram, and collect one ack each.

        Operations keep their order inside the kernel (one socket, processed in
        sequence), so a service is always created before its real servers.
        ``EEXIST`` on add and ``ENOENT``/``ESRCH`` on delete count as done: the
        kernel already is what we wanted (another writer, or a stale cache).
        """
        errors: list[tuple[Op, int]] = []
        applied = 0
        for start in range(0, len(ops), self.batch):
            chunk = ops[start : start + self.batch]
            pending: dict[int, Op] = {}
            buf = bytearray()
            for op in chunk:
                seq, data = self.encode_op(op)
                pending[seq] = op
                buf += data
            self.sock.send(bytes(buf))
            while pending:
                for mtype, _f, seq, raw in self._recv():
                    op_or_none = pending.pop(seq, None)
                    if op_or_none is None or mtype != NLMSG_ERROR:
                        continue
                    err = -struct.unpack_from("=i", raw, _HDR.size)[0]
                    if err == 0 or _harmless(op_or_none, err):
                        applied += 1
                    else:
                        errors.append((op_or_none, err))
        self.ops_applied += applied
        return ApplyResult(applied, errors)

    # ------------------------------------------------------------------ whole table, global settings

    def flush(self) -> int:
        """``IPVS_CMD_FLUSH``: every service of the namespace, ours or not (``lvs_flush``); the count."""
        count = len(self._dump(CMD_GET_SERVICE, b""))
        self._command(CMD_FLUSH, b"", "flush")
        return count

    def timeouts(self) -> Timeouts:
        """``IPVS_CMD_GET_CONFIG``: the tcp, tcpfin and udp connection timeouts, in seconds."""
        replies = self._dump_one(CMD_GET_CONFIG)
        found = codec.parse_attrs(replies)
        return Timeouts(
            tcp=codec.u(found.get(ATTR_TIMEOUT_TCP)),
            tcpfin=codec.u(found.get(ATTR_TIMEOUT_TCP_FIN)),
            udp=codec.u(found.get(ATTR_TIMEOUT_UDP)),
        )

    def set_timeouts(self, value: Timeouts) -> None:
        """``IPVS_CMD_SET_CONFIG`` with all three values (``lvs_timeouts``)."""
        attrs = b"".join(
            codec.nla(kind, struct.pack("=I", seconds))
            for kind, seconds in (
                (ATTR_TIMEOUT_TCP, value.tcp),
                (ATTR_TIMEOUT_TCP_FIN, value.tcpfin),
                (ATTR_TIMEOUT_UDP, value.udp),
            )
        )
        self._command(CMD_SET_CONFIG, attrs, "timeouts")

    def _command(self, cmd: int, attrs: bytes, what: str) -> None:
        seq = self._next_seq()
        self.sock.send(codec.message(self.family, NLM_F_REQUEST | NLM_F_ACK, seq, cmd, attrs))
        err = self._ack(seq)
        if err:
            raise IpvsError(err, what)

    def _dump_one(self, cmd: int) -> bytes:
        """A plain (non-dump) GET: the attributes of its one reply."""
        seq = self._next_seq()
        self.sock.send(codec.message(self.family, NLM_F_REQUEST, seq, cmd, b""))
        while True:
            for mtype, _f, rseq, raw in self._recv():
                if rseq != seq:
                    continue
                if mtype == NLMSG_ERROR:
                    err = -struct.unpack_from("=i", raw, _HDR.size)[0]
                    raise IpvsError(err, "IPVS get")
                return raw[_HDR.size + codec.GENL_HDR.size :]

    # ------------------------------------------------------------------ sync daemons

    def daemons(self) -> set[DaemonSpec]:
        """The connection-sync daemons running now (master and/or backup)."""
        return {
            codec.decode_daemon(codec.parse_attrs(raw)[codec.CMD_ATTR_DAEMON])
            for raw in self._dump(CMD_GET_DAEMON, b"")
        }

    def set_daemons(self, wanted: set[DaemonSpec]) -> int:
        """Stop the daemons that are not wanted, start the missing ones; returns the operations sent."""
        have = self.daemons()
        stale = [h for h in have if not any(w.matches(h) for w in wanted)]
        missing = [w for w in wanted if not any(w.matches(h) for h in have)]
        ops = [(CMD_DEL_DAEMON, codec.daemon_attrs_bytes(d, full=False)) for d in stale]
        ops += [(CMD_NEW_DAEMON, codec.daemon_attrs_bytes(d)) for d in missing]
        for cmd, attrs in ops:
            seq = self._next_seq()
            body = codec.nla(codec.CMD_ATTR_DAEMON, attrs)
            self.sock.send(codec.message(self.family, NLM_F_REQUEST | NLM_F_ACK, seq, cmd, body))
            err = self._ack(seq)
            if err and not (cmd == CMD_DEL_DAEMON and err in (errno.ESRCH, errno.ENOENT)):
                raise IpvsError(err, "sync daemon")
        return len(ops)

    def _ack(self, seq: int) -> int:
        while True:
            for mtype, _f, rseq, raw in self._recv():
                if rseq == seq and mtype == NLMSG_ERROR:
                    return int(-struct.unpack_from("=i", raw, _HDR.size)[0])


def _harmless(op: Op, err: int) -> bool:
    if op.kind in (OpKind.ADD_SERVICE, OpKind.ADD_DEST):
        return err == errno.EEXIST
    if op.kind in (OpKind.DEL_SERVICE, OpKind.DEL_DEST):
        return err in (errno.ENOENT, errno.ESRCH)
    return False
