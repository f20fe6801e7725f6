"""A notifier killed in a burst is back within the restart ceiling every time, and it shows.

A real ``lifeline up`` (embedded nats-server, real service processes): the
notifier is SIGKILLed seven times, each time as soon as its successor
appears.  The old doubling schedule (0.5 s up to 30 s) brought the sixth one
back after 16 s; the ceiling (``MAX_DELAY_S``) brings each back within it plus
the supervisor's 0.2 s tick.  The restarts, the current backoff and the last
exit status then read the same in the supervisor's file and the metrics.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from functools import partial
from pathlib import Path

import psutil
import pytest

from shared.cli.metrics_collect import Collector
from shared.cli.restart_policy import MAX_DELAY_S
from shared.cli.restarts_file import read_restarts
from shared.lab.nats import free_port
from shared.lab.wait import wait_until
from tests.support.up import service_pid

pytestmark = [pytest.mark.nats, pytest.mark.timeout(120)]
STEP = 0.05
NODE = "up-burst"
KILLS = 7
TICK = 0.2
"""The supervisor's polling period (``Supervisor.watch``)."""
SPAWN = 1.0
"""Generous room for fork+exec of a Python process on a loaded machine."""

CONFIG = """
vrrp_script chk_true {
    script "/bin/true"
    interval 1
}
"""


def test_a_notifier_killed_seven_times_in_a_burst_is_back_within_the_ceiling_each_time(
    tmp_path: Path,
) -> None:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONFIG)
    argv = [sys.executable, "-m", "shared.cli.main", "up", "--config", str(conf), "--node", NODE]
    argv += ["--nats-port", str(free_port()), "--store-dir", str(tmp_path / "store")]
    env = {**os.environ, "LIFELINE_STATE_DIR": str(tmp_path / "state")}
    log = (tmp_path / "up.log").open("wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
    gaps: list[float] = []
    try:
        up = psutil.Process(proc.pid)
        wait_until("the notifier", partial(service_pid, up, "services.notifier"), 30, STEP)
        for _ in range(KILLS):
            notifier = service_pid(up, "services.notifier")
            assert notifier is not None
            psutil.Process(notifier).kill()

            def successor(old: int = notifier) -> bool:
                return service_pid(up, "services.notifier") not in (None, old)

            gaps.append(wait_until("a new notifier", successor, 30, STEP))
        path = tmp_path / "state" / NODE / "supervisor.json"
        wait_until("the restarts file", lambda: read_restarts(path).get("services.notifier"), 10, STEP)
        row = read_restarts(path)["services.notifier"]
        metrics = asyncio.run(Collector(None, NODE, restarts=path).scrape())
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    assert max(gaps) <= MAX_DELAY_S + TICK + SPAWN, gaps
    assert (row.running, row.restarts, row.backoff, row.last_exit) == (True, KILLS, MAX_DELAY_S, -9)
    assert f'lifeline_service_restarts_total{{service="services.notifier"}} {KILLS}' in metrics, metrics
    assert 'lifeline_service_last_exit_status{service="services.notifier"} -9' in metrics, metrics
