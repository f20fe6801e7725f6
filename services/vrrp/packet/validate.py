"""Receive policy: is this well-formed advert acceptable to this instance?

Follows keepalived 2.2.7's ``vrrp_check_packet`` verdicts
(docs/keepalived.md#packet-validation), a differing VIP list included (dropped;
keepalived >= 2.3.3 accepts it).  Each check is a small
function returning ``Drop`` or ``None`` so new ones (auth_hmac, min/max TTL)
slot in without touching the others.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from ipaddress import IPv4Address

from services.vrrp.packet.ah import verify_ah
from services.vrrp.packet.ah_sequence import AhSequence
from services.vrrp.packet.checksum import internet_checksum
from services.vrrp.packet.decode import decode
from services.vrrp.packet.encode import checksum_prefix
from services.vrrp.packet.model import (
    VRRP_TTL,
    Accepted,
    AdvertWarning,
    AuthType,
    ChecksumForm,
    ChecksumMode,
    Drop,
    DropReason,
    Frame,
    RxConfig,
)
from shared.addresses import IPAddress


def demux(frame: Frame, instances: Mapping[int, RxConfig]) -> RxConfig | Drop:
    """Pick the instance for the advert's VRID among those sharing the socket."""
    cfg = instances.get(frame.advert.vrid)
    if cfg is None:
        return Drop(DropReason.UNKNOWN_VRID, f"VRID {frame.advert.vrid}")
    return cfg


def _check_vrid(frame: Frame, cfg: RxConfig) -> Drop | None:
    if frame.advert.vrid != cfg.vrid:
        return Drop(DropReason.VRID_MISMATCH, f"VRID {frame.advert.vrid}, expected {cfg.vrid}")
    return None


def _check_ttl(frame: Frame, cfg: RxConfig) -> Drop | None:
    """TTL/hop limit 255 proves a multicast advert is link-local; unicast may be routed."""
    if frame.dst.is_multicast and frame.ttl != VRRP_TTL:
        return Drop(DropReason.BAD_TTL, f"TTL {frame.ttl}")
    return None


def _check_version(frame: Frame, cfg: RxConfig) -> Drop | None:
    if frame.advert.version != cfg.version:
        return Drop(DropReason.BAD_VERSION, f"version {frame.advert.version}, expected {cfg.version}")
    return None


def _check_mode(frame: Frame, cfg: RxConfig) -> Drop | None:
    if frame.dst.is_multicast == cfg.unicast:
        kind = "multicast" if frame.dst.is_multicast else "unicast"
        return Drop(DropReason.MODE_MISMATCH, f"{kind} advert to {frame.dst}")
    if cfg.unicast and cfg.check_unicast_src and frame.src not in cfg.unicast_peers:
        return Drop(DropReason.UNKNOWN_UNICAST_SRC, f"source {frame.src}")
    return None


def _check_auth(frame: Frame, cfg: RxConfig) -> Drop | None:
    """v2 only: AH presence and auth_type must match the config; PASS compares all 8 bytes.

    v3 carries no authentication (keepalived ignores ``authentication`` with v3);
    AH around a v3 message is something we cannot verify.
    """
    advert = frame.advert
    if advert.version != 2:
        return Drop(DropReason.UNSUPPORTED_AH, "AH with VRRPv3") if frame.ah is not None else None
    if (frame.ah is not None) != (cfg.auth_type == AuthType.AH) or advert.auth_type != cfg.auth_type:
        ah = "AH" if frame.ah is not None else "no AH"
        return Drop(DropReason.AUTH_TYPE_MISMATCH, f"auth_type {advert.auth_type} with {ah}")
    if cfg.auth_type == AuthType.PASS and not hmac.compare_digest(advert.auth_data, cfg.auth_data):
        return Drop(DropReason.AUTH_FAILURE, "password mismatch")
    if cfg.auth_type == AuthType.AH:
        return verify_ah(frame, cfg.auth_data)
    return None


def _sums_to_zero(frame: Frame, mode: ChecksumMode, group: IPv4Address) -> bool:
    prefix = checksum_prefix(
        frame.advert.version, frame.src, frame.dst, len(frame.vrrp), mode=mode, old_unicast_group=group
    )
    return internet_checksum(prefix, frame.vrrp) == 0


def check_checksum(frame: Frame, cfg: RxConfig) -> tuple[ChecksumForm, frozenset[AdvertWarning]] | Drop:
    """Which checksum form the advert carries, or ``Drop`` when none acceptable matches.

    v2 and IPv6 have one form.  v3 over IPv4 follows keepalived: the
    configured form first; in pseudo mode a unicast advert may use the
    pre-1.3.6 form (the caller should switch to it); with
    ``v3_checksum_as_v2`` a bad checksum is tolerated, flagged ``UNVERIFIED``.
    """

    def ok(mode: ChecksumMode) -> bool:
        return _sums_to_zero(frame, mode, cfg.mcast_group4)

    none: frozenset[AdvertWarning] = frozenset()
    if frame.advert.version == 2:
        return (ChecksumForm.PLAIN, none) if ok(ChecksumMode.AS_V2) else Drop(DropReason.BAD_CHECKSUM, "v2")
    if not isinstance(frame.src, IPv4Address) or cfg.checksum_mode is ChecksumMode.PSEUDO:
        if ok(ChecksumMode.PSEUDO):
            return ChecksumForm.PSEUDO, none
        if (
            isinstance(frame.src, IPv4Address)
            and not frame.dst.is_multicast
            and cfg.old_unicast_autodetect
            and ok(ChecksumMode.OLD_UNICAST)
        ):
            return ChecksumForm.OLD_UNICAST, frozenset({AdvertWarning.OLD_UNICAST_CHECKSUM})
        return Drop(DropReason.BAD_CHECKSUM, "v3 with pseudo-header")
    if cfg.checksum_mode is ChecksumMode.AS_V2:
        if ok(ChecksumMode.AS_V2):
            return ChecksumForm.PLAIN, none
        return ChecksumForm.UNVERIFIED, frozenset({AdvertWarning.CHECKSUM_UNVERIFIED})
    if ok(ChecksumMode.OLD_UNICAST):
        return ChecksumForm.OLD_UNICAST, none
    if ok(ChecksumMode.PSEUDO):
        return ChecksumForm.PSEUDO, none
    return Drop(DropReason.BAD_CHECKSUM, "v3 in old unicast mode")


