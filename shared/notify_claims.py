"""Claims: who runs a VRRP notify script, the notifier or the vrrp service, exactly once and in order.

Why: keepalived runs ``notify_master`` within a second of the transition,
always.  lifeline's notifier runs scripts from a JetStream consumer, so with
the node's NATS stopped, the notifier dead, or the stream full, a script ran
late or never.  So both run them, and a claim file decides who does:

- the scripts of one event (``notify_<state>`` then ``notify``, as
  ``services.notifier.core.targets.script_runs`` gives them) are one claim,
  named after the event's msg id (``claim_name``), created with
  ``O_CREAT|O_EXCL`` under ``state_dir/<node>/notify-claims/``: the one that
  creates it runs them; the other waits until it says ``done``;
- the notifier claims as soon as it gets the event; the vrrp service looks
  ``FALLBACK_BOUND`` seconds after the transition and claims if nobody has;
- order per object (instance, group): neither side settles event N+1 of an
  object before event N of it is ``done`` (the notifier's per-key queue and the
  vrrp service's per-key queue both wait in ``settle``), so whoever runs N+1,
  N has ended;
- a crash mid-script: the owner rewrites the claim's time every
  ``HEARTBEAT`` seconds while its scripts run; a ``running`` claim nobody has
  touched for ``STALE_AFTER`` seconds is abandoned, and whoever notices first
  takes it over (an atomic rename: one of the two wins) and runs the event's
  scripts again with the next ``attempt`` (``LIFELINE_ATTEMPT``).  The dead
  owner's script got the parent-death signal, so this is a second, complete
  run after a killed one; a crash after the scripts ended and before ``done``
  was written is the one case where a script that completed runs twice;
- claims are swept ``RETENTION`` seconds after their last write; an event
  older than that is never run by the notifier (``forgotten``): its claim may
  be gone, and the vrrp service ran it long ago.

This module is the pure part (names, records, the next step); the files are
``shared.notify_claim_files``.
"""

from __future__ import annotations

import enum
from typing import Final, Literal

import msgspec

from shared.events import Event, GroupState, InstanceEvent, InstanceState

CLAIMS_DIR: Final = "notify-claims"
"""The claims' folder under ``shared.settings.node_state_dir``."""
FALLBACK_BOUND: Final = 1.0
"""Seconds after a transition the vrrp service waits for the notifier's claim before it claims itself."""
HEARTBEAT: Final = 1.0
"""Seconds between two touches of a claim whose scripts run."""
STALE_AFTER: Final = 5.0
"""A running claim untouched this long has lost its owner (five missed heartbeats)."""
RETENTION: Final = 24 * 3600.0
"""Seconds a claim is kept after its last write; the notifier never runs an event older than this."""

Owner = Literal["notifier", "vrrp"]
State = Literal["running", "done"]


class Claim(msgspec.Struct, frozen=True, kw_only=True):
    """What a claim file holds: who, where it stands, which attempt, how the scripts ended."""

    owner: Owner
    state: State
    key: str
    attempt: int = 1
    outcome: str = ""
    """``done`` claims: ``ok``, or the first failure (``/x.sh exited with 1``)."""


class Step(enum.Enum):
    """What to do next about one event's claim."""

    CLAIM = "claim"  # no claim: try to create it
    WAIT = "wait"  # someone runs it: look again shortly
    TAKE_OVER = "take_over"  # running but its owner is gone: abandon it, then claim
    DONE = "done"  # it ran: nothing to do


def claimable(event: Event) -> bool:
    """The events whose scripts the vrrp service backs up: instance and group states, ``rx_lower_pri``."""
    return isinstance(event, InstanceState | GroupState | InstanceEvent)


def claim_name(event: Event) -> str:
    """The claim's file name: the event's msg id (``boot_id:seq``, colon-free)."""
    return f"{event.boot_id}-{event.seq}.claim"


def claim_key(event: Event) -> str:
    """The object whose scripts stay in order (the notifier's ``order_key`` for these events)."""
    match event:
        case GroupState():
            return f"group:{event.node}:{event.group}"
        case InstanceState() | InstanceEvent():
            return f"instance:{event.node}:{event.instance}"
    raise ValueError(f"no claim for a {type(event).__name__}")


def decode_claim(data: bytes) -> Claim | None:
    """A claim's record, or None while it is being written (created but still empty) or damaged."""
    try:
        return msgspec.json.decode(data, type=Claim)
    except msgspec.DecodeError:
        return None


def encode_claim(claim: Claim) -> bytes:
    return msgspec.json.encode(claim)


def next_step(
    exists: bool, claim: Claim | None, untouched_for: float, stale_after: float = STALE_AFTER
) -> Step:
    """The next step from what the claim file says and how long ago it was last written.

    A file without a record (its creator has not written yet, or died
    between the create and the write) counts as running.
    """
    if not exists:
        return Step.CLAIM
    if claim is not None and claim.state == "done":
        return Step.DONE
    return Step.TAKE_OVER if untouched_for > stale_after else Step.WAIT


def forgotten(event: Event, now_ns: int, retention: float = RETENTION) -> bool:
    """True when the event is older than the claims are kept: its claim may have been swept."""
    return event.ts > 0 and (now_ns - event.ts) / 1e9 > retention


def expired(untouched_for: float, retention: float = RETENTION) -> bool:
    """A claim file to sweep."""
    return untouched_for > retention
