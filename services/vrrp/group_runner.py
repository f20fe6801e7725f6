"""The IO side of a ``vrrp_sync_group``: route member inputs through the coordinator, publish ``GroupState``.

Why separate from ``sync_group.py``: the coordinator is pure; this class owns
the loop clock, hands each member's actions to that member's runner (adverts
inline, VIPs and events through its ordered effects queue) and publishes the
group's transitions after the member transition that caused them.
"""

from __future__ import annotations

import asyncio
import logging

from services.vrrp.core.machine_events import Input
from services.vrrp.core.sync_group import GroupChanged, MemberAction, SyncGroup
from services.vrrp.instance import STATES, InstanceRunner, bus_reason
from shared.bus import Publisher
from shared.events import GroupState

log = logging.getLogger("lifeline.vrrp")


class GroupDriver:
    """One running sync group: its members' runners and the pure coordinator between them."""

    def __init__(self, name: str, runners: dict[str, InstanceRunner], publisher: Publisher) -> None:
        """``runners`` in the group's configuration order; each must have been built with ``group=name``."""
        self.name = name
        self.runners = runners
        self.coordinator = SyncGroup(name, {n: r.machine for n, r in runners.items()})
        self._publisher = publisher
        self._loop = asyncio.get_running_loop()
        for runner in runners.values():
            runner.group = self

    def feed(self, member: str, event: Input) -> None:
        """One member's input; every member the group rules touched gets its actions and a new timer."""
        for item in self.coordinator.handle(self._loop.time(), member, event):
            if isinstance(item, MemberAction):
                self.runners[item.member].perform(item.action)
            else:
                self._group_changed(item)
        for runner in self.runners.values():
            runner.arm_timer()

    def detach(self) -> None:
        """The group is being rebuilt (reload): members stop routing through it."""
        for runner in self.runners.values():
            runner.group = None

    def _group_changed(self, change: GroupChanged) -> None:
        reason, detail = bus_reason(change.reason)
        log.info(
            "VRRP_Group(%s) Entering %s STATE (%s on %s)",
            self.name,
            STATES[change.new].value,
            change.reason,
            change.member,
        )
        event = GroupState(
            group=self.name,
            state=STATES[change.new],
            previous=STATES[change.old],
            members=tuple(self.runners),
            reason=reason,
            detail=f"{change.member}: {detail}" if detail else change.member,
        )
        self.runners[change.member].after_effects(lambda: self._publish(event))

    def _publish(self, event: GroupState) -> None:
        self._publisher.publish(event)

    def status(self) -> dict[str, object]:
        """The group for the ``status`` endpoint."""
        return {
            "state": STATES[self.coordinator.state].value,
            "members": {n: STATES[r.machine.state].value for n, r in self.runners.items()},
        }
