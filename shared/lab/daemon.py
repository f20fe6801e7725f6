"""A process the lab started (keepalived, a lifeline service, a nats-server): its log, its stop, its end.

Why one class: the benchmarks, the lab tests and the demo all start daemons
inside namespaces with ``ip netns exec``, send them signals on purpose (a
SIGTERM is a VRRP goodbye, a SIGKILL a crash) and need their output when
something goes wrong.  Each daemon gets its own session, so a signal meant
for it never reaches the caller and a Ctrl-C in the terminal reaches only
the caller, whose cleanup then stops the daemon.  ``ip netns exec`` execs the
command, so :attr:`Daemon.pid` is the daemon's own pid.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from shared.lab.errors import LabError

REPO = Path(__file__).resolve().parents[2]
"""The checkout: daemons run from here, so ``python -m services.vrrp`` finds the code under test."""

_LIVE: set[subprocess.Popen[bytes]] = set()


@atexit.register
def _kill_leftovers() -> None:
    """Last line of defence when a caller's cleanup never ran (an interrupted pytest or benchmark)."""
    for proc in list(_LIVE):
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)


def keepalived_binary() -> str:
    """Debian's keepalived (2.2.7 on the reference machines), also found in /usr/sbin when PATH lacks it."""
    found = shutil.which("keepalived") or shutil.which("keepalived", path="/usr/sbin:/sbin")
    if found is None:
        raise LabError("keepalived is not installed (apt install keepalived)")
    return found


@dataclass(eq=False)
class Daemon:
    """``argv`` run in namespace ``ns`` (None: where the caller is), output appended to ``log``.

    :meth:`start` may be called again after the process ended (a restart
    keeps the log, so a test reads the second run after a mark).
    """

    argv: list[str]
    log: Path
    ns: str | None = None
    env: Mapping[str, str] | None = None
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Daemon:
        if self.running:
            raise LabError(f"{self.argv[0]} is already running (pid {self.pid})")
        argv = ["ip", "netns", "exec", self.ns, *self.argv] if self.ns is not None else list(self.argv)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=REPO,
                env=dict(self.env) if self.env is not None else None,
            )
        _LIVE.add(self.proc)
        return self

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise LabError(f"{self.argv[0]} was never started")
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def send(self, sig: int) -> None:
        """Send ``sig`` to the daemon alone (SIGHUP: reload; SIGTERM: goodbye; SIGKILL: crash)."""
        if self.proc is None:
            raise LabError(f"{self.argv[0]} was never started")
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 10.0) -> int:
        """Its exit status once it ended (negative: the signal that ended it)."""
        if self.proc is None:
            raise LabError(f"{self.argv[0]} was never started")
        status = self.proc.wait(timeout)
        _LIVE.discard(self.proc)
        return status

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        """``sig`` (graceful by default), then SIGKILL if it is still there after ``timeout``; its status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        _LIVE.discard(self.proc)
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL the whole process group (keepalived's children too), then reap: quick and certain."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        _LIVE.discard(self.proc)

    def output(self) -> str:
        """Everything it logged so far (all runs)."""
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.output().splitlines()[-lines:])
