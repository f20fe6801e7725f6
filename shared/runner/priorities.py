"""keepalived's per-process scheduling keywords, applied to a service process by the runner.

``vrrp_priority``/``vrrp_rt_priority``/``vrrp_rlimit_rttime``/``vrrp_no_swap``/
``vrrp_cpu_affinity`` (and the ``checker_``/``bfd_`` families) exist because a
VRRP daemon starved of CPU or paged out misses adverts and the backup takes
over: the classic "thread timer expired" flap.  keepalived 2.2.7 applies them
in its child process at the end of start-up (``set_process_priorities`` and
``set_process_cpu_affinity``), in this order:

* ``*_rt_priority N``: ``SCHED_RR`` priority N with ``SCHED_RESET_ON_FORK`` (so
  scripts never inherit it); if that worked and ``*_rlimit_rttime`` is not 0,
  ``RLIMIT_RTTIME`` soft = half the value, hard = the value (µs of CPU without
  sleeping; a SIGXCPU at the soft limit is only logged);
* otherwise ``*_priority N``: the nice value N;
* ``*_no_swap``: ``mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT)``;
* ``*_cpu_affinity``: ``sched_setaffinity`` to those CPUs.

Before a reload keepalived goes back to normal scheduling ("use standard
scheduling while reloading": re-reading a file is a long CPU burst that
``RLIMIT_RTTIME`` would kill) and applies the new values after it; a forked
script gets the original nice value back (``script_prefix``).

Which family a service takes: keepalived has a VRRP process and a checker
process, and its checker process is also the one that programs IPVS
(``lvs_process_name`` is an alias of ``checker_process_name``), so ``lvs``
takes the ``checker_`` keywords; the notifier has no keepalived counterpart
and takes none; the bfd service takes the ``bfd_*`` ones.

Threads: ``SCHED_RR`` is for the event loop thread only (the one keepalived's
single thread corresponds to; worker threads, such as the one parsing a file,
are not bounded by ``RLIMIT_RTTIME``).  Nice and affinity are per thread on
Linux, so they are set on every thread of the process (later threads inherit
them from the loop thread).  What the platform refuses (a container without
``CAP_SYS_NICE`` or ``CAP_IPC_LOCK``, CPUs outside the cgroup's set) is logged
once, as a warning naming the keyword and the capability, and the service
goes on without it.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import logging
import os
import resource
import shutil
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # no configuration import at run time: the script launcher imports this module
    from shared.config.model_global import GlobalDefs

log = logging.getLogger("lifeline.runner.priorities")

FAMILY_OF_SERVICE = {"vrrp": "vrrp", "checker": "checker", "lvs": "checker", "bfd": "bfd"}
"""Which keepalived process a service stands for (its ``<family>_*`` keywords apply to it)."""

MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT = 1, 2, 4
HINTS = {
    "rt_priority": "needs CAP_SYS_NICE",
    "priority": "a negative value needs CAP_SYS_NICE",
    "rlimit_rttime": "needs CAP_SYS_RESOURCE to raise the hard limit",
    "no_swap": "needs CAP_IPC_LOCK or a large enough RLIMIT_MEMLOCK",
    "cpu_affinity": "the CPUs must be online and in this process's cpuset",
}


@dataclass(frozen=True)
class ProcessSettings:
    """One family's keywords, as the loader resolved them (0 / empty = not configured)."""

    family: str
    nice: int = 0
    rt_priority: int = 0
    rlimit_rttime: int = 0
    no_swap: bool = False
    cpus: tuple[int, ...] = ()

    @classmethod
    def of(cls, gd: GlobalDefs, family: str) -> ProcessSettings:
        return cls(
            family=family,
            nice=int(getattr(gd, f"{family}_priority")),
            rt_priority=int(getattr(gd, f"{family}_rt_priority")),
            rlimit_rttime=int(getattr(gd, f"{family}_rlimit_rttime")),
            no_swap=bool(getattr(gd, f"{family}_no_swap")),
            cpus=tuple(getattr(gd, f"{family}_cpu_affinity")),
        )

    @property
    def configured(self) -> bool:
        return bool(self.nice or self.rt_priority or self.no_swap or self.cpus)

    def rttime_limits(self) -> tuple[int, int] | None:
        """(soft, hard) ``RLIMIT_RTTIME`` keepalived sets, or None (no RR, or a limit of 0)."""
        if not self.rt_priority or not self.rlimit_rttime:
            return None
        return self.rlimit_rttime // 2, self.rlimit_rttime


def settings_for(service: str, gd: GlobalDefs) -> ProcessSettings | None:
    family = FAMILY_OF_SERVICE.get(service)
    return None if family is None else ProcessSettings.of(gd, family)


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    return ctypes.CDLL(name, use_errno=True) if name else None


_LIBC = _libc()


@dataclass
class _Originals:
    """What this process had before the runner changed it: what a forked script gets back."""

    nice: int | None = None
    rttime: tuple[int, int] | None = None


_ORIGINAL = _Originals()


