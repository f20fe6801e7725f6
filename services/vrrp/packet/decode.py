"""Structural decoding of received adverts: bytes in, ``Frame`` or ``Drop`` out, never an exception.

This step needs no configuration: it checks only what makes the bytes a
well-formed VRRP advert (IP header, lengths, version/type, layout).  Policy
checks that depend on the receiving instance live in ``validate``.
"""

from __future__ import annotations

import struct
from ipaddress import IPv4Address, IPv6Address

from services.vrrp.packet.ah import AH_HEADER_LEN, parse_ah
from services.vrrp.packet.checksum import IPPROTO_AH, IPPROTO_VRRP, internet_checksum
from services.vrrp.packet.model import (
    AUTH_DATA_LEN,
    IPV4_HEADER_LEN,
    IPV6_HEADER_LEN,
    MAX_PADDED_IP_LEN,
    VRRP_HEADER_LEN,
    VRRP_TYPE_ADVERT,
    ZERO_AUTH,
    Advert,
    AhHeader,
    AuthType,
    Drop,
    DropReason,
    Frame,
)
from shared.addresses import IPAddress

_IP_FRAGMENT_MASK = 0x3FFF  # MF flag and fragment offset; DF is fine


def parse_vrrp(msg: bytes, family: int) -> tuple[Advert, int] | Drop:
    """Parse a VRRP message for address ``family`` (4 or 6): the advert and its checksum field.

    The message must be exactly as long as ``naddr`` says: VRRP has no length
    field, so any surplus is as suspect as a shortfall.
    """
    if len(msg) < VRRP_HEADER_LEN:
        return Drop(DropReason.BAD_LENGTH, f"VRRP message of {len(msg)} bytes")
    vers_type, vrid, priority, naddr, b4, b5, csum = struct.unpack_from("!BBBBBBH", msg)
    version, kind = vers_type >> 4, vers_type & 0x0F
    if version not in (2, 3) or (version == 2 and family == 6):
        return Drop(DropReason.BAD_VERSION, f"VRRP version {version} over IPv{family}")
    if kind != VRRP_TYPE_ADVERT:
        return Drop(DropReason.BAD_TYPE, f"VRRP type {kind}")
    addr_len = 4 if family == 4 else 16
    auth_len = AUTH_DATA_LEN if version == 2 else 0
    want = VRRP_HEADER_LEN + naddr * addr_len + auth_len
    if len(msg) != want:
        return Drop(DropReason.BAD_LENGTH, f"VRRP message of {len(msg)} bytes, {naddr} addresses need {want}")
    raw_addrs = [
        msg[i : i + addr_len] for i in range(VRRP_HEADER_LEN, VRRP_HEADER_LEN + naddr * addr_len, addr_len)
    ]
    addresses: tuple[IPAddress, ...] = (
        tuple(IPv4Address(bytes(a)) for a in raw_addrs)
        if family == 4
        else tuple(IPv6Address(bytes(a)) for a in raw_addrs)
    )
    if version == 2:
        advert = Advert(
            version=2,
            vrid=vrid,
            priority=priority,
            interval_cs=b5 * 100,
            addresses=addresses,
            auth_type=b4,
            auth_data=bytes(msg[-AUTH_DATA_LEN:]),
        )
    else:
        advert = Advert(
            version=3,
            vrid=vrid,
            priority=priority,
            interval_cs=((b4 << 8) | b5) & 0x0FFF,
            addresses=addresses,
            auth_type=AuthType.NONE,
            auth_data=ZERO_AUTH,
        )
    return advert, csum


def _frame(
    msg: bytes,
    *,
    family: int,
    src: IPAddress,
    dst: IPAddress,
    ttl: int,
    ip_header: bytes = b"",
    ah: AhHeader | None = None,
) -> Frame | Drop:
    parsed = parse_vrrp(msg, family)
    if isinstance(parsed, Drop):
        return parsed
    advert, csum = parsed
    return Frame(
        advert=advert, src=src, dst=dst, ttl=ttl, checksum=csum, vrrp=bytes(msg), ip_header=ip_header, ah=ah
    )


def _ipv4_total(data: bytes, ihl: int) -> int | Drop:
    """The usable length of an IPv4 packet, tolerating link-layer padding of short frames."""
    tot_len = int.from_bytes(data[2:4], "big")
    if tot_len < ihl:
        return Drop(DropReason.IP_TOT_LEN, f"tot_len {tot_len} below header length {ihl}")
    if tot_len > len(data):
        return Drop(DropReason.BAD_LENGTH, f"tot_len {tot_len} but {len(data)} bytes received")
    if tot_len < len(data) and len(data) > MAX_PADDED_IP_LEN:
        return Drop(DropReason.IP_TOT_LEN, f"tot_len {tot_len} but {len(data)} bytes received")
    return tot_len


