"""Which notify scripts each instance, group, virtual and real server has (keepalived.conf → targets).

Why a module of its own: the notifier's script sink and the vrrp service's
notify fallback (``services/vrrp/notify_fallback.py``) must run the same
scripts for an event, so both build their targets here; and the vrrp service
must not import the notifier's mail and webhook machinery to do so.  Scripts
the launcher would refuse (``enable_script_security``) are left out, as
keepalived drops them, and logged once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from services.notifier.core.targets import NotifyTarget, NotifyTargets
from services.notifier.sinks.script import script_request
from shared.config.lvs_keys import rs_key, vs_key
from shared.config.model import Config
from shared.config.script import Script, script_policy
from shared.scripts import Refusal, ScriptPolicy
from shared.scripts.runner import announce

log = logging.getLogger("lifeline.notifier.wiring")


def allowed(script: Script | None, policy: ScriptPolicy) -> Script | None:
    """The script if the launcher would run it, else None (logged once, with who runs the others)."""
    if script is None:
        return None
    verdict = announce(script_request(script, script.argv, policy), log)
    return None if isinstance(verdict, Refusal) else script


Screen = Callable[[Script | None], Script | None]
"""Keeps a script or drops it (``allowed``); unscreened, every named script is kept."""


def _keep_all(script: Script | None) -> Script | None:
    return script


def _target(keep: Screen, scripts: Mapping[str, Script | None], **kw: Any) -> NotifyTarget | None:
    kept = {state: s for state, raw in scripts.items() if (s := keep(raw)) is not None}
    generic = keep(kw.pop("generic", None))
    if not kept and generic is None:
        return None
    return NotifyTarget(scripts=kept, generic=generic, **kw)


def build_targets(
    config: Config, policy: ScriptPolicy | None = None, *, screened: bool = True
) -> NotifyTargets:
    """One ``NotifyTarget`` per instance, group, virtual server and real server that has scripts.

    ``screened``: only the scripts the launcher would run (``allowed``); unscreened,
    every script the file names (what the provisioning needs: no user or path is looked at).
    """
    keep: Screen = _keep_all
    if screened:
        keep = partial(allowed, policy=policy if policy is not None else script_policy(config.global_defs))
    instances: dict[str, NotifyTarget] = {}
    for name, vi in config.vrrp.instances.items():
        states = {
            "MASTER": vi.notify_master,
            "BACKUP": vi.notify_backup,
            "FAULT": vi.notify_fault,
            "STOP": vi.notify_stop,
            "DELETED": vi.notify_deleted,
            "MASTER_RX_LOWER_PRI": vi.notify_master_rx_lower_pri,
        }
        report = vi.notify_deleted_set or vi.notify_deleted is not None
        if (t := _target(keep, states, generic=vi.notify, report_deleted=report)) is not None:
            instances[name] = t
    groups: dict[str, NotifyTarget] = {}
    for name, sg in config.vrrp.sync_groups.items():
        states = {
            "MASTER": sg.notify_master,
            "BACKUP": sg.notify_backup,
            "FAULT": sg.notify_fault,
            "STOP": sg.notify_stop,
        }
        if (t := _target(keep, states, generic=sg.notify)) is not None:
            groups[name] = t
    virtuals: dict[str, NotifyTarget] = {}
    reals: dict[tuple[str, str], NotifyTarget] = {}
    for vs in config.lvs.virtual_servers:
        vkey = vs_key(vs)
        if (t := _target(keep, {"UP": vs.quorum_up, "DOWN": vs.quorum_down})) is not None:
            virtuals[vkey] = t
        for rs in vs.real_servers:
            if (t := _target(keep, {"UP": rs.notify_up, "DOWN": rs.notify_down})) is not None:
                reals[(vkey, rs_key(vs, rs))] = t
    return NotifyTargets(instances=instances, groups=groups, real_servers=reals, virtual_servers=virtuals)
