"""The shell of route tracking: netlink deletions and link changes → static restores and machine inputs.

Why its own module: the service wires sockets, the bus and instances; this
wires one concern of keepalived 2.2.7 (observed in a namespace) to the kernel:

* a static address, route or rule deleted (RTM_DELADDR/DELROUTE/DELRULE) is
  restored; one on an interface that goes down is restored when it comes up;
  while a ``track_group`` item is lost its group's instances get
  ``StaticLost`` (FAULT) -- the decisions are ``core/static_tracking.py``'s;
* a tracked virtual route or rule deleted is handed to its instance's runner
  (``InstanceRunner.route_deleted``), which makes a MASTER step down.

A tracked virtual route's interface going down is plain link tracking (the
plan lists it as an unweighted interface tracker, ``core/params.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from services.vrrp.core.machine_events import StaticLost
from services.vrrp.instance import InstanceRunner, cancel_quietly
from services.vrrp.kernel.addresses import Rtnl
from services.vrrp.kernel.route_watch import Ident, deletions
from services.vrrp.kernel.static_config import StaticConfig
from services.vrrp.kernel.watch import follow

log = logging.getLogger("lifeline.vrrp")


class RouteTracking:
    """Follows deletions for the static set and the instances; tells each its track group's loss."""

    def __init__(
        self,
        static: Callable[[], StaticConfig | None],
        runners: Mapping[str, InstanceRunner],
        ipr: Rtnl,
        lock: asyncio.Lock,
    ) -> None:
        self._static = static
        self._runners = runners
        self._ipr = ipr
        self._lock = lock
        self._told: dict[str, str | None] = {}
        self._task: asyncio.Task[None] | None = None

    def interfaces(self) -> frozenset[str]:
        """The interfaces the static items live on (their links are followed too)."""
        static = self._static()
        return static.watch.interfaces() if static is not None else frozenset()

    def start(self, links: Mapping[str, bool]) -> None:
        """Down static interfaces count as lost from the start; then follow deletions."""
        static = self._static()
        if static is not None:
            for ifname in static.watch.interfaces():
                if not links.get(ifname, False):
                    static.watch.link(ifname, up=False)
        self._task = asyncio.get_running_loop().create_task(self._follow(), name="vrrp-deletions")

    async def close(self) -> None:
        if self._task is not None:
            await cancel_quietly(self._task)

    async def link(self, ifname: str, up: bool) -> None:
        """A link moved: the static items on it are lost, or restored."""
        static = self._static()
        if static is None or ifname not in static.watch.interfaces():
            return
        await static.restore(static.watch.link(ifname, up), self._ipr, self._lock)
        self.tell()

    async def reloaded(self, links: Mapping[str, bool]) -> None:
        """A new static set: its down interfaces are lost; every instance hears the new verdict."""
        static = self._static()
        if static is not None:
            for ifname in static.watch.interfaces():
                if not links.get(ifname, False):
                    static.watch.link(ifname, up=False)
        self._told = {name: cause for name, cause in self._told.items() if name in self._runners}
        self.tell()

    def tell(self) -> None:
        """Each instance whose track group's loss changed gets ``StaticLost``."""
        static = self._static()
        faults = static.watch.faults() if static is not None else {}
        for name, runner in self._runners.items():
            cause = faults.get(name)
            if self._told.get(name) != cause:
                self._told[name] = cause
                if cause is not None:
                    log.warning("(%s) static %s is lost: track_group fault", name, cause)
                runner.feed(StaticLost(item=cause))

    def boot(self, runner: InstanceRunner) -> None:
        """A starting instance (start or reload) begins with its track group's current loss."""
        static = self._static()
        cause = static.watch.faults().get(runner.name) if static is not None else None
        self._told[runner.name] = cause
        if cause is not None:
            runner.feed(StaticLost(item=cause))

    async def _follow(self) -> None:
        await follow(deletions(), self._deleted, "deletion watcher failed; deleted routes are no longer seen")

    async def _deleted(self, ident: Ident) -> None:
        for runner in list(self._runners.values()):
            runner.route_deleted(ident)
        static = self._static()
        key = static.key_of(ident) if static is not None else None
        if static is None or key is None:
            return
        await static.restore(static.watch.deleted(key), self._ipr, self._lock)
        self.tell()


__all__ = ["RouteTracking"]
