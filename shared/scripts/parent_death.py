"""Scripts die with the service that started them: the parent-death signal keepalived gives its scripts.

Why: a script a service started is only useful to that service.  When the
service is killed (``kill -9``, OOM, a crash) nothing would stop a hanging
script, and the restarted service would start another beside it.  keepalived
sets ``PR_SET_PDEATHSIG`` to SIGTERM for its scripts; so do we.

``child_setup`` runs as ``preexec_fn``, after the fork and after subprocess
switched to the script's user, group and groups (a credential change clears
the parent-death setting, so it must come last).  It also puts SIGTERM, SIGINT
and SIGHUP back to their defaults and unblocks every signal, so neither a
group SIGTERM nor the parent-death signal can land in the service's own
Python handlers in the window before ``exec``, and gives the script the nice
value and ``RLIMIT_RTTIME`` the service had before the runner applied
``*_priority``/``*_rlimit_rttime`` (keepalived resets them in its scripts too;
``shared/runner/priorities.py``).  If the parent died before the
setting took effect, the child terminates itself, as keepalived's does.  The
libc function is resolved here, in the parent, so the child only makes calls.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
from collections.abc import Callable

from shared.runner.priorities import reset_in_child

PR_SET_PDEATHSIG = 1
_RESET = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


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
    """SIGTERM this process when the thread that started it dies."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)


def child_setup(parent: int) -> Callable[[], None]:
    """The ``preexec_fn`` for a script started by process ``parent`` (``os.getpid()`` of the caller)."""

    def setup() -> None:
        for sig in _RESET:
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, ())
        reset_in_child()
        die_with_parent()
        if os.getppid() != parent:  # the parent died between fork and prctl
            os.kill(os.getpid(), signal.SIGTERM)

    return setup


__all__ = ["child_setup", "die_with_parent"]
