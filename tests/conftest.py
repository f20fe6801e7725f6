"""Root conftest: register shared fixture modules (add one line per module)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = ["tests.support.nats", "tests.chaos.report"]


@pytest.fixture(autouse=True)
def state_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test's own ``state_dir`` (``LIFELINE_STATE_DIR``): services it starts keep their outboxes there.

    Never the machine's /var/lib/lifeline: parallel tests reuse node names, and
    one test's leftover events would be replayed into another's stream.
    """
    path = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("LIFELINE_STATE_DIR", str(path))
    yield path
