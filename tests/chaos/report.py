"""pytest plugin: the chaos scenarios' figures at the end of the run, whatever the outcome.

Each scenario records one line (``record_property("chaos", ...)``); pytest-xdist
carries test properties back to the controller, so the summary shows every
worker's figures in one place (registered in the root conftest, which the
controller loads).
"""

from __future__ import annotations

import pytest


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = [
        str(value)
        for reports in terminalreporter.stats.values()
        for report in reports
        for name, value in getattr(report, "user_properties", [])
        if name == "chaos" and getattr(report, "when", "") == "teardown"
    ]
    if lines:
        terminalreporter.section("chaos figures")
        for line in sorted(lines):
            terminalreporter.write_line(line)
