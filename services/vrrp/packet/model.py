"""Value types of the VRRP advert codec: the advert itself, receive policy, verdicts.

Everything here is a frozen ``msgspec.Struct`` or an enum so that decoded
adverts can be handed to the state machine, compared in tests and published
without copying.  No behaviour lives here beyond tiny helpers.
"""

from __future__ import annotations

import enum
from ipaddress import IPv4Address, IPv6Address

import msgspec

from shared.addresses import IPAddress

VRRP_GROUP_V4 = IPv4Address("224.0.0.18")
VRRP_GROUP_V6 = IPv6Address("ff02::12")
VRRP_TTL = 255
VRRP_TOS = 0xC0  # DSCP CS6 (network control), what keepalived sets
VRRP_TYPE_ADVERT = 1
AUTH_DATA_LEN = 8
ZERO_AUTH = bytes(AUTH_DATA_LEN)
VRRP_HEADER_LEN = 8
IPV4_HEADER_LEN = 20
IPV6_HEADER_LEN = 40
# A received IPv4 packet may be longer than its tot_len only because the link
# padded a short frame: Ethernet pads the 46-byte minimum payload (60-byte
# frame without FCS), and a stripped 802.1Q tag can leave 4 more bytes.
ETH_MIN_PAYLOAD = 46
VLAN_TAG_LEN = 4
MAX_PADDED_IP_LEN = ETH_MIN_PAYLOAD + VLAN_TAG_LEN


class AuthType(enum.IntEnum):
    """VRRPv2 ``auth_type`` values (RFC 2338; 3768 deprecates 1 and 2, keepalived keeps them)."""

    NONE = 0
    PASS = 1
    AH = 2


class ChecksumMode(enum.Enum):
    """Which VRRPv3-over-IPv4 checksum form to send and to expect.

    ``PSEUDO`` is keepalived's default and RFC 5798's reading; ``AS_V2`` is
    ``v3_checksum_as_v2`` (no pseudo-header, Cisco/Juniper and RFC 9568);
    ``OLD_UNICAST`` is the pre-1.3.6 unicast form that put the multicast
    group instead of the peer in the pseudo-header.  VRRPv2 ignores the mode.
    """

    PSEUDO = "pseudo"
    AS_V2 = "as_v2"
    OLD_UNICAST = "old_unicast"


class ChecksumForm(enum.Enum):
    """The form a received checksum matched, so the caller can react.

    ``OLD_UNICAST`` tells the caller to switch its sender to compat mode, as
    keepalived does ("Setting unicast VRRPv3 checksum to old version").
    ``UNVERIFIED`` is the keepalived quirk: with ``v3_checksum_as_v2`` a bad
    checksum is tolerated.
    """

    PLAIN = "plain"  # VRRPv2, or v3 with v3_checksum_as_v2
    PSEUDO = "pseudo"
    OLD_UNICAST = "old_unicast"
    UNVERIFIED = "unverified"


class DropReason(enum.StrEnum):
    """Why a received packet was not accepted; one counter per member.

    String values so a ``Counter[DropReason]`` serialises to readable keys.
    """

    BAD_IP_HEADER = "bad_ip_header"  # not IPv4/IPv6, bad IHL, fragment, not proto 112/51
    BAD_LENGTH = "bad_length"  # truncated, or VRRP length disagrees with naddr
    IP_TOT_LEN = "ip_tot_len"  # IPv4 tot_len below the bytes received, beyond padding
    BAD_TTL = "bad_ttl"  # TTL / hop limit != 255 on a multicast advert
    BAD_VERSION = "bad_version"
    BAD_TYPE = "bad_type"
    BAD_CHECKSUM = "bad_checksum"
    UNKNOWN_VRID = "unknown_vrid"  # no instance on this socket has the VRID
    VRID_MISMATCH = "vrid_mismatch"  # validated against the wrong instance
    MODE_MISMATCH = "mode_mismatch"  # multicast advert to a unicast instance or vice versa
    UNKNOWN_UNICAST_SRC = "unknown_unicast_src"  # check_unicast_src and source not a peer
    AUTH_TYPE_MISMATCH = "auth_type_mismatch"
    AUTH_FAILURE = "auth_failure"  # wrong password or ICV
    AH_REPLAY = "ah_replay"  # AH sequence number not above the instance's last one (a replay)
    UNSUPPORTED_AH = "unsupported_ah"  # AH on IPv6/v3, or AH not carrying VRRP
    INTERVAL_MISMATCH = "interval_mismatch"  # v2 only; keepalived drops silently
    ADDR_LIST_MISMATCH = "addr_list_mismatch"  # VIP count or set differs (keepalived 2.2.7 refuses it)
    TTL_OUT_OF_RANGE = "ttl_out_of_range"  # check_unicast_src and a peer's min_ttl/max_ttl


