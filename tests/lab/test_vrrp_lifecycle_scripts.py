"""``startup_script`` / ``shutdown_script`` run by the real vrrp service in a network namespace.

keepalived's parent runs ``startup_script`` before anything starts and
``shutdown_script`` once everything stopped (docs/keepalived.md, "Start-up and
shutdown scripts"); lifeline's vrrp service runs them (docs/vrrp.md says why):

- the start-up script runs before any instance exists: while it runs, no
  state is published and no VIP is held; once it ends, the instance starts;
- the shutdown script runs after the hand-over: the VIP is gone when it runs,
  and the STOP event was published before it;
- a start-up script past ``startup_script_timeout`` gets SIGTERM (keepalived's
  kill of its process group) and the service starts all the same.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from shared.lab.wait import wait_until
from tests.lab.test_vrrp_service import VIP4, Lab, has_vip, instance

pytestmark = [pytest.mark.root, pytest.mark.nats, pytest.mark.timeout(90)]

RECORDER = """#!/bin/sh
# $1: start|stop, $2: a file to wait for (or "-"); writes what it sees to $OUT.$1
out="{out}.$1"
trap 'echo TERM >> "$out"; exit 0' TERM
echo "ran vip=$(ip -br addr show eth0 | grep -c '{vip}')" >> "$out"
[ "$2" = "-" ] || while [ ! -e "$2" ]; do sleep 0.05; done
echo "done" >> "$out"
"""


def recorder(tmp_path: Path) -> tuple[Path, Path]:
    script = tmp_path / "lifecycle.sh"
    out = tmp_path / "seen"
    script.write_text(RECORDER.format(out=out, vip=VIP4))
    script.chmod(0o755)
    return script, out


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_startup_script_runs_before_the_instances_and_shutdown_script_after_the_hand_over(
    lab: Lab, tmp_path: Path
) -> None:
    script, out = recorder(tmp_path)
    go = tmp_path / "go"
    conf = (
        "global_defs {\n  router_id a\n"
        f'  startup_script "{script} start {go}" root\n  startup_script_timeout 60\n'
        f'  shutdown_script "{script} stop -" root\n  shutdown_script_timeout 5\n}}\n'
    ) + instance(150)
    a = lab.hosts[0]
    proc = lab.service(a, conf)
    node = lab.node(a)
    wait_until("the start-up script", lambda: lines(Path(f"{out}.start")) == ["ran vip=0"], 20)
    assert lab.events(node, 1, timeout=1.0) == []  # nothing started while the script runs
    assert not has_vip(a, VIP4)
    go.touch()
    wait_until("a to hold the VIP", lambda: has_vip(a, VIP4), 20)
    assert lines(Path(f"{out}.start")) == ["ran vip=0", "done"]
    assert not Path(f"{out}.stop").exists()

    proc.signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    assert lines(Path(f"{out}.stop")) == ["ran vip=0", "done"]  # after the VIP was handed over
    states = [e.state.value for e in lab.events(node, 3, timeout=5.0)]
    assert states[-1] == "STOP", states


def test_a_startup_script_past_its_timeout_is_terminated_and_the_service_starts(
    lab: Lab, tmp_path: Path
) -> None:
    script, out = recorder(tmp_path)
    never = tmp_path / "never"
    conf = (
        f'global_defs {{\n  router_id a\n  startup_script "{script} start {never}" root\n'
        "  startup_script_timeout 1\n}\n"
    ) + instance(150)
    a = lab.hosts[0]
    lab.service(a, conf)
    wait_until("a to hold the VIP", lambda: has_vip(a, VIP4), 30)
    assert lines(Path(f"{out}.start")) == ["ran vip=0", "TERM"]
