"""pyroute2's view of the IPVS messages: the complete ``linux/ip_vs.h`` attribute set on ``genlmsg``.

Why keep it when ``ipvs_codec`` does the work: it is the independent reference
the unit tests compare our bytes with, and a decoder for anyone inspecting our
netlink traffic with pyroute2 tools.  pyroute2's own ``ipvs`` module lacks the
daemon attributes and reads the tunnel port in host byte order.
"""

from __future__ import annotations

import socket
from typing import Any

from pyroute2.netlink import genlmsg, nla

from services.lvs.core.desired import DestAttrs, DestKey, ServiceAttrs, ServiceKey


class IpvsMsg(genlmsg):  # type: ignore[misc]
    """``linux/ip_vs.h`` in full (kernel 5.3+: tunnel type/port/flags; daemon multicast options)."""

    prefix = "IPVS_CMD_ATTR_"
    nla_map = (
        ("IPVS_CMD_ATTR_UNSPEC", "none"),
        ("IPVS_CMD_ATTR_SERVICE", "service"),
        ("IPVS_CMD_ATTR_DEST", "dest"),
        ("IPVS_CMD_ATTR_DAEMON", "daemon"),
        ("IPVS_CMD_ATTR_TIMEOUT_TCP", "uint32"),
        ("IPVS_CMD_ATTR_TIMEOUT_TCP_FIN", "uint32"),
        ("IPVS_CMD_ATTR_TIMEOUT_UDP", "uint32"),
    )

    class service(nla):  # type: ignore[misc]
        prefix = "IPVS_SVC_ATTR_"
        nla_map = (
            ("IPVS_SVC_ATTR_UNSPEC", "none"),
            ("IPVS_SVC_ATTR_AF", "uint16"),
            ("IPVS_SVC_ATTR_PROTOCOL", "uint16"),
            ("IPVS_SVC_ATTR_ADDR", "cdata"),
            ("IPVS_SVC_ATTR_PORT", "be16"),
            ("IPVS_SVC_ATTR_FWMARK", "uint32"),
            ("IPVS_SVC_ATTR_SCHED_NAME", "asciiz"),
            ("IPVS_SVC_ATTR_FLAGS", "flags"),
            ("IPVS_SVC_ATTR_TIMEOUT", "uint32"),
            ("IPVS_SVC_ATTR_NETMASK", "uint32"),
            ("IPVS_SVC_ATTR_STATS", "hex"),
            ("IPVS_SVC_ATTR_PE_NAME", "asciiz"),
            ("IPVS_SVC_ATTR_STATS64", "hex"),
        )

        class flags(nla):  # type: ignore[misc]
            fields = (("flags", "I"), ("mask", "I"))

    class dest(nla):  # type: ignore[misc]
        prefix = "IPVS_DEST_ATTR_"
        nla_map = (
            ("IPVS_DEST_ATTR_UNSPEC", "none"),
            ("IPVS_DEST_ATTR_ADDR", "cdata"),
            ("IPVS_DEST_ATTR_PORT", "be16"),
            ("IPVS_DEST_ATTR_FWD_METHOD", "uint32"),
            ("IPVS_DEST_ATTR_WEIGHT", "uint32"),
            ("IPVS_DEST_ATTR_U_THRESH", "uint32"),
            ("IPVS_DEST_ATTR_L_THRESH", "uint32"),
            ("IPVS_DEST_ATTR_ACTIVE_CONNS", "uint32"),
            ("IPVS_DEST_ATTR_INACT_CONNS", "uint32"),
            ("IPVS_DEST_ATTR_PERSIST_CONNS", "uint32"),
            ("IPVS_DEST_ATTR_STATS", "hex"),
            ("IPVS_DEST_ATTR_ADDR_FAMILY", "uint16"),
            ("IPVS_DEST_ATTR_STATS64", "hex"),
            ("IPVS_DEST_ATTR_TUN_TYPE", "uint8"),
            ("IPVS_DEST_ATTR_TUN_PORT", "be16"),
            ("IPVS_DEST_ATTR_TUN_FLAGS", "uint16"),
        )

    class daemon(nla):  # type: ignore[misc]
        prefix = "IPVS_DAEMON_ATTR_"
        nla_map = (
            ("IPVS_DAEMON_ATTR_UNSPEC", "none"),
            ("IPVS_DAEMON_ATTR_STATE", "uint32"),
            ("IPVS_DAEMON_ATTR_MCAST_IFN", "asciiz"),
            ("IPVS_DAEMON_ATTR_SYNC_ID", "uint32"),
            ("IPVS_DAEMON_ATTR_SYNC_MAXLEN", "uint16"),
            ("IPVS_DAEMON_ATTR_MCAST_GROUP", "cdata"),
            ("IPVS_DAEMON_ATTR_MCAST_GROUP6", "cdata"),
            ("IPVS_DAEMON_ATTR_MCAST_PORT", "uint16"),
            ("IPVS_DAEMON_ATTR_MCAST_TTL", "uint8"),
        )


def addr_bytes(addr: str, af: int) -> bytes:
    return socket.inet_pton(af, addr)


def service_nla(key: ServiceKey, attrs: ServiceAttrs | None) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = [("IPVS_SVC_ATTR_AF", key.af)]
    if key.fwmark:
        out.append(("IPVS_SVC_ATTR_FWMARK", key.fwmark))
    else:
        assert key.addr is not None
        out += [
            ("IPVS_SVC_ATTR_PROTOCOL", key.protocol),
            ("IPVS_SVC_ATTR_ADDR", addr_bytes(key.addr, key.af)),
            ("IPVS_SVC_ATTR_PORT", key.port),
        ]
    if attrs is not None:
        out += [
            ("IPVS_SVC_ATTR_SCHED_NAME", attrs.sched),
            ("IPVS_SVC_ATTR_FLAGS", {"flags": attrs.flags, "mask": 0xFFFFFFFF}),
            ("IPVS_SVC_ATTR_TIMEOUT", attrs.timeout),
            ("IPVS_SVC_ATTR_NETMASK", attrs.netmask),
        ]
        if attrs.pe_name:
            out.append(("IPVS_SVC_ATTR_PE_NAME", attrs.pe_name))
    return out


def dest_nla(dest: DestKey, attrs: DestAttrs | None) -> list[tuple[str, Any]]:
    af = socket.AF_INET6 if ":" in dest.addr else socket.AF_INET
    out: list[tuple[str, Any]] = [
        ("IPVS_DEST_ATTR_ADDR_FAMILY", af),
        ("IPVS_DEST_ATTR_ADDR", addr_bytes(dest.addr, af)),
        ("IPVS_DEST_ATTR_PORT", dest.port),
    ]
    a = attrs or DestAttrs()
    # The kernel's dest policy wants every field on NEW/SET (and accepts them on DEL).
    out += [
        ("IPVS_DEST_ATTR_FWD_METHOD", a.fwd),
        ("IPVS_DEST_ATTR_WEIGHT", a.weight),
        ("IPVS_DEST_ATTR_U_THRESH", a.u_thresh),
        ("IPVS_DEST_ATTR_L_THRESH", a.l_thresh),
        ("IPVS_DEST_ATTR_TUN_TYPE", a.tun_type),
        ("IPVS_DEST_ATTR_TUN_PORT", a.tun_port),
        ("IPVS_DEST_ATTR_TUN_FLAGS", a.tun_flags),
    ]
    return out
