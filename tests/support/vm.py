"""The host side of the in-VM test suite: boot (``shared.lab.vm``) and read back each in-VM result.

The boot machinery lives in ``shared/lab/vm.py`` because the in-VM benchmarks
use it too, and the benchmarks must not import the test tree.
"""

from __future__ import annotations

import fcntl
import json
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

from shared.lab.vm import VmRun, find_kernel, find_vng, missing_tools, run_in_vm

__all__ = [
    "CaseResult",
    "SuiteRun",
    "VmRun",
    "assert_passed_in_vm",
    "find_kernel",
    "find_vng",
    "missing_tools",
    "read_junit",
    "run_in_vm",
    "suite_in_vm",
]


@dataclass
class CaseResult:
    outcome: str
    """passed, failed, error or skipped."""
    message: str = ""
    seconds: float = 0.0


def read_junit(path: Path) -> dict[str, CaseResult]:
    """Test name (function name, parameters included) -> outcome, from pytest's junit XML."""
    results: dict[str, CaseResult] = {}
    if not path.exists():
        return results
    for case in ET.parse(path).getroot().iter("testcase"):
        name = case.get("name", "")
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                outcome = {"failure": "failed"}.get(tag, tag)
                message = (node.get("message") or "") + "\n" + (node.text or "")
                break
        results[name] = CaseResult(outcome, message.strip(), float(case.get("time", "0") or 0))
    return results


SuiteRun = tuple[VmRun, dict[str, CaseResult]]


def suite_in_vm(
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    suite: str,
    *,
    env: dict[str, str],
    timeout: float,
) -> SuiteRun:
    """Run the in-VM pytest ``suite`` once per test run and read each result back.

    Under pytest-xdist every worker has its own session: the first to get here
    boots, the others wait on the lock and read the same results.  A second
    lock, common to every suite, lets one VM run at a time: two TCG guests on a
    2-core machine would each run at half speed and both miss their budget.
    Without qemu, the Debian kernel or virtme-ng the caller skips locally and
    fails under CI (``CI`` set): a skip there would hide a broken VM set-up.
    """
    missing = missing_tools()
    if missing:
        message = f"kernel tests need: {', '.join(missing)}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    shared = root / name
    shared.mkdir(exist_ok=True)
    out = shared / "out"
    with (shared / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = shared / "run.json"
        if not done.exists():
            with (root / "vm-boot.lock").open("w") as boot:
                fcntl.flock(boot, fcntl.LOCK_EX)
                run = run_in_vm(
                    [".venv/bin/python", "-m", "pytest", suite, "-p", "no:cacheprovider", "-q",
                     "-p", "no:xdist", "-o", "addopts=", f"--junitxml={out}/junit.xml"],
                    out,
                    env={**env, "LIFELINE_IN_VM": "1"},
                    timeout=timeout,
                )  # fmt: skip
            keep = Path(os.environ.get("LIFELINE_VM_KEEP", str(out)))
            (keep / "vm-console.txt").write_text(run.output)
            done.write_text(
                json.dumps({"returncode": run.returncode, "seconds": run.seconds, "output": run.output})
            )
    saved = json.loads(done.read_text())
    run = VmRun(saved["returncode"], saved["seconds"], saved["output"], out)
    results = read_junit(out / "junit.xml")
    if not results:
        pytest.fail(
            f"no results from the VM (exit {run.returncode}, {run.seconds:.0f} s):\n{run.output[-6000:]}"
        )
    return run, results


def assert_passed_in_vm(run: SuiteRun, name: str, logs: str = "") -> None:
    """One in-VM test's verdict as the host test's own: passed, skipped (with its reason) or failed."""
    vm, results = run
    result = results.get(name)
    if result is None:
        pytest.fail(f"{name} did not run in the VM (stopped early?):\n{vm.output[-3000:]}")
    if result.outcome == "skipped":
        pytest.skip(result.message)
    assert result.outcome == "passed", f"{result.message}\n{logs or vm.output[-3000:]}"
