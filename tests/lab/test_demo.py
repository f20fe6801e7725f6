"""``lifeline demo`` end to end: the README's first command must work and leave nothing behind.

Why a subprocess: the demo is judged as a newcomer runs it (the console
script, its exit status, its output), and its cleanup is only proven from
outside, by listing namespaces after it exited.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from shared.lab.netns import DEMO_PREFIX, list_namespaces, namespace_pids, owned_by
from shared.lab.wait import wait_until

pytestmark = pytest.mark.root

LIFELINE = Path(sys.executable).parent / "lifeline"


def _ours(pid: int) -> list[str]:
    """Namespaces a demo with this pid created (``lld-<pid36>-...``)."""
    return [ns for ns in list_namespaces() if owned_by(pid, DEMO_PREFIX)(ns)]


def _services_in_a(pid: int) -> bool:
    """Host a of that demo runs its nats-server and its vrrp service."""
    return any(ns.endswith("-a") and len(namespace_pids(ns)) >= 2 for ns in _ours(pid))


@pytest.fixture(autouse=True)
def _root() -> None:
    if os.geteuid() != 0:
        pytest.fail("lifeline demo needs root (network namespaces)")


def test_demo_fails_over_preempts_and_cleans_up() -> None:
    proc = subprocess.Popen([LIFELINE, "demo"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=45)
    assert proc.returncode == 0, f"stdout:\n{out}\nstderr:\n{err}"
    assert re.search(r"a: VI_1 BACKUP -> MASTER \(master_down_timer\)", out), out
    assert re.search(r"b: VI_1 BACKUP -> MASTER \(master_down_timer\) prio 15", out), out
    assert re.search(r"a: VI_1 BACKUP -> MASTER \(preempt\) prio 20", out), out
    assert re.search(r"failover +b MASTER \d+\.\d+ s after a's last advert", out), out
    assert re.search(r"floor: b's Master_Down_Interval .* = 3\.941 s", out), out
    assert _ours(proc.pid) == []


def test_interrupted_demo_cleans_up() -> None:
    """Ctrl-C in the middle (here: SIGINT once the services run) still removes every namespace."""
    proc = subprocess.Popen([LIFELINE, "demo"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until("the demo's services to run in host a", lambda: _services_in_a(proc.pid), 20, 0.05)
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert _ours(proc.pid) == []
