"""Replay every scenario file in ``scenarios/`` against the pure VRRP machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.vrrp.scenario import ScenarioError, replay

SCENARIOS = sorted((Path(__file__).parent / "scenarios").glob("*.txt"))


def test_enough_scenarios() -> None:
    """The conformance suite is the spec: keep it broad."""
    assert len(SCENARIOS) >= 60


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario(path: Path) -> None:
    replay(path)


BASE = """\
@0 start
@0 expect remove_vips
@0 expect state BACKUP reason=startup
"""


@pytest.mark.parametrize(
    ("tail", "message"),
    [
        ("@3.62 expect send_advert prio=100\n", "expected @3.62"),
        ("@4 quiet\n", "unexpected action"),
        ("@3.609375 expect send_advert prio=99\n", "got"),
        ("@3.609375 expect state MASTER reason=preempt\n", "got"),
        ("@3.609375 expect send_advert prio=100\n", "unexpected action at end"),
        ("@9 expect garp\n", "missing"),
    ],
)
def test_runner_rejects_mismatches(tmp_path: Path, tail: str, message: str) -> None:
    """The runner itself must be strict, or every scenario proves nothing."""
    path = tmp_path / "bad.txt"
    path.write_text(BASE + tail)
    with pytest.raises(ScenarioError, match=message):
        replay(path)
