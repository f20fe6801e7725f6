"""VRRP advert codec (v2 and v3, IPv4 and IPv6, PASS and AH): the public face.

Sans-IO: bytes in, values out, and the reverse; no sockets, no clocks.  The
work is split into small modules (``checksum``, ``model``, ``encode``,
``decode``, ``validate``, ``ah``);
import from here so that split can change freely.  The wire format follows
keepalived 2.2.7 byte for byte (tests/unit/vrrp/test_packet_golden.py holds
captured adverts).
"""

from __future__ import annotations

from services.vrrp.packet.ah import ah_icv, encode_ipv4_ah, parse_ah, verify_ah
from services.vrrp.packet.checksum import IPPROTO_AH, IPPROTO_VRRP, internet_checksum
from services.vrrp.packet.decode import decode, decode_ipv4, decode_ipv6, parse_vrrp
from services.vrrp.packet.encode import encode_ipv4, encode_ipv6, encode_vrrp
from services.vrrp.packet.model import (
    AUTH_DATA_LEN,
    SKIPPABLE,
    VRRP_GROUP_V4,
    VRRP_GROUP_V6,
    VRRP_TOS,
    VRRP_TTL,
    Accepted,
    Advert,
    AdvertWarning,
    AhHeader,
    AuthType,
    ChecksumForm,
    ChecksumMode,
    Drop,
    DropReason,
    Frame,
    RxConfig,
    auth_pass_bytes,
)
from services.vrrp.packet.validate import check_checksum, demux, receive, validate


def new_drop_counters() -> dict[DropReason, int]:
    """One zeroed counter per drop reason, so ``status`` shows every reason even at 0."""
    return dict.fromkeys(DropReason, 0)


__all__ = [
    "AUTH_DATA_LEN",
    "IPPROTO_AH",
    "IPPROTO_VRRP",
    "SKIPPABLE",
    "VRRP_GROUP_V4",
    "VRRP_GROUP_V6",
    "VRRP_TOS",
    "VRRP_TTL",
    "Accepted",
    "Advert",
    "AdvertWarning",
    "AhHeader",
    "AuthType",
    "ChecksumForm",
    "ChecksumMode",
    "Drop",
    "DropReason",
    "Frame",
    "RxConfig",
    "ah_icv",
    "auth_pass_bytes",
    "check_checksum",
    "decode",
    "decode_ipv4",
    "decode_ipv6",
    "demux",
    "encode_ipv4",
    "encode_ipv4_ah",
    "encode_ipv6",
    "encode_vrrp",
    "internet_checksum",
    "new_drop_counters",
    "parse_ah",
    "parse_vrrp",
    "receive",
    "validate",
    "verify_ah",
]
