"""Why compose runs each service with ``init: true``: double-forking scripts leave zombies under a bare PID 1.

The real notifier runs as PID 1 of a PID namespace of its own
(``unshare --pid --fork --mount-proc``), as it would in a container without an
init, then under ``tini`` (what ``docker run --init`` and compose's
``init: true`` put there).  20 notify scripts each start a grandchild that
outlives them; orphans go to the namespace's PID 1.  The launcher reaps every
script it started either way; only an init reaps the orphans.  Without one the
20 grandchildren stay zombies (so the test can fail), with it none is left.
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import psutil
import pytest

from shared.bus import connect
from shared.lab.nats import NatsServer
from shared.lab.wait import await_until
from tests.notifier.test_delivery_support import flip, instance_block, publisher, transition
from tests.scripts.support import (
    NATS_PASSWORD,
    NATS_USER,
    ServiceProcess,
    provision_notifier,
    service_argv,
    service_env,
)

pytestmark = [pytest.mark.root, pytest.mark.nats]

RUNS = 20
DOUBLE_FORK = """#!/bin/sh
# a grandchild that outlives this script: orphaned, it is re-parented to PID 1 of the namespace
( sleep 0.3; echo done >> "{done}" ) &
echo run >> "{runs}"
"""


def namespace_members(ns: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        try:
            if os.readlink(f"/proc/{proc.pid}/ns/pid") == ns:
                found.append(proc)
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return found


def census(ns: str) -> tuple[int, int]:
    """(live processes, zombies) in the PID namespace ``ns``."""
    alive = dead = 0
    for proc in namespace_members(ns):
        try:
            zombie = proc.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            continue
        dead += zombie
        alive += not zombie
    return alive, dead


def lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.mark.parametrize("init", [["tini", "--"], []], ids=["tini as PID 1", "notifier as PID 1"])
async def test_double_forking_scripts_leave_no_zombie_under_an_init(
    tmp_path: Path, server: NatsServer, init: list[str]
) -> None:
    if init:
        assert shutil.which(init[0]), "tini is installed by ./task (APT_PACKAGES)"
    done, runs = tmp_path / "done", tmp_path / "runs"
    script = tmp_path / "fork.sh"
    script.write_text(DOUBLE_FORK.format(done=done, runs=runs))
    script.chmod(0o755)
    conf = tmp_path / "keepalived.conf"
    conf.write_text(
        "global_defs {\n  router_id init\n  script_user root\n}\n" + instance_block("VI_1", 51, str(script))
    )
    (tmp_path / "lifeline.toml").write_text("")
    node = f"init-{tmp_path.name}"[-40:]
    argv = [
        "unshare",
        "--pid",
        "--fork",
        "--mount-proc",
        *init,
        *service_argv("notifier", conf, node),
        "--no-health",
    ]
    await provision_notifier(server, conf, node)
    notifier = ServiceProcess(
        argv, service_env(server, tmp_path / "lifeline.toml"), tmp_path / "notifier.log"
    )
    await notifier.start("lifeline-notifier ready")
    [pid1] = psutil.Process(notifier.pid).children()  # unshare forked it: PID 1 inside
    ns = os.readlink(f"/proc/{pid1.pid}/ns/pid")
    try:
        assert ("tini" in pid1.name()) is bool(init)
        nc = await connect(server.url, "test", user=NATS_USER, password=NATS_PASSWORD)
        pub = await publisher(nc, node)
        for i in range(RUNS):
            pub.publish(transition("VI_1", flip(i)))
        await await_until(f"{RUNS} grandchildren to finish", lambda: lines(done) >= RUNS, 60, 0.05)
        assert lines(runs) == RUNS
        # left: the notifier (and tini); every script and grandchild has exited.  The scripts are
        # always reaped by the launcher; the grandchildren only by an init.
        expected = (2, 0) if init else (1, RUNS)
        await await_until("(live, zombie) processes", lambda: census(ns), 10, 0.05, expect=expected)
        await pub.close()
        await nc.close()
    finally:
        os.kill(pid1.pid, signal.SIGKILL)  # the namespace's init: everything in it goes with it
        notifier.stop()
