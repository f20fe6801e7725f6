"""May a restarted vrrp process resume an instance's mastership without a gap?  (Pure: no clock, no files.)

Why it is safe: a backup takes over only when its down timer runs out,
Master_Down_Interval = ``down_timer_adverts`` x Master_Adver_Interval + skew
(skew >= 0) after the last advert it accepted (RFC 9568 6.4.2, keepalived
2.2.7 alike; docs/keepalived.md#timers).  If the process that died was MASTER
and its last advert left less than that ago, no backup can have become
master yet, so an advert sent now restarts every backup's timer and the
segment never sees a second master nor a missing one.  A priority-0 goodbye
(SIGTERM, FAULT) or a MASTER → BACKUP transition clears the record, so only a
MASTER that vanished mid-flight (kill -9, a crash, a deliberate hitless exit)
leaves one that says MASTER.

What else must hold, each a reason to start as today (stale VIPs removed,
INIT → BACKUP): the same boot (a monotonic clock means nothing across one,
and the interfaces were rebuilt), the same configuration of that instance
(another priority, VIP list or interval is another router), every VIP still
on its interface (someone removed one: the dead process no longer held the
address), no sync group (members move together through the group driver),
no AH (its anti-replay counter died with the process; a backup would drop
adverts numbered from 1 and take over), no VMAC or ipvlan interface (the
service removes stale ones at start and makes them anew, VIPs included).

The window is ``min(3, down_timer_adverts)`` intervals (a keepalived peer's
default is 3; ours may be fewer) minus a margin for the advert's way to the
backup and timer slack: a quarter of an interval, at least 50 ms.  With the
default one-second adverts a restart has 2.75 s, plenty for a supervisor's
restart; with 0.1 s adverts (0.225 s) a Python process cannot come back in
time, and the decision says so instead of guessing.
"""

from __future__ import annotations

import enum

import msgspec

from services.vrrp.core.timers import CS

KEEPALIVED_DOWN_ADVERTS = 3
"""A keepalived 2.2.7 backup's ``down_timer_adverts`` unless configured otherwise."""
MIN_MARGIN = 0.05
"""Seconds: the least margin below the backups' down interval (the advert's way, their timer slack)."""


class ResumeRecord(msgspec.Struct, frozen=True, kw_only=True):
    """What the dead process left about one instance (``resume_file.py`` reads it)."""

    boot_id: bytes
    fingerprint: bytes
    """A digest of the instance's plan when the record was written."""
    master: bool
    last_advert_ns: int
    """CLOCK_BOOTTIME of the last advert it sent (taken before the send: never later than the wire)."""


class ResumeFacts(msgspec.Struct, frozen=True, kw_only=True):
    """What the new process knows now about the same instance."""

    now_ns: int
    """CLOCK_BOOTTIME now (it keeps counting across a suspend, which CLOCK_MONOTONIC does not)."""
    boot_id: bytes
    fingerprint: bytes
    advert_int_cs: int
    down_timer_adverts: int
    vips_present: bool
    """Every VIP of the instance is on its interface now."""
    in_sync_group: bool = False
    uses_ah: bool = False
    own_interfaces: bool = False
    """The instance puts its VIPs or adverts on interfaces it makes (``use_vmac``, ``use_ipvlan``)."""


class Why(enum.StrEnum):
    """Why an instance starts as today (said in the log)."""

    NO_RECORD = "no record"
    NOT_MASTER = "was not MASTER"
    OTHER_BOOT = "another boot"
    CONFIG_CHANGED = "its configuration changed"
    TOO_LATE = "too late: a backup may have taken over"
    CLOCK = "record from the future"
    VIPS_GONE = "a VIP is no longer on its interface"
    SYNC_GROUP = "sync-group member"
    AH = "AH authentication (its sequence counter is gone)"
    OWN_INTERFACES = "VMAC/ipvlan interfaces (rebuilt at start, with the VIPs on them)"


class Resume(msgspec.Struct, frozen=True, kw_only=True):
    """Resume as MASTER: ``gap`` seconds since the last advert, ``left`` until the window closes."""

    gap: float
    left: float


class Fresh(msgspec.Struct, frozen=True, kw_only=True):
    """Start as today (stale VIPs removed, INIT → BACKUP)."""

    why: Why


def resume_window(advert_int_cs: int, down_timer_adverts: int) -> float:
    """Seconds after the last advert within which a resumed advert still beats every backup's down timer."""
    interval = advert_int_cs / CS
    adverts = min(KEEPALIVED_DOWN_ADVERTS, down_timer_adverts)
    return adverts * interval - max(interval / 4, MIN_MARGIN)


def decide(record: ResumeRecord | None, facts: ResumeFacts) -> Resume | Fresh:
    """Resume only when every condition of the module doc holds; the first that fails is the reason."""
    if record is None:
        return Fresh(why=Why.NO_RECORD)
    if not record.master:
        return Fresh(why=Why.NOT_MASTER)
    if record.boot_id != facts.boot_id:
        return Fresh(why=Why.OTHER_BOOT)
    if record.fingerprint != facts.fingerprint:
        return Fresh(why=Why.CONFIG_CHANGED)
    if facts.in_sync_group:
        return Fresh(why=Why.SYNC_GROUP)
    if facts.uses_ah:
        return Fresh(why=Why.AH)
    if facts.own_interfaces:
        return Fresh(why=Why.OWN_INTERFACES)
    gap = (facts.now_ns - record.last_advert_ns) / 1e9
    if gap < 0:
        return Fresh(why=Why.CLOCK)
    left = resume_window(facts.advert_int_cs, facts.down_timer_adverts) - gap
    if left <= 0:
        return Fresh(why=Why.TOO_LATE)
    if not facts.vips_present:
        return Fresh(why=Why.VIPS_GONE)
    return Resume(gap=gap, left=left)