def _interval_warnings(frame: Frame, cfg: RxConfig) -> frozenset[AdvertWarning] | Drop:
    """v2: a different interval is DROPped (two masters follow, as in keepalived); v3: a warning."""
    if frame.advert.interval_cs == cfg.interval_cs:
        return frozenset()
    if frame.advert.version == 2:
        return Drop(
            DropReason.INTERVAL_MISMATCH,
            f"interval {frame.advert.interval_cs} cs, expected {cfg.interval_cs}",
        )
    return frozenset({AdvertWarning.INTERVAL_MISMATCH})


def _skippable(cfg: RxConfig, warning: AdvertWarning, drop: Drop) -> frozenset[AdvertWarning] | Drop:
    """2.2.7 drops it, unless ``skip_check_adv_addr`` (then the instance decides: its current master only)."""
    return frozenset({warning}) if cfg.skip_check_adv_addr else drop


def _address_warnings(frame: Frame, cfg: RxConfig) -> frozenset[AdvertWarning] | Drop:
    """A differing VIP count or set: keepalived 2.2.7's "unexpected ip number count" / "not present"."""
    got: tuple[IPAddress, ...] = frame.advert.addresses
    if len(got) == len(cfg.addresses) and set(got) == set(cfg.addresses):
        return frozenset()
    drop = Drop(DropReason.ADDR_LIST_MISMATCH, f"{len(got)} addresses, expected {len(cfg.addresses)}")
    return _skippable(cfg, AdvertWarning.ADDR_LIST_MISMATCH, drop)


def _ttl_warnings(frame: Frame, cfg: RxConfig) -> frozenset[AdvertWarning] | Drop:
    """A unicast peer's ``min_ttl``/``max_ttl``: checked only with ``check_unicast_src``, as in 2.2.7."""
    if not (cfg.unicast and cfg.check_unicast_src):
        return frozenset()
    for peer, low, high in cfg.peer_ttls:
        if peer == frame.src and not low <= frame.ttl <= high:
            drop = Drop(DropReason.TTL_OUT_OF_RANGE, f"TTL/HL {frame.ttl} not in range {low} - {high}")
            return _skippable(cfg, AdvertWarning.TTL_OUT_OF_RANGE, drop)
    return frozenset()


_GATES: tuple[Callable[[Frame, RxConfig], Drop | None], ...] = (
    _check_vrid,
    _check_ttl,
    _check_version,
    _check_mode,
)


def validate(frame: Frame, cfg: RxConfig, sequence: AhSequence | None = None) -> Accepted | Drop:
    """Apply the instance's receive policy to a decoded frame.

    Order: VRID, TTL, version, uni/multicast mode, checksum, authentication,
    AH sequence, interval, addresses, unicast TTL range.  The checksum comes before
    authentication so a corrupted packet is counted as corrupted, not as an
    attack.  ``sequence`` is the instance's AH anti-replay counter, admitted
    (and moved) right after SPI and ICV passed, where keepalived checks it;
    the receive path always passes it; without it only the stateless checks
    run (a capture, a test of the other checks).
    """
    for gate in _GATES:
        drop = gate(frame, cfg)
        if drop is not None:
            return drop
    checked = check_checksum(frame, cfg)
    if isinstance(checked, Drop):
        return checked
    form, warnings = checked
    auth = _check_auth(frame, cfg)
    if auth is not None:
        return auth
    if frame.ah is not None and sequence is not None:
        replay = sequence.admit(frame.ah.seq)
        if replay is not None:
            return replay
    for extra in (_interval_warnings(frame, cfg), _address_warnings(frame, cfg), _ttl_warnings(frame, cfg)):
        if isinstance(extra, Drop):
            return extra
        warnings |= extra
    return Accepted(frame=frame, checksum_form=form, warnings=warnings)


def receive(
    data: bytes,
    instances: Mapping[int, RxConfig],
    *,
    src: IPAddress | None = None,
    dst: IPAddress | None = None,
    ttl: int | None = None,
    sequences: Mapping[int, AhSequence] | None = None,
) -> Accepted | Drop:
    """decode → demux by VRID → validate, the whole receive path for one socket.

    ``sequences``: the AH anti-replay counter of each VRID (see ``validate``).
    """
    frame = decode(data, src=src, dst=dst, ttl=ttl)
    if isinstance(frame, Drop):
        return frame
    cfg = demux(frame, instances)
    if isinstance(cfg, Drop):
        return cfg
    return validate(frame, cfg, None if sequences is None else sequences.get(frame.advert.vrid))
