"""Building VRRP adverts exactly as keepalived 2.2.7 puts them on the wire.

``encode_vrrp`` gives the VRRP message (what a raw IPv6 socket or an IPv4
socket without IP_HDRINCL sends); ``encode_ipv4`` and ``encode_ipv6`` give the
whole IP packet for IP_HDRINCL and packet sockets.  Invalid adverts raise
``ValueError``: they are programming or config errors, never network input.
"""

from __future__ import annotations

import struct
from ipaddress import IPv4Address, IPv6Address

from services.vrrp.packet.checksum import (
    IPPROTO_VRRP,
    internet_checksum,
    ipv4_pseudo_header,
    ipv6_pseudo_header,
)
from services.vrrp.packet.model import (
    AUTH_DATA_LEN,
    IPV4_HEADER_LEN,
    VRRP_GROUP_V4,
    VRRP_TOS,
    VRRP_TTL,
    VRRP_TYPE_ADVERT,
    Advert,
    ChecksumMode,
)
from shared.addresses import IPAddress

_V3_MAX_INTERVAL_CS = 0x0FFF  # 12-bit field: 40.95 s


def checksum_prefix(
    version: int,
    src: IPAddress,
    dst: IPAddress,
    length: int,
    *,
    mode: ChecksumMode,
    old_unicast_group: IPv4Address = VRRP_GROUP_V4,
) -> bytes:
    """The bytes summed in front of the VRRP message for this checksum form.

    Shared by encoder and decoder so both agree on the three IPv4 forms:
    v2 and ``AS_V2`` sum the message alone; ``PSEUDO`` uses the real
    destination; ``OLD_UNICAST`` uses the multicast group instead.  IPv6 is
    always the standard pseudo-header (the kernel's IPV6_CHECKSUM does it).
    """
    if isinstance(src, IPv6Address) and isinstance(dst, IPv6Address):
        return ipv6_pseudo_header(src, dst, length)
    if version == 2 or mode is ChecksumMode.AS_V2:
        return b""
    if isinstance(src, IPv4Address) and isinstance(dst, IPv4Address):
        pseudo_dst = old_unicast_group if mode is ChecksumMode.OLD_UNICAST else dst
        return ipv4_pseudo_header(src, pseudo_dst, length)
    raise ValueError(f"src {src} and dst {dst} are of different families")


def _check_advert(advert: Advert, family: int) -> None:
    """Refuse adverts keepalived could never send; message says which field."""
    problems: list[str] = []
    if advert.version not in (2, 3):
        problems.append(f"version {advert.version}")
    if not 1 <= advert.vrid <= 255:
        problems.append(f"vrid {advert.vrid}")
    if not 0 <= advert.priority <= 255:
        problems.append(f"priority {advert.priority}")
    if len(advert.addresses) > 255:
        problems.append(f"{len(advert.addresses)} addresses")
    if any(a.version != family for a in advert.addresses):
        problems.append(f"address family differs from IPv{family}")
    if advert.version == 2:
        if family != 4:
            problems.append("VRRPv2 is IPv4 only")
        if advert.interval_cs % 100 or not 1 <= advert.interval_cs // 100 <= 255:
            problems.append(f"v2 interval {advert.interval_cs} cs is not 1..255 whole seconds")
        if len(advert.auth_data) != AUTH_DATA_LEN:
            problems.append(f"auth_data is {len(advert.auth_data)} bytes, not 8")
        if not 0 <= advert.auth_type <= 255:
            problems.append(f"auth_type {advert.auth_type}")
    elif not 1 <= advert.interval_cs <= _V3_MAX_INTERVAL_CS:
        problems.append(f"v3 interval {advert.interval_cs} cs is not 1..4095")
    if problems:
        raise ValueError("cannot encode advert: " + ", ".join(problems))


