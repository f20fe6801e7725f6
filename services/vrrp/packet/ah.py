"""IPsec AH as keepalived uses it for VRRPv2 ``auth_type AH`` (docs/keepalived.md#authentication).

keepalived builds AH itself (no kernel IPsec): a 24-byte header with
SPI = sender address, a sequence number, and a 96-bit HMAC-MD5 ICV keyed
with the 8-byte password.  This module parses the header, computes and
checks the ICV, and builds AH packets.  The anti-replay sequence state is
the caller's (it is per instance and survives across packets).
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from ipaddress import IPv4Address

from services.vrrp.packet.checksum import IPPROTO_AH, IPPROTO_VRRP
from services.vrrp.packet.encode import encode_vrrp, ipv4_header
from services.vrrp.packet.model import (
    AUTH_DATA_LEN,
    VRRP_TOS,
    VRRP_TTL,
    Advert,
    AhHeader,
    AuthType,
    Drop,
    DropReason,
    Frame,
)

AH_HEADER_LEN = 24
AH_ICV_LEN = 12
AH_PAYLOAD_LEN = AH_HEADER_LEN // 4 - 2  # RFC 4302: length in 32-bit words minus 2


def parse_ah(data: bytes) -> AhHeader | Drop:
    """Parse the AH header at the start of ``data``; refuse what keepalived would not send."""
    if len(data) < AH_HEADER_LEN:
        return Drop(DropReason.BAD_LENGTH, "short AH header")
    next_header, payload_len, _reserved, spi, seq = struct.unpack_from("!BBHII", data)
    if next_header != IPPROTO_VRRP:
        return Drop(DropReason.UNSUPPORTED_AH, f"AH next header {next_header}")
    if payload_len != AH_PAYLOAD_LEN:
        return Drop(DropReason.UNSUPPORTED_AH, f"AH payload length {payload_len}")
    raw = bytes(data[:AH_HEADER_LEN])
    return AhHeader(next_header=next_header, payload_len=payload_len, spi=spi, seq=seq, icv=raw[12:], raw=raw)


def ah_icv(ip_header: bytes, ah_raw: bytes, vrrp: bytes, key: bytes, *, unicast: bool) -> bytes:
    """HMAC-MD5-96 over the IP header (mutable fields zeroed), AH (ICV zeroed) and VRRP.

    keepalived zeroes TOS, frag_off and the header checksum, and the TTL only
    for unicast; the IP ID is covered.  Matches all captured 2.2.7 adverts.
    """
    head = bytearray(ip_header)
    head[1] = 0
    head[6:8] = b"\x00\x00"
    head[10:12] = b"\x00\x00"
    if unicast:
        head[8] = 0
    ah = ah_raw[:12] + bytes(AH_ICV_LEN)
    digest = hmac.new(key, bytes(head) + ah + vrrp, hashlib.md5).digest()
    return digest[:AH_ICV_LEN]


def verify_ah(frame: Frame, key: bytes) -> Drop | None:
    """Check SPI and ICV of an AH frame; ``None`` when good.

    The sequence number is returned in ``frame.ah.seq`` for the caller's
    strictly-increasing anti-replay check.
    """
    ah = frame.ah
    if ah is None:
        return Drop(DropReason.AUTH_TYPE_MISMATCH, "no AH header")
    if not isinstance(frame.src, IPv4Address):
        return Drop(DropReason.UNSUPPORTED_AH, "AH over IPv6")
    if ah.spi != int(frame.src):
        return Drop(DropReason.AUTH_FAILURE, "AH SPI is not the source address")
    want = ah_icv(frame.ip_header, ah.raw, frame.vrrp, key, unicast=not frame.dst.is_multicast)
    if not hmac.compare_digest(want, ah.icv):
        return Drop(DropReason.AUTH_FAILURE, "AH ICV mismatch")
    return None


def encode_ipv4_ah(
    advert: Advert,
    *,
    src: IPv4Address,
    dst: IPv4Address,
    ident: int,
    seq: int,
    key: bytes,
    ttl: int = VRRP_TTL,
) -> bytes:
    """An AH-authenticated VRRPv2 packet: IP (proto 51) + AH + VRRP with zero auth data.

    ``key`` is the 8-byte ``auth_pass``; ``seq`` is the caller's counter
    (starts at 1).  The advert's auth fields are forced to AH / zeros.
    """
    if len(key) != AUTH_DATA_LEN or not 0 <= seq <= 0xFFFFFFFF:
        raise ValueError("AH key must be 8 bytes and seq 32-bit")
    inner = Advert(
        version=advert.version,
        vrid=advert.vrid,
        priority=advert.priority,
        interval_cs=advert.interval_cs,
        addresses=advert.addresses,
        auth_type=AuthType.AH,
        auth_data=bytes(AUTH_DATA_LEN),
    )
    if inner.version != 2:
        raise ValueError("AH is VRRPv2 only")
    vrrp = encode_vrrp(inner, src=src, dst=dst)
    head = ipv4_header(
        src=src,
        dst=dst,
        payload_len=AH_HEADER_LEN + len(vrrp),
        ident=ident,
        ttl=ttl,
        tos=VRRP_TOS,
        proto=IPPROTO_AH,
    )
    ah = struct.pack("!BBHII", IPPROTO_VRRP, AH_PAYLOAD_LEN, 0, int(src), seq)
    icv = ah_icv(head, ah, vrrp, key, unicast=not dst.is_multicast)
    return head + ah + icv + vrrp