def script_prefix() -> tuple[str, ...]:
    """The argv prefix that gives a script the nice value this process had before the runner's.

    keepalived resets nice in its scripts; we run no Python between fork and
    exec (``shared.scripts.parent_death``), so coreutils' ``nice -n DELTA``
    does it, after the switch to the script's user: raising the value needs
    no privilege, lowering it needs root (as for keepalived, a non-root
    script then keeps the service's value; ``nice`` says so on stderr and
    runs it anyway).  ``SCHED_RESET_ON_FORK`` already took the real-time
    policy away, so ``RLIMIT_RTTIME`` no longer bounds anything in a script;
    memory locks are not inherited; CPU affinity is, as in keepalived.
    Empty when nothing changed the nice value (no extra exec).
    """
    if _ORIGINAL.nice is None:
        return ()
    delta = _ORIGINAL.nice - os.getpriority(os.PRIO_PROCESS, 0)
    path = shutil.which("nice", path="/usr/bin:/bin") if delta else None
    return (path, "-n", str(delta), "--") if path else ()


class Priorities:
    """Applies one family's settings to this process and takes them back; each refusal is logged once."""

    def __init__(self) -> None:
        self.applied: dict[str, object] = {}
        """What took effect (``status``-style): keyword suffix -> value."""
        self._warned: set[str] = set()
        self._rr = False
        self._locked = False

    def apply(self, s: ProcessSettings) -> dict[str, object]:
        """keepalived's order: RR (+ RTTIME limit) or nice, then memory lock, then affinity."""
        self.applied = {}
        if s.rt_priority:
            self._realtime(s)
        elif s.nice:
            if _ORIGINAL.nice is None:
                _ORIGINAL.nice = os.getpriority(os.PRIO_PROCESS, 0)
            self._try(
                s,
                "priority",
                s.nice,
                lambda: _each_thread(lambda t: os.setpriority(os.PRIO_PROCESS, t, s.nice)),
            )
        if s.no_swap:
            self._try(s, "no_swap", True, self._mlockall)
        if s.cpus:
            self._try(
                s,
                "cpu_affinity",
                list(s.cpus),
                lambda: _each_thread(lambda t: os.sched_setaffinity(t, s.cpus)),
            )
        if self.applied:
            log.info("%s process settings applied: %s", s.family, self.applied)
        return self.applied

    def reset(self) -> None:
        """Normal scheduling again (before a reload): keepalived's ``reset_process_priorities``."""
        if self._rr:
            self._quietly(lambda: os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0)))
            if _ORIGINAL.rttime is not None:  # without CAP_SYS_RESOURCE the hard limit stays: it does
                with contextlib.suppress(OSError, ValueError):  # not bound SCHED_OTHER anyway
                    resource.setrlimit(resource.RLIMIT_RTTIME, _ORIGINAL.rttime)
            self._rr = False
        if _ORIGINAL.nice is not None:
            nice = _ORIGINAL.nice
            self._quietly(lambda: _each_thread(lambda t: os.setpriority(os.PRIO_PROCESS, t, nice)))
        if self._locked and _LIBC is not None:
            _LIBC.munlockall()
            self._locked = False
        self.applied = {}

    # ------------------------------------------------------------------ steps

    def _realtime(self, s: ProcessSettings) -> None:
        policy = os.SCHED_RR | os.SCHED_RESET_ON_FORK
        if not self._try(
            s,
            "rt_priority",
            s.rt_priority,
            lambda: os.sched_setscheduler(0, policy, os.sched_param(s.rt_priority)),
        ):
            return
        self._rr = True
        limits = s.rttime_limits()
        if limits is None:
            return
        signal.signal(signal.SIGXCPU, _on_sigxcpu)
        if _ORIGINAL.rttime is None:
            _ORIGINAL.rttime = resource.getrlimit(resource.RLIMIT_RTTIME)
        self._try(
            s, "rlimit_rttime", s.rlimit_rttime, lambda: resource.setrlimit(resource.RLIMIT_RTTIME, limits)
        )

    def _mlockall(self) -> None:
        if _LIBC is None:
            raise OSError(errno.ENOSYS, "no libc to call mlockall")
        if _LIBC.mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        self._locked = True

    def _try(self, s: ProcessSettings, what: str, value: object, action: Callable[[], object]) -> bool:
        keyword = f"{s.family}_{what}"
        try:
            action()
        except (OSError, ValueError) as exc:  # setrlimit says ValueError for EPERM
            if keyword not in self._warned:
                self._warned.add(keyword)
                log.warning(
                    "%s %s: not applied (%s; %s); going on without it (docs/deploy.md)",
                    keyword,
                    value,
                    _reason(exc),
                    HINTS[what],
                )
            return False
        self.applied[what] = value
        return True

    @staticmethod
    def _quietly(action: Callable[[], object]) -> None:
        try:
            action()
        except (OSError, ValueError) as exc:
            log.warning("cannot take back process settings: %s", exc)


def _each_thread(action: Callable[[int], object]) -> None:
    """Run ``action(tid)`` for every thread of this process; the first error is raised."""
    for entry in sorted(Path("/proc/self/task").iterdir(), key=lambda p: int(p.name)):
        try:
            action(int(entry.name))
        except ProcessLookupError:
            continue  # the thread ended meanwhile


def _reason(exc: OSError | ValueError) -> str:
    if isinstance(exc, OSError) and exc.errno:
        return f"{errno.errorcode.get(exc.errno, exc.errno)}: {exc.strerror}"
    return f"EPERM: {exc}"


def _on_sigxcpu(_signum: int, _frame: object) -> None:
    log.warning("real-time CPU time without sleeping passed half of *_rlimit_rttime (SIGXCPU)")
