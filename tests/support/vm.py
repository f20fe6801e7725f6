"""The host side of the in-VM test suite: boot (``shared.lab.vm``) and read back each in-VM result.

The boot machinery lives in ``shared/lab/vm.py`` because the in-VM benchmarks
use it too, and the benchmarks must not import the test tree.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from shared.lab.vm import VmRun, find_kernel, find_vng, missing_tools, run_in_vm

__all__ = ["CaseResult", "VmRun", "find_kernel", "find_vng", "missing_tools", "read_junit", "run_in_vm"]


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
