"""Converters from configuration words to typed values, with keepalived's rules.

Each converter raises ``BadValue`` with a description of what was expected; the
caller (``Context.value``) turns that into a diagnostic at the right line.  No
converter reads the host: that is ``host.py``'s job.
"""

from __future__ import annotations

import ipaddress
from decimal import Decimal, InvalidOperation

from shared.addresses import IPAddress

TRUE_WORDS = frozenset({"on", "true", "yes"})
FALSE_WORDS = frozenset({"off", "false", "no"})


class BadValue(ValueError):
    """A word that does not fit; the message says what would have."""


def to_int(word: str, lo: int | None = None, hi: int | None = None) -> int:
    """Parse a decimal integer, optionally within ``[lo, hi]``."""
    try:
        value = int(word, 10)
    except ValueError:
        raise BadValue(f"an integer{_range(lo, hi)}, got '{word}'") from None
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise BadValue(f"an integer{_range(lo, hi)}, got {value}")
    return value


def to_timer(word: str, lo: float | None = None, hi: float | None = None) -> float:
    """Parse keepalived's <TIMER>: decimal seconds, microsecond resolution."""
    try:
        dec = Decimal(word)
    except InvalidOperation:
        raise BadValue(f"a number of seconds{_range(lo, hi)}, got '{word}'") from None
    if not dec.is_finite():
        raise BadValue(f"a number of seconds{_range(lo, hi)}, got '{word}'")
    value = float(round(dec, 6))
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise BadValue(f"a number of seconds{_range(lo, hi)}, got {word}")
    return value


def to_bool(word: str) -> bool:
    lowered = word.lower()
    if lowered in TRUE_WORDS:
        return True
    if lowered in FALSE_WORDS:
        return False
    raise BadValue(f"one of on/off/true/false/yes/no, got '{word}'")


def to_ip(word: str) -> IPAddress:
    try:
        return ipaddress.ip_address(word)
    except ValueError:
        raise BadValue(f"an IPv4 or IPv6 address, got '{word}'") from None


def to_port(word: str) -> int:
    return to_int(word, 0, 65535)


def _range(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f" in {lo}..{hi}"
    if lo is not None:
        return f" >= {lo}"
    if hi is not None:
        return f" <= {hi}"
    return ""
