"""Scripts die with the service that started them: the parent-death signal keepalived gives its scripts.

Why: a script a service started is only useful to that service.  When the
service is killed (``kill -9``, OOM, a crash) nothing would stop a hanging
script, and the restarted service would start another beside it.  keepalived
sets ``PR_SET_PDEATHSIG`` to SIGTERM for its scripts; so do we.

Why an exec wrapper and not ``preexec_fn``: Python code between ``fork`` and
``exec`` is not safe in a process with threads (the services have them: the
asyncio child watcher starts one per script, reloads read files in a worker
thread).  A lock another thread held at the fork stays locked forever in the
child, the child never reaches ``exec``, and the service's event loop, blocked
in ``Popen`` until it does, freezes with it.  So nothing of ours runs in the
child: CPython's own C code switches the user, group and groups, and then
util-linux's ``setpriv --pdeathsig TERM`` (every Debian system has it) sets
the signal and execs the script.  It runs after the credential switch, which
matters: a credential change clears the parent-death setting.  Without
``setpriv`` scripts run without it (logged once): they then only die with
their process group at a timeout or a stop, not when the service is killed.
"""

from __future__ import annotations

import logging
import shutil
from functools import cache

log = logging.getLogger("lifeline.scripts")

SETPRIV = "setpriv"


@cache
def pdeathsig_prefix() -> tuple[str, ...]:
    """The argv prefix that gives the script SIGTERM when its service dies (empty without setpriv)."""
    path = shutil.which(SETPRIV, path="/usr/bin:/bin:/usr/sbin:/sbin")
    if path is None:
        log.warning("setpriv (util-linux) not found: scripts will not die with a killed service")
        return ()
    return (path, "--pdeathsig", "TERM", "--")


__all__ = ["pdeathsig_prefix"]