def vrrp_body(advert: Advert, family: int) -> bytes:
    """The VRRP message with a zero checksum field (validated first)."""
    _check_advert(advert, family)
    head = struct.pack(
        "!BBBB", (advert.version << 4) | VRRP_TYPE_ADVERT, advert.vrid, advert.priority, len(advert.addresses)
    )
    if advert.version == 2:
        head += struct.pack("!BBH", advert.auth_type, advert.interval_cs // 100, 0)
        tail = advert.auth_data
    else:
        head += struct.pack("!HH", advert.interval_cs, 0)  # reserved nibble is 0
        tail = b""
    return head + b"".join(a.packed for a in advert.addresses) + tail


def encode_vrrp(
    advert: Advert,
    *,
    src: IPAddress,
    dst: IPAddress,
    checksum_mode: ChecksumMode = ChecksumMode.PSEUDO,
    old_unicast_group: IPv4Address = VRRP_GROUP_V4,
) -> bytes:
    """The VRRP message (everything after the IP header), checksum filled in.

    ``dst`` must be the address the packet really goes to (the group, or the
    peer for unicast): keepalived's v3 pseudo-header uses it.
    """
    body = vrrp_body(advert, src.version)
    prefix = checksum_prefix(
        advert.version, src, dst, len(body), mode=checksum_mode, old_unicast_group=old_unicast_group
    )
    csum = internet_checksum(prefix, body)
    return body[:6] + struct.pack("!H", csum) + body[8:]


def ipv4_header(
    *,
    src: IPv4Address,
    dst: IPv4Address,
    payload_len: int,
    ident: int,
    ttl: int = VRRP_TTL,
    tos: int = VRRP_TOS,
    proto: int = IPPROTO_VRRP,
) -> bytes:
    """A 20-byte IPv4 header as keepalived builds it: no options, DF clear, checksum set."""
    if not 0 <= ident <= 0xFFFF or not 0 <= ttl <= 255:
        raise ValueError(f"ident {ident} or ttl {ttl} out of range")
    total = IPV4_HEADER_LEN + payload_len
    head = struct.pack("!BBHHHBBH4s4s", 0x45, tos, total, ident, 0, ttl, proto, 0, src.packed, dst.packed)
    return head[:10] + struct.pack("!H", internet_checksum(head)) + head[12:]


def encode_ipv4(
    advert: Advert,
    *,
    src: IPv4Address,
    dst: IPv4Address,
    ident: int,
    ttl: int = VRRP_TTL,
    tos: int = VRRP_TOS,
    checksum_mode: ChecksumMode = ChecksumMode.PSEUDO,
    old_unicast_group: IPv4Address = VRRP_GROUP_V4,
) -> bytes:
    """The full IPv4 packet for an IP_HDRINCL raw socket.

    ``ident`` is the caller's per-instance counter (keepalived starts at 1
    and skips 0); ``ttl`` is 255 unless ``unicast_ttl`` says otherwise.
    """
    payload = encode_vrrp(
        advert, src=src, dst=dst, checksum_mode=checksum_mode, old_unicast_group=old_unicast_group
    )
    return ipv4_header(src=src, dst=dst, payload_len=len(payload), ident=ident, ttl=ttl, tos=tos) + payload


def encode_ipv6(
    advert: Advert,
    *,
    src: IPv6Address,
    dst: IPv6Address,
    hop_limit: int = VRRP_TTL,
    traffic_class: int = VRRP_TOS,
    flow_label: int = 0,
) -> bytes:
    """The full IPv6 packet, for packet sockets and tests (raw sockets let the kernel build it).

    keepalived's kernel-built packets carry traffic class 0xC0 and whatever
    flow label the kernel picks; the flow label is not covered by any checksum.
    """
    payload = encode_vrrp(advert, src=src, dst=dst)
    first = (6 << 28) | ((traffic_class & 0xFF) << 20) | (flow_label & 0xFFFFF)
    head = struct.pack("!IHBB", first, len(payload), IPPROTO_VRRP, hop_limit) + src.packed + dst.packed
    return head + payload
