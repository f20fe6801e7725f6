"""What a reload does to each instance: leave it, change it in place, or restart it (pure).

Why a planner of its own: a restart is a transition on both nodes (priority 0,
VIPs removed and re-added, a ping gap), so it is kept for changes the running
instance really cannot absorb.  The rules, as a keepalived operator expects
them (docs/vrrp.md, "Reload"):

* **untouched**: the plan is equal (a notify script or anything else outside
  the instance's plan changed): nothing happens, not even an advert;
* **in place** (``Reconfigure``): priority, advert interval, VIPs (a MASTER
  moves only the difference and GARPs only the new ones), trackers and their
  weights, GARP settings, preempt / nopreempt / preempt_delay /
  ``state``, down_timer_adverts, accept, lower/higher-priority advert
  options, ``dont_track_primary``, PASS authentication, unicast peers and
  TTL, checksum mode, AH key: state and timers are kept;
* **restart**: what identifies the instance on the wire or the sockets it
  uses: VRID, interface, version, family, advert source address, unicast
  versus multicast, the multicast group, the IP protocol (AH on or off), and
  becoming or ceasing to be the address owner (255 is mastership at once,
  not a priority); and a change of sync group.  A restarted member restarts
  its whole sync group (its coordinator must see every member from INIT).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

import msgspec

from services.vrrp.core.machine_types import State
from services.vrrp.core.params import InstancePlan
from shared.events import VrrpState

IN_PLACE_PARAMS = frozenset(
    {
        "priority",
        "advert_int_cs",
        "initial_state",
        "nopreempt",
        "preempt_delay",
        "down_timer_adverts",
        "accept",
        "vips",
        "extra_if_vips",
        "trackers",
        "dont_track_primary",
        "garp",
        "lower_prio_no_advert",
        "higher_prio_send_advert",
        "owner_ignores_adverts",
        "unicast_no_peer",
        "untracked_vips",
    }
)
"""``InstanceParams`` fields ``Reconfigure`` applies to a running machine (any other field: restart)."""

IN_PLACE_TRANSPORT = frozenset({"dsts", "ttl", "checksum_mode", "ah_key", "group"})
"""``Transport`` fields that do not choose a socket (``group`` only while unicast: checked apart)."""

IN_PLACE_PLAN = frozenset(
    {
        "rx",
        "vips",
        "excluded_vips",
        "advert_addresses",
        "garp_interval",
        "gna_interval",
        "garp_groups",
        "stale_after",
    }
)
"""``InstancePlan`` fields the shell just reads from its current plan (adverts, validation, GARP pacing)."""


class Verdict(enum.Enum):
    """What the reload does to one running instance."""

    UNTOUCHED = "untouched"
    RECONFIGURE = "reconfigure"
    RESTART = "restart"


@dataclass(frozen=True)
class Change:
    """One instance's verdict; ``fields`` name what differs, ``why`` the field that forces a restart."""

    verdict: Verdict
    fields: tuple[str, ...] = ()
    why: str = ""


@dataclass
class ReloadPlan:
    """The whole reload: instance names per verdict (in configuration order)."""

    removed: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    restart: list[str] = field(default_factory=list)
    reconfigure: list[str] = field(default_factory=list)
    untouched: list[str] = field(default_factory=list)
    changes: dict[str, Change] = field(default_factory=dict)

    def summary(self) -> str:
        """One line for the log and the ``reload`` reply."""
        parts = [
            f"{label} {', '.join(names)}"
            for label, names in (
                ("removed", self.removed),
                ("added", self.added),
                ("restarted", self.restart),
                ("reconfigured", self.reconfigure),
            )
            if names
        ]
        return "; ".join(parts) if parts else "nothing changed"


def _diff(old: msgspec.Struct, new: msgspec.Struct, prefix: str = "") -> list[str]:
    return [f"{prefix}{f}" for f in old.__struct_fields__ if getattr(old, f) != getattr(new, f)]


