"""``startup_script`` and ``shutdown_script``: run by the vrrp service, first thing at start and last at stop.

keepalived's parent runs ``startup_script`` before it starts any child (the
children start when it ends, succeeded or not, or when its
``startup_script_timeout`` ran out: SIGTERM to its process group, SIGKILL
2 s later) and ``shutdown_script`` after every child has exited (bounded by
``shutdown_script_timeout`` the same way); a reload runs neither.

Why the vrrp service runs them: lifeline has no parent process in every
deployment (``lifeline up`` is one, systemd units and compose are not), and
vrrp is the service every deployment runs, even for a file with no instance.
What these scripts are for is what VRRP depends on (a firewall, an interface,
a route set up before the VIPs move in; torn down once they are handed
over), so vrrp runs ``startup_script`` before its first instance exists and
``shutdown_script`` after its masters handed over (priority 0) and the VIPs,
static addresses and routes are gone.  What differs from keepalived: the
checker and lvs services do not wait for the start-up script, and a vrrp
service restarted after a crash runs it again (keepalived restarts a dead
child without it).

Both run through the one script launcher (``shared.scripts``): the line's own
user and group, else ``script_user``, else ``keepalived_script``, else root;
with ``enable_script_security`` an unsafe script or the root fallback is
refused; the clean environment.  A failure is logged, never fatal (keepalived
logs "startup script failed, status N" and goes on).
"""

from __future__ import annotations

import logging
from typing import Final

from shared.config.model_global import GlobalDefs
from shared.config.script import Script, script_policy
from shared.scripts import ScriptRequest
from shared.scripts.runner import KILL_GRACE, ScriptRefused, run_script

log = logging.getLogger("lifeline.vrrp.scripts")

SCRIPT_KILL_DELAY: Final = 2.0
"""Seconds between the timeout's SIGTERM and the SIGKILL (keepalived's ``handle_child_timeout``)."""


def shutdown_time(gd: GlobalDefs) -> float:
    """The longest ``run_shutdown_script`` can take: what a supervisor adds to vrrp's stop time."""
    return float(gd.shutdown_script_timeout) + SCRIPT_KILL_DELAY + KILL_GRACE if gd.shutdown_script else 0.0


async def run_startup_script(gd: GlobalDefs) -> int | None:
    """``startup_script``, awaited up to ``startup_script_timeout``; its exit status (None: none ran)."""
    return await _run("startup_script", gd.startup_script, gd.startup_script_timeout, gd)


async def run_shutdown_script(gd: GlobalDefs) -> int | None:
    """``shutdown_script``, awaited up to ``shutdown_script_timeout``; its exit status (None: none ran)."""
    return await _run("shutdown_script", gd.shutdown_script, gd.shutdown_script_timeout, gd)


async def _run(kind: str, script: Script | None, timeout: int, gd: GlobalDefs) -> int | None:
    if script is None:
        return None
    request = ScriptRequest(tuple(script.argv), script.user, script.group, script_policy(gd), kind)
    log.info("Running %s %s", kind, script.argv[0])
    try:
        outcome = await run_script(request, timeout=float(timeout), grace=SCRIPT_KILL_DELAY)
    except ScriptRefused as exc:
        log.error("%s %s not run: %s", kind, script.argv[0], exc)
        return None
    except OSError as exc:
        log.error("Call of %s %s failed: %s", kind, script.argv[0], exc)
        return None
    if outcome.timed_out:
        log.warning("%s timed out after %d s (killed)", kind, timeout)
    elif outcome.returncode != 0:
        log.warning("%s failed, status %s", kind, outcome.returncode)
    else:
        log.info("%s succeeded", kind)
    return outcome.returncode
