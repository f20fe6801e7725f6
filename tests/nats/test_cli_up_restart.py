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
from functools import partial
from pathlib import Path

import psutil
import pytest

from shared.lab.nats import free_port
from shared.lab.wait import wait_until
from tests.support.up import service_pid

pytestmark = [pytest.mark.nats, pytest.mark.timeout(90)]
STEP = 0.1

CONFIG = """
vrrp_script chk_true {
    script "/bin/true"
    interval 1
}
"""


def test_a_killed_service_is_restarted_and_the_others_run_on(tmp_path: Path) -> None:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONFIG)
    argv = [sys.executable, "-m", "shared.cli.main", "up", "--config", str(conf), "--node", "up-restart"]
    argv += ["--nats-port", str(free_port()), "--store-dir", str(tmp_path / "store")]
    log = (tmp_path / "up.log").open("wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        up = psutil.Process(proc.pid)
        modules = {"the checker": "services.checker", "vrrp": "services.vrrp", "nats-server": "-c"}
        for what, module in modules.items():
            wait_until(what, partial(service_pid, up, module), 20, STEP)
        checker, vrrp, nats_pid = (service_pid(up, module) for module in modules.values())
        time.sleep(1.0)  # all up and connected

        assert checker is not None
        psutil.Process(checker).kill()

        def new_checker() -> bool:
            return service_pid(up, "services.checker") not in (None, checker)

        wait_until("a new checker", new_checker, 15, STEP)
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
    assert "services.checker exited with -9; restarting in 0.2 s" in text, text
    assert "services.checker restarted (restart 1)" in text, text
