"""Host side of the kernel suite: boot the VM once, run ``tests/kernel/inside``, assert each result.

Why this shape: the host kernel has no IPVS and a VM boot is expensive, so one
session fixture runs every in-VM test in a single boot and each host test
reports one in-VM test by name (the failure message and the daemons' logs come
back with it).  Without qemu, the Debian kernel or virtme-ng the tests skip
locally and fail under CI (``CI`` set): CI must run them, a skip there would
hide a broken VM set-up.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path

import pytest

from tests.support.vm import SuiteRun, assert_passed_in_vm, suite_in_vm

INSIDE = Path(__file__).parent / "inside"
NAMES = sorted(
    {m for f in INSIDE.glob("test_*.py") for m in re.findall(r"^def (test_\w+)", f.read_text(), re.M)},
    key=lambda n: next(
        f.read_text().index(f"def {n}(") for f in INSIDE.glob("test_*.py") if f"def {n}(" in f.read_text()
    ),
)
BUDGET, LIMIT = 300, 720
"""Seconds: the boot should take under BUDGET (a warning says when not); over LIMIT it is killed."""


@pytest.fixture(scope="session")
def vm_run(tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    base = tmp_path_factory.getbasetemp()
    out = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "lvs-kernel-vm" / "out"
    env = {"LIFELINE_VM_OUT": str(out)}  # where the in-VM suite leaves its logs and numbers
    return suite_in_vm(tmp_path_factory, "lvs-kernel-vm", "tests/kernel/inside", env=env, timeout=LIMIT)


def _logs(out: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text()[-2500:]}" for p in sorted(out.glob("*.log")))


# The first test waits for the boot (~5 min), and for the vrrp suite's boot if that one runs first.
@pytest.mark.timeout(1500)
@pytest.mark.parametrize("name", NAMES)
def test_in_vm(vm_run: SuiteRun, name: str) -> None:
    assert_passed_in_vm(vm_run, name, _logs(vm_run[0].outdir))


@pytest.mark.timeout(1500)
def test_vm_numbers_recorded(vm_run: SuiteRun) -> None:
    """The in-VM suite writes its measurements for bench/RESULTS-lvs.md; the whole boot stays cheap."""
    run, _ = vm_run
    numbers = json.loads((run.outdir / "kernel-results.json").read_text())
    assert "failure_to_removal_ms" in numbers
    if run.seconds > BUDGET:  # CI's -n 2 neighbours share the 2 cores TCG emulates on
        warnings.warn(f"the kernel suite took {run.seconds:.0f} s (budget {BUDGET} s)", stacklevel=1)
    assert run.seconds < LIMIT