def decode_ipv4(data: bytes) -> Frame | Drop:
    """Decode a whole IPv4 packet as a raw IPv4 socket or a packet socket delivers it."""
    if len(data) < IPV4_HEADER_LEN:
        return Drop(DropReason.BAD_LENGTH, f"{len(data)} bytes is no IPv4 header")
    ihl = (data[0] & 0x0F) * 4
    if data[0] >> 4 != 4 or ihl < IPV4_HEADER_LEN:
        return Drop(DropReason.BAD_IP_HEADER, f"version/IHL byte {data[0]:#04x}")
    if len(data) < ihl:
        return Drop(DropReason.BAD_LENGTH, f"{len(data)} bytes, IHL {ihl}")
    total = _ipv4_total(data, ihl)
    if isinstance(total, Drop):
        return total
    data = data[:total]
    (frag,) = struct.unpack_from("!H", data, 6)
    ttl, proto = data[8], data[9]
    if frag & _IP_FRAGMENT_MASK:
        return Drop(DropReason.BAD_IP_HEADER, "fragment")
    if internet_checksum(data[:ihl]):
        return Drop(DropReason.BAD_IP_HEADER, "IPv4 header checksum")
    src, dst = IPv4Address(bytes(data[12:16])), IPv4Address(bytes(data[16:20]))
    header, payload = bytes(data[:ihl]), data[ihl:]
    if proto == IPPROTO_VRRP:
        return _frame(payload, family=4, src=src, dst=dst, ttl=ttl, ip_header=header)
    if proto == IPPROTO_AH:
        ah = parse_ah(payload)
        if isinstance(ah, Drop):
            return ah
        return _frame(payload[AH_HEADER_LEN:], family=4, src=src, dst=dst, ttl=ttl, ip_header=header, ah=ah)
    return Drop(DropReason.BAD_IP_HEADER, f"IP protocol {proto}")


def decode_ipv6(data: bytes) -> Frame | Drop:
    """Decode a whole IPv6 packet (packet sockets; raw IPv6 sockets strip the header).

    Extension headers are refused: VRRP adverts never carry them.
    """
    if len(data) < IPV6_HEADER_LEN:
        return Drop(DropReason.BAD_LENGTH, f"{len(data)} bytes is no IPv6 header")
    if data[0] >> 4 != 6:
        return Drop(DropReason.BAD_IP_HEADER, f"version byte {data[0]:#04x}")
    payload_len, next_header, hop_limit = struct.unpack_from("!HBB", data, 4)
    if next_header != IPPROTO_VRRP:
        return Drop(DropReason.BAD_IP_HEADER, f"next header {next_header}")
    if IPV6_HEADER_LEN + payload_len > len(data):
        return Drop(DropReason.BAD_LENGTH, f"payload length {payload_len} but {len(data)} bytes received")
    if IPV6_HEADER_LEN + payload_len < len(data):
        return Drop(DropReason.IP_TOT_LEN, f"payload length {payload_len} but {len(data)} bytes received")
    src, dst = IPv6Address(bytes(data[8:24])), IPv6Address(bytes(data[24:40]))
    return _frame(
        data[IPV6_HEADER_LEN:],
        family=6,
        src=src,
        dst=dst,
        ttl=hop_limit,
        ip_header=bytes(data[:IPV6_HEADER_LEN]),
    )


def decode(
    data: bytes,
    *,
    src: IPAddress | None = None,
    dst: IPAddress | None = None,
    ttl: int | None = None,
) -> Frame | Drop:
    """Decode received bytes; never raises on any input bytes.

    Without ``src``, ``data`` is a whole IP packet (IPv4 raw socket, packet
    socket).  With ``src``, ``dst`` and ``ttl`` (the hop limit), ``data`` is
    the VRRP message as an IPv6 raw socket returns it, the metadata coming
    from recvmsg (source address, IPV6_PKTINFO, IPV6_HOPLIMIT).
    """
    data = bytes(data)
    if src is None:
        if not data:
            return Drop(DropReason.BAD_LENGTH, "empty packet")
        return decode_ipv6(data) if data[0] >> 4 == 6 else decode_ipv4(data)
    if dst is None or ttl is None or src.version != dst.version:
        raise ValueError("payload decoding needs src, dst and ttl of one family")
    return _frame(data, family=src.version, src=src, dst=dst, ttl=ttl)
