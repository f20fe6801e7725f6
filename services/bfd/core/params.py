"""``bfd_instance`` blocks to session parameters and transport rules (keepalived 2.2.7's defaults).

The parser (``shared.config.vrrp_trackers``) keeps the block as written, in
milliseconds; the session wants microseconds, the wire unit.  The TTL rules
are keepalived's: IPv4 packets leave with ``ttl`` (255), IPv6 ones with
``hoplimit`` (64), and a packet is accepted when its received TTL/hop limit
is at most ``max_hops`` below that value (0: exactly it, as RFC 5881's
single-hop check of 255; 255 disables the check).
"""

from __future__ import annotations

import msgspec

from services.bfd.core.session import SessionParams
from shared.addresses import IPAddress
from shared.config.model_vrrp import BfdInstance

CONTROL_PORT = 3784
"""RFC 5881: single-hop Control packets go to UDP 3784."""

SOURCE_PORTS = range(49152, 65536)
"""RFC 5881: the source port is in 49152-65535, one per session."""

DEFAULT_TTL, DEFAULT_HOPLIMIT = 255, 64


class Transport(msgspec.Struct, frozen=True, kw_only=True):
    """Where one session's packets go and what it accepts."""

    neighbor: IPAddress
    source: IPAddress | None
    ttl: int
    """The TTL (IPv4) or hop limit (IPv6) sent."""
    max_hops: int

    def accepts(self, received_ttl: int | None) -> bool:
        """The received TTL/hop limit is within ``max_hops`` of what we send (unknown: refused)."""
        if self.max_hops >= 255:
            return True
        return received_ttl is not None and received_ttl >= self.ttl - self.max_hops


def _us(ms: float) -> int:
    return max(1, round(ms * 1000))


def session_params(bfd: BfdInstance, local_discr: int) -> SessionParams:
    """The session's timers: ``min_tx``, ``min_rx``, ``idle_tx`` and ``multiplier`` (ms to µs)."""
    return SessionParams(
        name=bfd.name,
        local_discr=local_discr,
        min_tx_us=_us(bfd.min_tx),
        min_rx_us=_us(bfd.min_rx),
        idle_tx_us=_us(bfd.idle_tx),
        detect_mult=bfd.multiplier,
        passive=bfd.passive,
    )


def transport(bfd: BfdInstance) -> Transport:
    """Addresses and TTL rule of one ``bfd_instance`` (the parser drops one without ``neighbor_ip``)."""
    assert bfd.neighbor_ip is not None
    if bfd.neighbor_ip.version == 4:
        ttl = bfd.ttl if bfd.ttl is not None else DEFAULT_TTL
    else:
        ttl = bfd.hoplimit if bfd.hoplimit is not None else DEFAULT_HOPLIMIT
    return Transport(neighbor=bfd.neighbor_ip, source=bfd.source_ip, ttl=ttl, max_hops=bfd.max_hops)
