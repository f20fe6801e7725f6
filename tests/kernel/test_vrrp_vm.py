"""Host side of the vrrp kernel tests: boot the VM once, run ``tests/kernel/vrrp_inside``, assert each result.

Why a VM: the host kernel has no ipvlan, and ``use_ipvlan`` is only proven
against the real driver, with the real keepalived 2.2.7 as the peer.  Why a
boot of its own (not the LVS suite's): a cold Python service costs ~20 s
under TCG emulation and that boot has its own time budget.  Without qemu,
the Debian kernel or virtme-ng the tests skip locally and fail under CI
(``CI`` set), as ``test_vm.py`` does.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from pathlib import Path

import pytest

from tests.support.vm import CaseResult, VmRun, missing_tools, read_junit, run_in_vm

INSIDE = Path(__file__).parent / "vrrp_inside"
NAMES = sorted(
    {m for f in INSIDE.glob("test_*.py") for m in re.findall(r"^def (test_\w+)", f.read_text(), re.M)}
)


@pytest.fixture(scope="session")
def vrrp_vm_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[VmRun, dict[str, CaseResult]]:
    missing = missing_tools()
    if missing:
        message = f"kernel tests need: {', '.join(missing)}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    # One boot per test run whatever -n says: the first xdist worker boots, the others read its results.
    base = tmp_path_factory.getbasetemp()
    shared = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "vrrp-kernel-vm"
    shared.mkdir(exist_ok=True)
    with (shared / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = shared / "run.json"
        if not done.exists():
            out = shared / "out"
            run = run_in_vm(
                [".venv/bin/python", "-m", "pytest", "tests/kernel/vrrp_inside", "-q", "-p", "no:xdist",
                 "-p", "no:cacheprovider", "-o", "addopts=", f"--junitxml={out}/junit.xml"],
                out,
                env={"LIFELINE_IN_VM": "1"},
                timeout=540,
            )  # fmt: skip
            done.write_text(
                json.dumps({"returncode": run.returncode, "seconds": run.seconds, "output": run.output})
            )
    saved = json.loads(done.read_text())
    run = VmRun(saved["returncode"], saved["seconds"], saved["output"], shared / "out")
    results = read_junit(run.outdir / "junit.xml")
    if not results:
        pytest.fail(
            f"no results from the VM (exit {run.returncode}, {run.seconds:.0f} s):\n{run.output[-6000:]}"
        )
    return run, results


@pytest.mark.timeout(900)  # the first test also waits for the boot (~3 min, slower under -n 2)
@pytest.mark.parametrize("name", NAMES)
def test_vrrp_in_vm(vrrp_vm_run: tuple[VmRun, dict[str, CaseResult]], name: str) -> None:
    run, results = vrrp_vm_run
    result = results.get(name)
    if result is None:
        pytest.fail(f"{name} did not run in the VM (stopped early?):\n{run.output[-3000:]}")
    if result.outcome == "skipped":
        pytest.skip(result.message)
    assert result.outcome == "passed", f"{result.message}\n{run.output[-3000:]}"
