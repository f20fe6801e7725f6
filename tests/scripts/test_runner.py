"""The launcher with real processes: what a started script has, refusal at start, nothing left unreaped."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import psutil
import pytest

from shared.lab.wait import await_until
from shared.scripts import ScriptPolicy, ScriptRequest
from shared.scripts.runner import ScriptRefused, run_script
from tests.scripts.support import ScriptTree

PROBE = """#!/bin/sh
# what the script was started with, read before anything is redirected
std="$(readlink /proc/$$/fd/0) $(readlink /proc/$$/fd/1) $(readlink /proc/$$/fd/2)"
fds=$(ls /proc/$$/fd | wc -l)
{
  echo "pid=$$"
  echo "sid=$(ps -o sid= -p $$ | tr -d ' ')"
  echo "pgid=$(ps -o pgid= -p $$ | tr -d ' ')"
  echo "cwd=$(pwd)"
  echo "std=$std"
  echo "fds=$fds"
} > "$1"
"""


def probe_script(tree: ScriptTree) -> Path:
    path = tree.top / "bin" / "probe.sh"
    path.write_text(PROBE)
    path.chmod(0o755)
    return path


def read(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines())


async def test_own_session_root_directory_and_dev_null(tree: ScriptTree) -> None:
    out = tree.out / "probe"
    outcome = await run_script(ScriptRequest((str(probe_script(tree)), str(out))), timeout=10)
    assert outcome.returncode == 0
    seen = read(out)
    assert seen["sid"] == seen["pgid"] == seen["pid"]  # a session, so a process group, of its own
    assert seen["cwd"] == "/"
    assert seen["std"] == "/dev/null /dev/null /dev/null"
    assert int(seen["fds"]) <= 5  # 0, 1, 2, the script itself and ls's own: nothing of the service's


@pytest.mark.skipif(os.geteuid() != 0, reason="the path check applies to scripts run as root")
async def test_a_script_made_unsafe_after_planning_is_refused_at_start(tree: ScriptTree) -> None:
    """The configuration was read while the directory was safe; the check is made again at each start."""
    script = probe_script(tree)
    request = ScriptRequest((str(script), str(tree.out / "x")), "root", policy=ScriptPolicy(security=True))
    assert (await run_script(request, timeout=10)).returncode == 0
    script.parent.chmod(0o777)
    try:
        with pytest.raises(ScriptRefused, match="Unsafe permissions found for script"):
            await run_script(request, timeout=10)
    finally:
        script.parent.chmod(0o755)


async def test_no_zombie_left_by_the_launcher(tree: ScriptTree) -> None:
    """Scripts that exit, fail, time out (group killed) or are cancelled: every one is reaped."""
    me = psutil.Process()
    before = {c.pid for c in me.children()}
    sh = "/bin/sh"
    runs = [
        run_script(ScriptRequest((sh, "-c", "exit 0")), timeout=10),
        run_script(ScriptRequest((sh, "-c", "exit 3")), timeout=10),
        run_script(ScriptRequest((sh, "-c", "trap '' TERM; sleep 30")), timeout=0.2, grace=0.2),
    ]
    outcomes = await asyncio.gather(*runs)
    assert [o.returncode for o in outcomes[:2]] == [0, 3] and outcomes[2].timed_out
    marker = tree.out / "started"
    hang = ScriptRequest((sh, "-c", f"touch {marker}; sleep 30"))
    cancelled = asyncio.create_task(run_script(hang, timeout=None, grace=0.2))
    await await_until("the script to start", marker.exists, 10, 0.01)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    children = [c for c in me.children() if c.pid not in before]
    assert not [c for c in children if c.status() == psutil.STATUS_ZOMBIE]
    assert not [c for c in children if "sleep" in " ".join(c.cmdline())], "a script outlived its kill"
