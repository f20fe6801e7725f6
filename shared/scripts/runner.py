"""Run one script: resolve, start, wait with a deadline, kill the whole group, reap.

The only way lifeline runs scripts: ``run_script`` runs one to its end (with a
deadline); ``start_script`` starts one that lives as long as what it serves
(a notify FIFO's reader) and ``RunningScript.stop`` ends it the same way.

Every start:

- is resolved again (``resolve``): the user database and the file's
  permissions are read at each start, so a script made unsafe after the
  configuration was read is refused (``ScriptRefused``) rather than run as root;
- runs the resolved real path with the script's argv, with stdin, stdout and
  stderr on ``/dev/null``, in ``/`` (keepalived's working directory under
  systemd), with the allow-listed environment (``environment.script_env``);
- gets its own session, so its process group can be signalled with every
  child it made; the user, primary group and supplementary groups of
  ``Launch.identity``; and the parent-death signal, set after the switch;
- is always reaped: a timeout sends SIGTERM to the group, SIGKILL
  ``grace`` seconds later (children may outlive a script that obeyed), and
  waits for the script; a cancelled caller does the same before it unwinds.

Grandchildren a script leaves behind are re-parented to the nearest init;
reaping those is an init's job (``init: true`` in compose.yaml, systemd on a host).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import shutil
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from shared.runner.priorities import script_prefix
from shared.scripts.accounts import Accounts, LocalAccounts, own_identity
from shared.scripts.environment import script_env
from shared.scripts.files import LocalScriptFiles, ScriptFiles
from shared.scripts.parent_death import pdeathsig_prefix
from shared.scripts.policy import DEFAULT_SCRIPT_USER, Refusal, Source
from shared.scripts.resolve import Launch, ScriptRequest, resolve

log = logging.getLogger("lifeline.scripts")

KILL_GRACE = 2.0
"""Seconds between SIGTERM and SIGKILL, keepalived's script kill delay."""


@dataclass(frozen=True)
class Outcome:
    """How a run ended: ``returncode`` as asyncio reports it (negative: that signal), None if it timed out."""

    launch: Launch
    returncode: int | None

    @property
    def timed_out(self) -> bool:
        return self.returncode is None


