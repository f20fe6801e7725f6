"""A fast codec for the IPVS messages on the hot path (apply and table dumps).

Why not pyroute2's generic ``nla`` classes here: they cost ~200 µs per message
in pure Python, which is 9 s of CPU for a 40,000-real-server table on a real
machine and minutes under emulation.  IPVS messages are flat TLVs with one
level of nesting, so ``struct`` does it in a few µs.  ``ipvs.IpvsMsg`` (the
pyroute2 declaration of the same attributes) remains the reference: the unit
tests encode through both and compare bytes.
"""

from __future__ import annotations

import socket
import struct

from services.lvs.core.desired import DestAttrs, DestKey, ServiceAttrs, ServiceKey
from services.lvs.core.sync import DaemonSpec

NLA_HDR = struct.Struct("=HH")
NLMSG_HDR = struct.Struct("=IHHII")
GENL_HDR = struct.Struct("=BBH")

# linux/ip_vs.h attribute numbers
CMD_ATTR_SERVICE, CMD_ATTR_DEST = 1, 2
SVC_AF, SVC_PROTOCOL, SVC_ADDR, SVC_PORT, SVC_FWMARK = 1, 2, 3, 4, 5
SVC_SCHED_NAME, SVC_FLAGS, SVC_TIMEOUT, SVC_NETMASK, SVC_PE_NAME = 6, 7, 8, 9, 11
DEST_ADDR, DEST_PORT, DEST_FWD_METHOD, DEST_WEIGHT, DEST_U_THRESH, DEST_L_THRESH = 1, 2, 3, 4, 5, 6
DEST_ADDR_FAMILY, DEST_TUN_TYPE, DEST_TUN_PORT, DEST_TUN_FLAGS = 11, 13, 14, 15

CMD_ATTR_DAEMON = 3
DAEMON_STATE, DAEMON_MCAST_IFN, DAEMON_SYNC_ID, DAEMON_SYNC_MAXLEN = 1, 2, 3, 4
DAEMON_MCAST_GROUP, DAEMON_MCAST_GROUP6, DAEMON_MCAST_PORT, DAEMON_MCAST_TTL = 5, 6, 7, 8

_U16 = struct.Struct("=H")
_U32 = struct.Struct("=I")
_BE16 = struct.Struct("!H")


def nla(kind: int, payload: bytes) -> bytes:
    size = NLA_HDR.size + len(payload)
    return NLA_HDR.pack(size, kind) + payload + b"\0" * (-size % 4)


def service_attrs_bytes(key: ServiceKey, attrs: ServiceAttrs | None) -> bytes:
    parts = [nla(SVC_AF, _U16.pack(key.af))]
    if key.fwmark:
        parts.append(nla(SVC_FWMARK, _U32.pack(key.fwmark)))
    else:
        assert key.addr is not None
        parts += [
            nla(SVC_PROTOCOL, _U16.pack(key.protocol)),
            nla(SVC_ADDR, socket.inet_pton(key.af, key.addr)),
            nla(SVC_PORT, _BE16.pack(key.port)),
        ]
    if attrs is not None:
        parts += [
            nla(SVC_SCHED_NAME, attrs.sched.encode() + b"\0"),
            nla(SVC_FLAGS, struct.pack("=II", attrs.flags, 0xFFFFFFFF)),
            nla(SVC_TIMEOUT, _U32.pack(attrs.timeout)),
            nla(SVC_NETMASK, _U32.pack(attrs.netmask)),
        ]
        if attrs.pe_name:
            parts.append(nla(SVC_PE_NAME, attrs.pe_name.encode() + b"\0"))
    return b"".join(parts)


def dest_attrs_bytes(dest: DestKey, attrs: DestAttrs | None) -> bytes:
    af = socket.AF_INET6 if ":" in dest.addr else socket.AF_INET
    a = attrs or DestAttrs()
    return b"".join(
        (
            nla(DEST_ADDR_FAMILY, _U16.pack(af)),
            nla(DEST_ADDR, socket.inet_pton(af, dest.addr)),
            nla(DEST_PORT, _BE16.pack(dest.port)),
            nla(DEST_FWD_METHOD, _U32.pack(a.fwd)),
            nla(DEST_WEIGHT, _U32.pack(a.weight)),
            nla(DEST_U_THRESH, _U32.pack(a.u_thresh)),
            nla(DEST_L_THRESH, _U32.pack(a.l_thresh)),
            nla(DEST_TUN_TYPE, bytes((a.tun_type,))),
            nla(DEST_TUN_PORT, _BE16.pack(a.tun_port)),
            nla(DEST_TUN_FLAGS, _U16.pack(a.tun_flags)),
        )
    )


def message(family: int, flags: int, seq: int, cmd: int, attrs: bytes) -> bytes:
    """One netlink message: nlmsghdr + genlmsghdr (version 1) + attributes."""
    size = NLMSG_HDR.size + GENL_HDR.size + len(attrs)
    return NLMSG_HDR.pack(size, family, flags, seq, 0) + GENL_HDR.pack(cmd, 1, 0) + attrs


