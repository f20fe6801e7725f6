"""A script outlives a killed checker no longer: SIGTERM reaches it as the checker dies (keepalived's rule).

A real child interpreter plays the checker: it runs a ``vrrp_script`` through
the real ScriptTracker (a script that sleeps), reports the script's PID, and is
killed with SIGKILL; the script must be gone within a few seconds instead of
sleeping out its 30 s.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil

from shared.lab.wait import wait_until

CHECKER = """
import asyncio, sys
from services.checker.trackers.script import ScriptTracker
from shared.config.model_vrrp import VrrpScript
from shared.config.script import Script

async def main() -> None:
    command = "echo $$ > {pidfile}; exec sleep 30"
    argv = ["/bin/sh", "-c", command]
    script = VrrpScript(name="hang", script=Script(command, argv), interval=60, timeout=60)
    tracker = ScriptTracker(script, lambda outcome: None)
    await tracker.run()

asyncio.run(main())
"""


def test_a_killed_checker_takes_its_running_script_with_it(tmp_path: Path) -> None:
    pidfile = tmp_path / "script.pid"
    checker = subprocess.Popen([sys.executable, "-c", CHECKER.format(pidfile=pidfile)], cwd=os.getcwd())
    try:

        def script_started() -> bool:
            assert checker.poll() is None, "the checker stand-in died on its own"
            return pidfile.exists() and bool(pidfile.read_text().strip())

        wait_until("the script to start", script_started, 15, 0.05)
        script = psutil.Process(int(pidfile.read_text()))
        assert script.is_running()
    finally:
        checker.kill()
        checker.wait()
    gone, alive = psutil.wait_procs([script], timeout=5)
    assert gone and not alive, "the script kept running after its checker was killed"
