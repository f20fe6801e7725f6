"""Replay every sync-group scenario in ``scenarios/groups/`` against the pure coordinator."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.vrrp.core.machine_types import State
from services.vrrp.core.sync_group import group_state
from tests.unit.vrrp.group_scenario import ScenarioError, replay_group

SCENARIOS = sorted((Path(__file__).parent / "scenarios" / "groups").glob("*.txt"))


def test_enough_group_scenarios() -> None:
    assert len(SCENARIOS) >= 10


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_group_scenario(path: Path) -> None:
    replay_group(path)


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        ([State.MASTER, State.MASTER], State.MASTER),
        ([State.MASTER, State.BACKUP], State.BACKUP),
        ([State.MASTER, State.FAULT], State.FAULT),
        ([State.INIT, State.INIT], State.INIT),
        ([State.BACKUP, State.INIT], State.BACKUP),
        ([State.STOPPED, State.MASTER], State.MASTER),
        ([State.STOPPED, State.STOPPED], State.STOPPED),
    ],
)
def test_group_state(states: list[State], expected: State) -> None:
    """FAULT wins, MASTER needs everyone, stopped members no longer count."""
    assert group_state(states) is expected


def test_group_runner_is_strict(tmp_path: Path) -> None:
    """A wrong expectation fails, or the scenarios prove nothing."""
    text = (SCENARIOS[0]).read_text().replace("expect group MASTER", "expect group FAULT", 1)
    bad = tmp_path / "bad.txt"
    bad.write_text(text)
    with pytest.raises(ScenarioError):
        replay_group(bad)
