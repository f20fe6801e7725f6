"""Scripts die with the checker: the parent-death signal keepalived gives its scripts.

Why: a script the checker started is only useful to the checker.  When the
checker is killed (``kill -9``, OOM, a crash) nothing would stop a hanging
script, and the restarted checker would start another beside it.  keepalived
sets ``PR_SET_PDEATHSIG`` to SIGTERM for its scripts; so do we.

It runs as ``preexec_fn``, after the fork and after subprocess switched to
``user``/``group`` (a credential change clears the setting, so it must come
last).  The libc function is resolved here, in the parent, so the child only
makes one call.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import signal
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def _prctl() -> Callable[..., int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _prctl()


def die_with_parent() -> None:
    """``preexec_fn``: SIGTERM this process when the process that started it dies."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)


__all__ = ["die_with_parent"]
