"""``lifeline up`` restarts a service that dies and leaves the others running.

A real ``lifeline up`` (embedded nats-server, real service processes): the
checker is killed with SIGKILL, a new checker appears while vrrp and
nats-server keep their PIDs, and SIGTERM still stops everything with exit 0.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from shared.lab.nats import free_port

pytestmark = [pytest.mark.nats, pytest.mark.timeout(90)]

CONFIG = """
vrrp_script chk_true {
    script "/bin/true"
    interval 1
}
"""


def service_pid(up: psutil.Process, module: str) -> int | None:
    for child in up.children():
        try:
            if module in child.cmdline():
                return child.pid
        except psutil.NoSuchProcess:
            continue
    return None


def wait_for(what: str, check: Callable[[], object], timeout: float) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def test_a_killed_service_is_restarted_and_the_others_run_on(tmp_path: Path) -> None:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONFIG)
    argv = [sys.executable, "-m", "shared.cli.main", "up", "--config", str(conf), "--node", "up-restart"]
    argv += ["--nats-port", str(free_port()), "--store-dir", str(tmp_path / "store")]
    log = (tmp_path / "up.log").open("wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        up = psutil.Process(proc.pid)
        checker = wait_for("the checker", lambda: service_pid(up, "services.checker"), 20)
        vrrp = wait_for("vrrp", lambda: service_pid(up, "services.vrrp"), 20)
        nats_pid = wait_for("nats-server", lambda: service_pid(up, "-c"), 20)
        time.sleep(1.0)  # all up and connected

        psutil.Process(checker).kill()  # type: ignore[arg-type]
        new = wait_for(
            "a new checker",
            lambda: (p := service_pid(up, "services.checker")) not in (None, checker) and p,
            15,
        )
        assert new != checker
        assert proc.poll() is None, "lifeline up must keep running"
        assert service_pid(up, "services.vrrp") == vrrp and service_pid(up, "-c") == nats_pid

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    text = (tmp_path / "up.log").read_text(errors="replace")
    assert "services.checker exited with -9; restarting in 0.5 s" in text, text
    assert "services.checker restarted (restart 1)" in text, text
