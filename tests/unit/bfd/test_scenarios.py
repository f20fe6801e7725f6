"""Replay every scenario file in ``scenarios/`` against the pure BFD session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.bfd.scenario import ScenarioError, replay

SCENARIOS = sorted((Path(__file__).parent / "scenarios").glob("*.txt"))


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario(path: Path) -> None:
    replay(path)


BASE = "@0 start\n@0 expect send state=down your=0 tx=1000\n"


@pytest.mark.parametrize(
    ("tail", "message"),
    [
        ("@1.01 expect send state=down\n", "expected @1.01"),
        ("@2 quiet\n", "unexpected action"),
        ("@1 expect send state=up\n", "got"),
        ("@1 expect send state=down\n@1.5 recv state=Init my=7 your=1\n", "unexpected action at end"),
        ("@1 expect state up\n", "got"),
    ],
)
def test_runner_rejects_mismatches(tmp_path: Path, tail: str, message: str) -> None:
    """The runner itself must be strict, or every scenario proves nothing."""
    path = tmp_path / "bad.txt"
    path.write_text(BASE + tail)
    with pytest.raises(ScenarioError, match=message):
        replay(path)
