"""Host side of the kernel suite: boot the VM once, run ``tests/kernel/inside``, assert each result.

Why this shape: the host kernel has no IPVS and a VM boot is expensive, so one
session fixture runs every in-VM test in a single boot and each host test
reports one in-VM test by name (the failure message and the daemons' logs come
back with it).  Without qemu, the Debian kernel or virtme-ng the tests skip
locally and fail under CI (``CI`` set): CI must run them, a skip there would
hide a broken VM set-up.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import warnings
from pathlib import Path

import pytest

from tests.support.vm import CaseResult, VmRun, missing_tools, read_junit, run_in_vm

INSIDE = Path(__file__).parent / "inside"
NAMES = sorted(
    {m for f in INSIDE.glob("test_*.py") for m in re.findall(r"^def (test_\w+)", f.read_text(), re.M)},
    key=lambda n: next(
        f.read_text().index(f"def {n}(") for f in INSIDE.glob("test_*.py") if f"def {n}(" in f.read_text()
    ),
)


@pytest.fixture(scope="session")
def vm_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[VmRun, dict[str, CaseResult]]:
    missing = missing_tools()
    if missing:
        message = f"kernel tests need: {', '.join(missing)}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    # Under pytest-xdist every worker has its own session: the first boots the VM, the others wait
    # on the lock and read the same results (one boot per test run, whatever -n says).
    base = tmp_path_factory.getbasetemp()
    shared = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "lvs-kernel-vm"
    shared.mkdir(exist_ok=True)
    with (shared / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = shared / "run.json"
        if not done.exists():
            run = _boot(shared / "out")
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


def _boot(out: Path) -> VmRun:
    run = run_in_vm(
        [".venv/bin/python", "-m", "pytest", "tests/kernel/inside", "-p", "no:cacheprovider", "-q",
         "-p", "no:xdist", "-o", "addopts=", f"--junitxml={out}/junit.xml"],
        out,
        env={"LIFELINE_IN_VM": "1", "LIFELINE_VM_OUT": str(out)},
        timeout=720,
    )  # fmt: skip
    (Path(os.environ.get("LIFELINE_VM_KEEP", str(out))) / "vm-console.txt").write_text(run.output)
    return run


def _logs(out: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text()[-2500:]}" for p in sorted(out.glob("*.log")))


@pytest.mark.timeout(1080)  # the first test also waits for the boot (~3 min, slower under -n 2)
@pytest.mark.parametrize("name", NAMES)
def test_in_vm(vm_run: tuple[VmRun, dict[str, CaseResult]], name: str) -> None:
    run, results = vm_run
    result = results.get(name)
    if result is None:
        pytest.fail(f"{name} did not run in the VM (stopped early?):\n{run.output[-3000:]}")
    if result.outcome == "skipped":
        pytest.skip(result.message)
    assert result.outcome == "passed", f"{result.message}\n{_logs(run.outdir)}"


@pytest.mark.timeout(1080)
def test_vm_numbers_recorded(vm_run: tuple[VmRun, dict[str, CaseResult]]) -> None:
    """The in-VM suite writes its measurements for bench/RESULTS-lvs.md; the whole boot stays cheap."""
    run, _ = vm_run
    numbers = json.loads((run.outdir / "kernel-results.json").read_text())
    assert "failure_to_removal_ms" in numbers
    if run.seconds > 300:  # the budget; CI's -n 2 neighbours share the 2 cores TCG emulates on
        warnings.warn(f"the kernel suite took {run.seconds:.0f} s (budget 300 s)", stacklevel=1)
    assert run.seconds < 720
