"""``lvs_sync_daemon``: which IPVS connection-sync daemon runs, following the VRRP instance it names.

Why here and sans-IO: keepalived starts the *master* sync daemon while the
named instance is MASTER and the *backup* daemon otherwise, so the peer that
takes over already knows the live connections.  The VRRP state arrives on the
bus (``InstanceState``); this module turns it into the wanted daemon set, and
``ipvs.Ipvs.set_daemons`` makes the kernel match (stop what is not wanted, start
what is missing).  Before the first state is known the backup daemon runs:
receiving sync data is harmless, sending it from a non-master is not.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.config.model import Config
from shared.events import VrrpState

SYNC_MASTER, SYNC_BACKUP = 1, 2
DEFAULT_GROUP4 = "224.0.0.81"


@dataclass(frozen=True)
class DaemonSpec:
    """One kernel sync daemon (IPVS_CMD_NEW_DAEMON attributes)."""

    state: int
    interface: str
    syncid: int
    maxlen: int = 0
    port: int = 8848
    ttl: int = 0
    group: str = ""

    def matches(self, running: DaemonSpec) -> bool:
        """Is ``running`` (read from the kernel) this daemon?  Unset options accept the kernel's default."""
        return (
            self.state == running.state
            and self.interface == running.interface
            and self.syncid == running.syncid
            and self.port == running.port
            and (not self.maxlen or self.maxlen == running.maxlen)
            and (not self.ttl or self.ttl == running.ttl)
            and (not self.group or self.group == running.group)
        )


@dataclass(frozen=True)
class SyncPlan:
    instance: str | None
    base: DaemonSpec


def sync_plan(config: Config) -> SyncPlan | None:
    """The configuration's ``lvs_sync_daemon``; syncid defaults to the named instance's VRID."""
    spec = config.global_defs.lvs_sync_daemon
    if spec is None:
        return None
    syncid = spec.syncid
    if syncid is None:
        vi = config.vrrp.instances.get(spec.instance or "") if spec.instance else None
        syncid = vi.vrid if vi is not None and vi.vrid else 0
    base = DaemonSpec(
        state=SYNC_BACKUP,
        interface=spec.interface,
        syncid=syncid,
        maxlen=spec.maxlen or 0,
        port=spec.port,
        ttl=spec.ttl or 0,
        group=str(spec.group) if spec.group is not None else "",
    )
    return SyncPlan(spec.instance, base)


def wanted(plan: SyncPlan | None, state: VrrpState | None) -> set[DaemonSpec]:
    """Master daemon while the instance is MASTER, backup daemon otherwise (also before any state)."""
    if plan is None:
        return set()
    role = SYNC_MASTER if state == VrrpState.MASTER else SYNC_BACKUP
    return {DaemonSpec(role, *_rest(plan.base))}


def _rest(spec: DaemonSpec) -> tuple[str, int, int, int, int, str]:
    return (spec.interface, spec.syncid, spec.maxlen, spec.port, spec.ttl, spec.group)
