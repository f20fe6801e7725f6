"""The start-up side of a hitless restart: which instances keep their VIPs and start as a resumed MASTER.

Why two looks: the stale VIPs are removed first thing at start (before the
bus, the links and the trackers are read), but ``Start`` comes later.  So
the first look (``keeps_vips``) decides on the record and the kernel's
addresses and keeps the VIPs of the instances that may resume, with a
timer at the end of their window: should the start take longer than that,
the VIPs go then, as they would have at once (a backup may be taking over).
The second look (``at_boot``), just before ``Start``, decides again with the
clock of that moment, so the advert that ``Start(resume=True)`` sends leaves
inside the window.  The decision itself is ``core/resume.py``'s.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine

from services.vrrp.core.params import InstancePlan
from services.vrrp.core.resume import Fresh, ResumeFacts, ResumeRecord, decide
from services.vrrp.resume_file import ResumeFiles, Slot, fingerprint, now_ns

log = logging.getLogger("lifeline.vrrp")

VipsPresent = Callable[[InstancePlan], Coroutine[None, None, bool]]
RemoveVips = Callable[[InstancePlan], Coroutine[None, None, None]]


class Resumer:
    """Per instance: resume or not (``keeps_vips`` then ``at_boot``); the fresh records of the runners."""

    def __init__(self, files: ResumeFiles, remove_vips: RemoveVips) -> None:
        self.files = files
        self._remove_vips = remove_vips
        self._pending: dict[str, tuple[ResumeRecord, bool, asyncio.TimerHandle]] = {}
        """Instances whose VIPs were kept: their record, sync-group membership, and the window's timer."""
        self._removals: set[asyncio.Task[None]] = set()
        self.resumed: dict[str, float] = {}
        """Instances that resumed: the gap (s) since the dead process's last advert (for status)."""

    def _facts(self, plan: InstancePlan, in_group: bool, vips_present: bool) -> ResumeFacts:
        p = plan.params
        return ResumeFacts(
            now_ns=now_ns(),
            boot_id=self.files.boot,
            fingerprint=fingerprint(plan),
            advert_int_cs=p.advert_int_cs,
            down_timer_adverts=p.down_timer_adverts,
            vips_present=vips_present,
            in_sync_group=in_group,
            uses_ah=plan.transport.ah_key is not None,
            own_interfaces=plan.vmac is not None or bool(plan.address_vmacs),
        )

    async def keeps_vips(self, plan: InstancePlan, in_group: bool, vips_present: VipsPresent) -> bool:
        """May ``plan`` resume (then its VIPs stay for now)?  A MASTER record refused is logged with why."""
        record = self.files.read(plan.name)
        if record is None or not record.master:
            return False
        facts = self._facts(plan, in_group, await vips_present(plan))
        decision = decide(record, facts)
        if isinstance(decision, Fresh):
            ago = (facts.now_ns - record.last_advert_ns) / 1e9
            why = decision.why.value
            log.info("(%s) not resuming MASTER: %s (last advert %.3f s ago)", plan.name, why, ago)
            return False
        loop = asyncio.get_running_loop()
        timer = loop.call_later(decision.left, self._expired, plan)
        self._pending[plan.name] = (record, in_group, timer)
        return True

    def _expired(self, plan: InstancePlan) -> None:
        """The window closed before ``Start``: the kept VIPs go now (a backup may be taking over)."""
        if self._pending.pop(plan.name, None) is None:
            return
        log.info("(%s) not resuming MASTER: start-up outlasted the window; removing its VIPs", plan.name)
        task = asyncio.get_running_loop().create_task(self._remove_vips(plan))
        self._removals.add(task)
        task.add_done_callback(self._removals.discard)

    def at_boot(self, plan: InstancePlan) -> bool:
        """Just before ``Start``: still inside the window?  (The VIPs were checked at the first look.)"""
        pending = self._pending.pop(plan.name, None)
        if pending is None:
            return False
        record, in_group, timer = pending
        timer.cancel()
        decision = decide(record, self._facts(plan, in_group, vips_present=True))
        if isinstance(decision, Fresh):
            log.info("(%s) not resuming MASTER: %s", plan.name, decision.why.value)
            return False
        log.info(
            "(%s) resuming MASTER: restarted %.3f s after its last advert (%.3f s to spare); VIPs kept",
            plan.name,
            decision.gap,
            decision.left,
        )
        self.resumed[plan.name] = decision.gap
        return True

    def open(self, plan: InstancePlan) -> Slot | None:
        """The new runner's record (written fresh: not MASTER until its first MASTER advert)."""
        return self.files.open(plan)

    def cancel(self) -> None:
        """Stopping before every instance booted: no timer may fire into a closed service."""
        for _record, _group, timer in self._pending.values():
            timer.cancel()
        self._pending.clear()
