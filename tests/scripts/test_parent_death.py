"""A script outlives a killed service no longer: SIGTERM reaches it as the service dies (keepalived's rule).

A real child interpreter plays the checker: it runs a ``vrrp_script`` through
the real ScriptTracker (a script that sleeps), reports the script's PID, and is
killed with SIGKILL; the script must be gone within a few seconds instead of
sleeping out its 30 s.  Once as the service's own user, once switched to
``nobody``: a credential change clears the parent-death setting, so this shows
the launcher sets it after the switch.
"""

from __future__ import annotations

import os
import subprocess
import sys

import psutil
import pytest

from shared.lab.wait import wait_until
from tests.scripts.support import ROOT, ScriptTree

CHECKER = """
import asyncio, sys
from services.checker.trackers.script import ScriptTracker, script_request
from shared.config.model_vrrp import VrrpScript
from shared.config.script import Script
from shared.scripts import ScriptPolicy

async def main() -> None:
    command = "echo $$ > {pidfile}; exec sleep 30"
    argv = ["/bin/sh", "-c", command]
    script = VrrpScript(name="hang", script=Script(command, argv), interval=60, timeout=60, user={user!r})
    tracker = ScriptTracker(script, lambda outcome: None, request=script_request(script, ScriptPolicy()))
    await tracker.run()

asyncio.run(main())
"""


@pytest.mark.parametrize("user", [None, "nobody"], ids=["own user", "switched to nobody"])
def test_a_killed_checker_takes_its_running_script_with_it(user: str | None, tree: ScriptTree) -> None:
    if user is not None and os.geteuid() != 0:
        pytest.skip("switching users needs root")
    pidfile = tree.out / "script.pid"
    code = CHECKER.format(pidfile=pidfile, user=user)
    checker = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    try:

        def script_started() -> bool:
            assert checker.poll() is None, "the checker stand-in died on its own"
            return pidfile.exists() and bool(pidfile.read_text().strip())

        wait_until("the script to start", script_started, 15, 0.05)
        script = psutil.Process(int(pidfile.read_text()))
        assert script.is_running()
        if user is not None:
            assert script.username() == user
    finally:
        checker.kill()
        checker.wait()
    gone, alive = psutil.wait_procs([script], timeout=5)
    assert gone and not alive, "the script kept running after its checker was killed"