def parse_attrs(data: bytes | memoryview, offset: int = 0, end: int | None = None) -> dict[int, bytes]:
    """Flat TLV walk: attribute number (nested flag stripped) -> payload."""
    out: dict[int, bytes] = {}
    end = len(data) if end is None else end
    while offset + 4 <= end:
        size, kind = NLA_HDR.unpack_from(data, offset)
        if size < 4:
            break
        out[kind & 0x3FFF] = bytes(data[offset + 4 : offset + size])
        offset += (size + 3) & ~3
    return out


def u(raw: bytes | None, default: int = 0) -> int:
    """An unsigned attribute in host order (u16 or u32); ``default`` when absent."""
    if not raw:
        return default
    return int.from_bytes(raw, "little") if len(raw) != 2 else _U16.unpack(raw)[0]


def _addr(raw: bytes, af: int) -> str:
    return socket.inet_ntop(af, raw[: 16 if af == socket.AF_INET6 else 4])


def decode_service(payload: bytes) -> tuple[ServiceKey, ServiceAttrs]:
    a = parse_attrs(payload)
    af = u(a.get(SVC_AF))
    fwmark = u(a.get(SVC_FWMARK))
    if fwmark:
        key = ServiceKey(af, 0, None, 0, fwmark)
    else:
        key = ServiceKey(af, u(a.get(SVC_PROTOCOL)), _addr(a[SVC_ADDR], af), _BE16.unpack(a[SVC_PORT])[0], 0)
    flags = struct.unpack("=II", a[SVC_FLAGS])[0] if SVC_FLAGS in a else 0
    attrs = ServiceAttrs(
        sched=a.get(SVC_SCHED_NAME, b"").rstrip(b"\0").decode(),
        flags=flags,
        timeout=u(a.get(SVC_TIMEOUT)),
        netmask=u(a.get(SVC_NETMASK)),
        pe_name=a.get(SVC_PE_NAME, b"").rstrip(b"\0").decode(),
    )
    return key, attrs


def decode_dest(payload: bytes, service_af: int) -> tuple[DestKey, DestAttrs]:
    a = parse_attrs(payload)
    af = u(a.get(DEST_ADDR_FAMILY), service_af)
    key = DestKey(_addr(a[DEST_ADDR], af), _BE16.unpack(a[DEST_PORT])[0])
    attrs = DestAttrs(
        fwd=u(a.get(DEST_FWD_METHOD)) & 0x7,
        weight=u(a.get(DEST_WEIGHT)),
        u_thresh=u(a.get(DEST_U_THRESH)),
        l_thresh=u(a.get(DEST_L_THRESH)),
        tun_type=u(a.get(DEST_TUN_TYPE)),
        tun_port=_BE16.unpack(a[DEST_TUN_PORT])[0] if DEST_TUN_PORT in a else 0,
        tun_flags=u(a.get(DEST_TUN_FLAGS)),
    )
    return key, attrs


def daemon_attrs_bytes(spec: DaemonSpec, full: bool = True) -> bytes:
    """IPVS_CMD_ATTR_DAEMON payload; DEL_DAEMON needs only the state."""
    parts = [nla(DAEMON_STATE, _U32.pack(spec.state))]
    if not full:
        return b"".join(parts)
    parts += [
        nla(DAEMON_MCAST_IFN, spec.interface.encode() + b"\0"),
        nla(DAEMON_SYNC_ID, _U32.pack(spec.syncid)),
    ]
    if spec.maxlen:
        parts.append(nla(DAEMON_SYNC_MAXLEN, _U16.pack(spec.maxlen)))
    if spec.group:
        if ":" in spec.group:
            parts.append(nla(DAEMON_MCAST_GROUP6, socket.inet_pton(socket.AF_INET6, spec.group)))
        else:
            parts.append(nla(DAEMON_MCAST_GROUP, socket.inet_pton(socket.AF_INET, spec.group)))
    parts.append(nla(DAEMON_MCAST_PORT, _U16.pack(spec.port)))
    if spec.ttl:
        parts.append(nla(DAEMON_MCAST_TTL, bytes((spec.ttl,))))
    return b"".join(parts)


def decode_daemon(payload: bytes) -> DaemonSpec:
    a = parse_attrs(payload)
    group = ""
    if DAEMON_MCAST_GROUP6 in a and any(a[DAEMON_MCAST_GROUP6]):
        group = socket.inet_ntop(socket.AF_INET6, a[DAEMON_MCAST_GROUP6][:16])
    elif DAEMON_MCAST_GROUP in a:
        group = socket.inet_ntop(socket.AF_INET, a[DAEMON_MCAST_GROUP][:4])
    return DaemonSpec(
        state=u(a.get(DAEMON_STATE)),
        interface=a.get(DAEMON_MCAST_IFN, b"").rstrip(b"\0").decode(),
        syncid=u(a.get(DAEMON_SYNC_ID)),
        maxlen=u(a.get(DAEMON_SYNC_MAXLEN)),
        port=u(a.get(DAEMON_MCAST_PORT), 8848),
        ttl=u(a.get(DAEMON_MCAST_TTL)),
        group=group,
    )
