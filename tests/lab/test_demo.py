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
import time
from pathlib import Path

import pytest

from shared.lab.netns import PREFIX, list_namespaces

pytestmark = pytest.mark.root

LIFELINE = Path(sys.executable).parent / "lifeline"


def _ours(pid: int) -> list[str]:
    """Namespaces a demo with this pid created (``lld-<pid36>-...``)."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    b36 = ""
    while True:
        pid, rest = divmod(pid, 36)
        b36 = digits[rest] + b36
        if not pid:
            break
    return [ns for ns in list_namespaces() if ns.startswith(f"{PREFIX}-{b36}-")]


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
    """Ctrl-C in the middle (here: SIGINT once the lab exists) still removes every namespace."""
    proc = subprocess.Popen([LIFELINE, "demo"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not any(ns.endswith("-b") for ns in _ours(proc.pid)) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.5)  # the services are running by now
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert _ours(proc.pid) == []