class AdvertWarning(enum.StrEnum):
    """Conditions on an *accepted* advert that the caller should log (rate-limited)."""

    INTERVAL_MISMATCH = "interval_mismatch"  # v3: accepted, logged once
    ADDR_LIST_MISMATCH = "addr_list_mismatch"  # skip_check_adv_addr: only the current master may
    TTL_OUT_OF_RANGE = "ttl_out_of_range"  # skip_check_adv_addr: only the current master may
    CHECKSUM_UNVERIFIED = "checksum_unverified"  # v3_checksum_as_v2 quirk
    OLD_UNICAST_CHECKSUM = "old_unicast_checksum"  # peer uses the pre-1.3.6 form


SKIPPABLE: frozenset[AdvertWarning] = frozenset(
    {AdvertWarning.ADDR_LIST_MISMATCH, AdvertWarning.TTL_OUT_OF_RANGE}
)
"""Warnings for a keepalived 2.2.7 drop that ``skip_check_adv_addr`` waives for the current master."""


class Advert(msgspec.Struct, frozen=True, kw_only=True):
    """One VRRP advertisement, version-independent.

    ``interval_cs`` is always centiseconds, whatever the version, so the state
    machine never converts: VRRPv2 carries whole seconds, so a v2 advert's
    interval is a multiple of 100 (the encoder refuses anything else).
    ``auth_type``/``auth_data`` only exist on the wire for v2 over IPv4; a
    decoded v3 advert has ``AuthType.NONE`` and zero bytes.  ``auth_type`` is
    a plain int because a received byte may be outside ``AuthType``.
    """

    version: int
    vrid: int
    priority: int
    interval_cs: int
    addresses: tuple[IPAddress, ...]
    auth_type: int = AuthType.NONE
    auth_data: bytes = ZERO_AUTH


class AhHeader(msgspec.Struct, frozen=True, kw_only=True):
    """The IPsec AH header keepalived prepends for ``auth_type AH`` (RFC 2402 layout).

    ``raw`` keeps the exact 24 bytes because the ICV covers them.
    """

    next_header: int
    payload_len: int
    spi: int
    seq: int
    icv: bytes
    raw: bytes


class Frame(msgspec.Struct, frozen=True, kw_only=True):
    """A structurally valid advert plus what validation needs from the IP layer.

    ``vrrp`` is the exact VRRP message (checksum verification works on it);
    ``ip_header`` and ``ah`` are kept so AH's ICV can be verified.
    """

    advert: Advert
    src: IPAddress
    dst: IPAddress
    ttl: int
    checksum: int
    vrrp: bytes
    ip_header: bytes = b""
    ah: AhHeader | None = None


class Drop(msgspec.Struct, frozen=True):
    """A refused packet: count ``reason``; ``detail`` is for a (rate-limited) log line."""

    reason: DropReason
    detail: str = ""


class Accepted(msgspec.Struct, frozen=True, kw_only=True):
    """A validated advert ready for the state machine."""

    frame: Frame
    checksum_form: ChecksumForm
    warnings: frozenset[AdvertWarning] = frozenset()

    @property
    def advert(self) -> Advert:
        """The advert itself, the usual thing a caller wants."""
        return self.frame.advert


class RxConfig(msgspec.Struct, frozen=True, kw_only=True):
    """What one instance expects of the adverts it receives (its config slice).

    A differing VIP list is dropped, as keepalived 2.2.7 does (2.3.3+ accepts
    it).  ``skip_check_adv_addr`` turns that drop, and that of a unicast TTL
    outside the peer's ``min_ttl``/``max_ttl`` (``peer_ttls``, checked with
    ``check_unicast_src`` only, as in 2.2.7), into a warning in
    :data:`SKIPPABLE`: the instance then accepts it only from the master it
    already follows in BACKUP (``VrrpMachine.follows``), which needs state the
    codec does not have.  ``old_unicast_autodetect`` is false for
    ``old_unicast_checksum never``.
    """

    vrid: int
    version: int = 2
    interval_cs: int = 100
    addresses: tuple[IPAddress, ...] = ()
    auth_type: int = AuthType.NONE
    auth_data: bytes = ZERO_AUTH
    unicast: bool = False
    unicast_peers: frozenset[IPAddress] = frozenset()
    check_unicast_src: bool = False
    checksum_mode: ChecksumMode = ChecksumMode.PSEUDO
    old_unicast_autodetect: bool = True
    skip_check_adv_addr: bool = False
    rx_buf_size: int = 0
    """``kernel_rx_buf_size`` (0: not set): the socket's buffer is the sum of its instances' (keepalived)."""
    peer_ttls: tuple[tuple[IPAddress, int, int], ...] = ()
    """(peer, min_ttl, max_ttl) of each unicast peer that sets a range (keepalived's defaults 0 and 255)."""
    mcast_group4: IPv4Address = VRRP_GROUP_V4


def auth_pass_bytes(value: str | bytes) -> bytes:
    """The 8-byte on-wire form of ``auth_pass``: truncated, then zero-padded.

    keepalived stores the password in an 8-byte field ("secret123" goes out
    as "secret12"); the config layer warns when ``len(value) > 8``.
    """
    raw = value.encode() if isinstance(value, str) else bytes(value)
    return raw[:AUTH_DATA_LEN].ljust(AUTH_DATA_LEN, b"\x00")