class ScriptRefused(Exception):
    """The script may not run (see ``refusal.reason``, keepalived's words)."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.reason)
        self.refusal = refusal


def prepare(
    request: ScriptRequest, *, accounts: Accounts | None = None, files: ScriptFiles | None = None
) -> Launch | Refusal:
    """``resolve`` on this machine, for this process."""
    accounts = accounts if accounts is not None else LocalAccounts()
    files = files if files is not None else LocalScriptFiles()
    return resolve(request, accounts, files, own_identity(accounts))


def announce(request: ScriptRequest, logger: logging.Logger = log) -> Launch | Refusal:
    """Resolve ``request`` when a service plans it, and log who will run it (once, not at every run).

    keepalived's warning for the root fallback, a warning when this service
    cannot switch to the script's user, an error when the script will not run.
    """
    launch = prepare(request)
    if isinstance(launch, Refusal):
        logger.error("%s: not run: %s", request.name, launch.reason)
        return launch
    who = f"{request.name} runs as {launch.identity.label} ({launch.source})"
    if launch.wanted is not None:
        logger.warning("%s: not %s, which only root can switch to", who, launch.wanted.label)
    elif launch.source is Source.ROOT_FALLBACK:
        logger.warning("Script user '%s' does not exist: %s", DEFAULT_SCRIPT_USER, who)
    else:
        logger.info("%s", who)
    return launch


async def run_script(
    request: ScriptRequest,
    *,
    timeout: float | None,
    grace: float = KILL_GRACE,
    extra_env: Mapping[str, str] | None = None,
    on_timeout: Callable[[], None] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Outcome:
    """Run ``request`` to its end; ``on_timeout`` is called at the deadline, before the kill.

    Raises ``ScriptRefused`` when it may not run and ``OSError`` when it cannot
    start (missing, not executable); the caller decides what either means.
    """
    running = await start_script(request, extra_env=extra_env, environ=environ)
    return await _wait(running.process, running.launch, timeout, grace, on_timeout)


@dataclass(frozen=True)
class RunningScript:
    """A script started by ``start_script`` and not awaited: a FIFO reader runs as long as its FIFO.

    ``stop`` is keepalived's end for such a script (SIGTERM to its process
    group, SIGKILL ``grace`` seconds later); it always reaps.
    """

    launch: Launch
    process: asyncio.subprocess.Process

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        """None while it runs; as asyncio reports it after (negative: killed by that signal)."""
        return self.process.returncode

    async def wait(self) -> int:
        return await self.process.wait()

    async def stop(self, grace: float = KILL_GRACE) -> int | None:
        """SIGTERM to the group, SIGKILL after ``grace``; the exit status (shielded from cancellation)."""
        if self.process.returncode is None:
            await asyncio.shield(terminate_group(self.process, grace, self.launch.request.name))
        return self.process.returncode


async def start_script(
    request: ScriptRequest,
    *,
    extra_env: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> RunningScript:
    """Resolve and start ``request``, exactly as ``run_script`` does, and return without waiting.

    For the scripts that live as long as what they serve (the notify FIFO
    scripts).  Raises ``ScriptRefused`` and ``OSError`` as ``run_script`` does;
    the caller owns the result and must ``stop`` it.
    """
    launch = prepare(request)
    if isinstance(launch, Refusal):
        raise ScriptRefused(launch)
    env = script_env(os.environ if environ is None else environ, launch.identity, extra_env)
    return RunningScript(launch, await _start(launch, env))


async def _start(launch: Launch, env: dict[str, str]) -> asyncio.subprocess.Process:
    ident = launch.identity
    switch = (
        {"user": ident.uid, "group": ident.gid, "extra_groups": list(ident.groups)} if launch.switch else {}
    )
    argv = command_line(launch)
    _check_executable(argv[len(argv) - len(launch.request.argv)], env)  # after the wrappers
    return await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
        cwd="/",
        start_new_session=True,
        **switch,  # type: ignore[arg-type]
    )


def _check_executable(program: str, env: Mapping[str, str]) -> None:
    """Raise the ``OSError`` the exec would have raised, before the wrapper hides it.

    Why: behind ``setpriv`` a missing script is setpriv's exit 127, which a
    script can also return; callers tell "cannot start" (not worth a retry)
    from "ran and failed" by the exception, so it is checked here first.
    """
    found = program if "/" in program else shutil.which(program, path=env.get("PATH", os.defpath))
    if found is None or not os.path.exists(found):
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)
    if os.path.isdir(found) or not os.access(found, os.X_OK):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), program)


def command_line(launch: Launch) -> list[str]:
    """What is executed: the parent-death and nice wrappers, then the resolved script and its arguments.

    No ``preexec_fn``: nothing of ours runs between fork and exec (see ``parent_death``).
    """
    program = launch.executable or launch.request.argv[0]  # unresolved: found on PATH at exec
    return [*pdeathsig_prefix(), *script_prefix(), program, *launch.request.argv[1:]]


async def _wait(
    proc: asyncio.subprocess.Process,
    launch: Launch,
    timeout: float | None,
    grace: float,
    on_timeout: Callable[[], None] | None,
) -> Outcome:
    try:
        async with asyncio.timeout(timeout):
            return Outcome(launch, await proc.wait())
    except TimeoutError:
        if on_timeout is not None:
            on_timeout()
        await terminate_group(proc, grace, launch.request.name)
        return Outcome(launch, None)
    finally:
        if proc.returncode is None:  # cancelled: never leave the script behind, nor unreaped
            await asyncio.shield(terminate_group(proc, grace, launch.request.name))


async def terminate_group(proc: asyncio.subprocess.Process, grace: float, name: str = "script") -> None:
    """SIGTERM the script's process group, SIGKILL it after ``grace`` seconds, reap the script."""
    _signal_group(proc.pid, signal.SIGTERM)
    try:
        async with asyncio.timeout(grace):
            await proc.wait()
    except TimeoutError:
        log.warning("%s (pid %d) ignored SIGTERM for %gs: SIGKILL", name, proc.pid, grace)
    _signal_group(proc.pid, signal.SIGKILL)  # children may outlive a script that obeyed SIGTERM
    with contextlib.suppress(asyncio.CancelledError):
        await proc.wait()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
