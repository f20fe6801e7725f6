"""The liveness file (``shared.runner.alive``) and ``lifeline health SERVICE --local`` reading it."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from shared.runner import alive


def test_verdicts() -> None:
    now = 1000.0
    fresh = '{"pid": 1, "ready": true, "time": 995.0}'
    assert alive.verdict(fresh, now) is None
    assert alive.verdict(fresh.replace("true", "false"), now) == "starting (not ready yet)"
    assert "old" in (alive.verdict(fresh, now + alive.STALE_AFTER + 10) or "")
    assert alive.verdict(fresh, now, pid_alive=False) == "its process is gone"
    assert alive.verdict("{", now) == "unreadable liveness file"
    assert "no liveness file" in (alive.verdict(None, now) or "")


def test_written_atomically_world_readable_without_secrets(tmp_path: Path) -> None:
    path = alive.alive_path("vrrp", None, tmp_path / "run")
    os.umask(0o077)
    try:
        alive.write(path, ready=True)
    finally:
        os.umask(0o022)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert alive.check(path) is None
    assert sorted(p.name for p in path.parent.iterdir()) == ["vrrp.alive"]  # no temporary left behind
    alive.write(path, ready=True, pid=2**22 + 12345)  # no such process
    assert alive.check(path) == "its process is gone"


@pytest.mark.parametrize(("ready", "code"), [(True, 0), (False, 1)])
def test_health_local_exit_codes(tmp_path: Path, ready: bool, code: int) -> None:
    env = {**os.environ, alive.DIR_ENV: str(tmp_path)}
    alive.write(alive.alive_path("checker", "r2", tmp_path), ready=ready)
    argv = [sys.executable, "-m", "shared.cli.main", "health", "checker", "--local"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == code, done.stdout + done.stderr
    assert done.stdout.startswith("checker: ")
    gone = subprocess.run(
        [*argv, "--replica-id", "r9", "-q"], env=env, capture_output=True, timeout=30, check=False
    )
    assert gone.returncode == 1 and not gone.stdout


def test_the_local_path_imports_neither_nats_nor_the_contract(tmp_path: Path) -> None:
    heavy = "('nats', 'msgspec', 'shared.events', 'shared.cli.status')"
    code = (
        "import sys; from shared.cli.main import main; main(['health', 'vrrp', '--local', '-q']); "
        f"print(sorted(m for m in {heavy} if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    assert done.stdout.strip() == "[]"