def _restart_reason(old: InstancePlan, new: InstancePlan, fields: list[str]) -> str:
    """The first changed field a running instance cannot absorb ("" when every change fits in place).

    An allow-list on purpose: a field added to the plan later restarts until
    someone decides it can be applied in place.
    """
    allowed = {f"params.{f}" for f in IN_PLACE_PARAMS} | {f"transport.{f}" for f in IN_PLACE_TRANSPORT}
    allowed |= IN_PLACE_PLAN
    why = next((f for f in fields if f not in allowed), "")
    if not why and "transport.group" in fields and not (old.transport.unicast and new.transport.unicast):
        why = "transport.group"
    if not why and old.params.is_owner != new.params.is_owner:
        why = "address owner (priority 255)"
    return why


def classify(old: InstancePlan, new: InstancePlan, *, regrouped: bool = False) -> Change:
    """Verdict for one instance whose old and new plans are known."""
    if old == new and not regrouped:
        return Change(Verdict.UNTOUCHED)
    fields = [
        *_diff(old.params, new.params, "params."),
        *_diff(old.transport, new.transport, "transport."),
        *(f for f in _diff(old, new) if f not in ("params", "transport")),
    ]
    if regrouped:
        return Change(Verdict.RESTART, tuple(fields), "sync group")
    why = _restart_reason(old, new, fields)
    return Change(Verdict.RESTART if why else Verdict.RECONFIGURE, tuple(fields), why)


def same_virtual_router(old: InstancePlan, new: InstancePlan) -> bool:
    """Does a restarted instance still speak for the same virtual router (keepalived's ``vrrp_exist``)?

    Same VRID, family, interface and unicast-ness, and the same source
    (unicast) or group (multicast).  keepalived then keeps the instance's AH
    sequence counter across the reload; so does the service, so a restart
    never sends numbers its peers already hold.
    """
    o, n = old.transport, new.transport
    same = (old.params.vrid, o.family, o.interface, o.unicast) == (
        new.params.vrid,
        n.family,
        n.interface,
        n.unicast,
    )
    return same and (o.src == n.src if o.unicast else o.group == n.group)


def plan_reload(
    old: Mapping[str, InstancePlan],
    new: Mapping[str, InstancePlan],
    *,
    old_groups: Mapping[str, str | None],
    new_groups: Mapping[str, str | None],
) -> ReloadPlan:
    """Every instance's verdict; ``*_groups`` map an instance to the sync group it runs (or would run) in.

    A sync group with an added or restarted member is restarted whole; a
    member changed in place leaves its group running.
    """
    out = ReloadPlan(removed=[n for n in old if n not in new])
    for name, plan in new.items():
        if name not in old:
            out.added.append(name)
            continue
        change = classify(old[name], plan, regrouped=old_groups.get(name) != new_groups.get(name))
        out.changes[name] = change
    moved = {new_groups.get(n) for n in out.added} | {
        new_groups.get(n) for n, c in out.changes.items() if c.verdict is Verdict.RESTART
    }
    moved.discard(None)
    for name, change in out.changes.items():
        if change.verdict is not Verdict.RESTART and new_groups.get(name) in moved:
            out.changes[name] = Change(
                Verdict.RESTART, change.fields, f"sync group {new_groups[name]} restarts"
            )
        bucket = {
            Verdict.RESTART: out.restart,
            Verdict.RECONFIGURE: out.reconfigure,
            Verdict.UNTOUCHED: out.untouched,
        }[out.changes[name].verdict]
        bucket.append(name)
    return out


def removed_report(state: State, notify_deleted: bool) -> VrrpState | None:
    """What keepalived 2.2.7 notifies when a reload removes an instance in ``state`` (None: nothing).

    ``DELETED`` with the instance's ``notify_deleted`` keyword; without it
    keepalived keeps its old behaviour and reports ``FAULT``, except for an
    instance already in FAULT, which it does not report again.  An instance
    that never left INIT has nothing to report either.
    """
    if state is State.INIT:
        return None
    if notify_deleted:
        return VrrpState.DELETED
    return None if state is State.FAULT else VrrpState.FAULT
