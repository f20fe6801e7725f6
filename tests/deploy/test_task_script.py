"""The task script is safe on a keepalived node: apt starts nothing, and nothing running is stopped.

``apt_install`` runs in a private mount namespace whose ``/usr/sbin`` is a
temporary directory (so the machine's own policy-rc.d is never touched), with
``dpkg`` and ``apt-get`` on PATH replaced by recorders: the recorder asks
``/usr/sbin/policy-rc.d`` what Debian's maintainer scripts would ask
(``policy-rc.d keepalived start``) while the install runs.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TASK = REPO / "task"

pytestmark = pytest.mark.root

RECORDER = """#!/bin/sh
echo "apt-get $*" >>"$LOG"
/usr/sbin/policy-rc.d keepalived start; echo "policy-rc.d: $?" >>"$LOG"
"""


def apt_install(tmp_path: Path, packages: list[str], *, installed: bool, policy: str | None) -> str:
    """Run the script's ``apt_install PACKAGES``; the recorder's log, then the policy-rc.d left behind."""
    sbin, bin_ = tmp_path / "sbin", tmp_path / "bin"
    sbin.mkdir()
    bin_.mkdir()
    if policy is not None:
        (sbin / "policy-rc.d").write_text(policy)
        (sbin / "policy-rc.d").chmod(0o755)
    (bin_ / "apt-get").write_text(RECORDER)
    (bin_ / "dpkg").write_text(f"#!/bin/sh\nexit {0 if installed else 1}\n")
    for tool in ("apt-get", "dpkg"):
        (bin_ / tool).chmod(0o755)
    log = tmp_path / "log"
    log.touch()
    script = f"mount --bind {sbin} /usr/sbin && source {TASK} && apt_install {' '.join(packages)}"
    env = {**os.environ, "PATH": f"{bin_}:{os.environ['PATH']}", "LOG": str(log)}
    proc = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "bash", "-c", script],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    left = (sbin / "policy-rc.d").read_text() if (sbin / "policy-rc.d").exists() else "<none>"
    return log.read_text() + f"left: {left}"


def test_no_service_starts_during_the_install_and_no_policy_is_left_behind(tmp_path: Path) -> None:
    out = apt_install(tmp_path, ["keepalived", "tini"], installed=False, policy=None)
    assert "apt-get install -y -qq --no-install-recommends keepalived tini" in out
    assert out.count("policy-rc.d: 101") == 2, out  # update and install both ran under the policy
    assert out.endswith("left: <none>"), out


def test_an_existing_policy_is_put_back_unchanged(tmp_path: Path) -> None:
    mine = "#!/bin/sh\n# the operator's own\nexit 0\n"
    out = apt_install(tmp_path, ["keepalived"], installed=False, policy=mine)
    assert "policy-rc.d: 101" in out and "policy-rc.d: 0" not in out, out
    assert out.endswith(f"left: {mine}"), out


def test_nothing_installed_when_nothing_is_missing(tmp_path: Path) -> None:
    out = apt_install(tmp_path, ["keepalived"], installed=True, policy=None)
    assert "apt-get" not in out, out


def test_no_task_stops_disables_or_signals_a_daemon() -> None:
    """Nothing in the script can stop the host's keepalived (or any service): no such command at all."""
    code = [line.split("#", 1)[0] for line in TASK.read_text().splitlines()]
    found = [
        line for line in code if re.search(r"\b(systemctl|service|invoke-rc\.d|pkill|killall|kill)\b", line)
    ]
    assert not found, found


def test_setup_installs_no_test_tool() -> None:
    """``setup`` (and so ``demo``) installs the run-time packages only; keepalived and qemu are the tests'."""
    text = TASK.read_text()
    run = re.search(r"^RUN_PACKAGES=\((.*)\)$", text, re.M)
    assert run is not None
    assert not {"keepalived", "qemu-system-x86", "linux-image-amd64", "ipvsadm"} & set(run.group(1).split())
    setup = re.search(r"^task_setup\(\) \{(.*)\}$", text, re.M)
    assert setup is not None and "TEST_PACKAGES" not in setup.group(1) and "dev" not in setup.group(1)
