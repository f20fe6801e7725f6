"""Host side of the vrrp kernel tests: boot the VM once, run ``tests/kernel/vrrp_inside``, assert each result.

Why a VM: the host kernel has no ipvlan, and ``use_ipvlan`` is only proven
against the real driver, with the real keepalived 2.2.7 as the peer.  Why a
boot of its own (not the LVS suite's): a cold Python service costs ~20 s
under TCG emulation and that boot has its own time budget.  The two boots
never overlap (``suite_in_vm``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.vm import SuiteRun, assert_passed_in_vm, suite_in_vm

INSIDE = Path(__file__).parent / "vrrp_inside"
NAMES = sorted(
    {m for f in INSIDE.glob("test_*.py") for m in re.findall(r"^def (test_\w+)", f.read_text(), re.M)}
)


@pytest.fixture(scope="session")
def vrrp_vm_run(tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    return suite_in_vm(tmp_path_factory, "vrrp-kernel-vm", "tests/kernel/vrrp_inside", env={}, timeout=540)


# The first test waits for the boot (~3 min), and for the LVS suite's boot if that one runs first.
@pytest.mark.timeout(1500)
@pytest.mark.parametrize("name", NAMES)
def test_vrrp_in_vm(vrrp_vm_run: SuiteRun, name: str) -> None:
    assert_passed_in_vm(vrrp_vm_run, name)
