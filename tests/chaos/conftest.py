"""Fixtures for the chaos suite: the shared netns fixture and an unstarted :class:`ChaosLab` per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.chaos.lab import ChaosLab, Figures, chaos_lab
from tests.support.netns import netns_session

__all__ = ["netns_session"]


@pytest.fixture
def chaos(
    netns_session: None, request: pytest.FixtureRequest, record_property: Callable[[str, object], None]
) -> Iterator[ChaosLab]:
    """Two ``lifeline up`` nodes on a fresh segment (the test calls ``start``); its figures printed."""
    figures = Figures(request.node.name)
    with chaos_lab(figures, record_property) as lab:
        yield lab
