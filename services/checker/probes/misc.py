"""MISC_CHECK: run ``misc_path`` and judge its exit status.

Exit 0 passes, 1 fails; 2..255 fail too unless ``misc_dynamic``, which makes
them pass with weight ``exit - 2``.  Death by a signal fails.  The script runs
through the one script launcher (``shared.scripts.runner``): as the check's
``user [group]``, else ``script_user``, else ``keepalived_script``, else root;
in a session of its own, so on ``misc_timeout`` the whole group gets SIGTERM
and, if still alive after ``KILL_GRACE`` seconds, SIGKILL; a timed-out script
fails, and so does one the launcher refuses.
"""

from __future__ import annotations

from services.checker.probes.base import ProbeFailure, ProbeResult, Success, Target, measure
from shared.config.model_lvs import Checker, MiscCheck
from shared.scripts import ScriptPolicy, ScriptRequest
from shared.scripts.runner import KILL_GRACE, ScriptRefused, run_script


async def probe(check: Checker, target: Target) -> ProbeResult:
    return await measure(_run(check, target, KILL_GRACE))


def script_request(check: MiscCheck, policy: ScriptPolicy) -> ScriptRequest | None:
    """What a MISC_CHECK asks the launcher: ``misc_path``, its block's ``user [group]``, the global policy."""
    if check.misc_path is None:
        return None
    argv = tuple(check.misc_path.argv)
    return ScriptRequest(argv, check.user, check.group, policy, f"MISC_CHECK {argv[0]}")


def verdict(check: MiscCheck, status: int) -> Success:
    """The exit-status rules; ``status`` as asyncio reports it (negative: killed by that signal)."""
    if status == 0:
        return Success("exit 0")
    if status < 0:
        raise ProbeFailure(f"killed by signal {-status}")
    if status >= 2 and check.misc_dynamic:
        return Success(f"exit {status}", weight=status - 2)
    raise ProbeFailure(f"exit {status}")


def timeout_for(check: MiscCheck) -> float:
    if check.misc_timeout is not None:
        return check.misc_timeout
    return check.delay_loop if check.delay_loop is not None else 60.0


async def _run(check: Checker, target: Target, grace: float) -> Success:
    if not isinstance(check, MiscCheck) or check.misc_path is None:
        raise ProbeFailure("MISC_CHECK without misc_path")
    request = target.script or script_request(check, ScriptPolicy())
    assert request is not None
    try:
        outcome = await run_script(request, timeout=timeout_for(check), grace=grace)
    except ScriptRefused as exc:
        raise ProbeFailure(f"not run: {exc}") from None
    if outcome.returncode is None:
        raise ProbeFailure(f"timed out after {timeout_for(check):g}s")
    return verdict(check, outcome.returncode)
