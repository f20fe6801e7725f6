"""Fixtures of the script tests: a tree of reporting scripts, a nats-server that needs a password."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.lab.nats import NatsServer
from tests.scripts.support import ScriptTree, nats_with_password, script_tree


@pytest.fixture
def tree() -> Iterator[ScriptTree]:
    with script_tree() as made:
        yield made


@pytest.fixture
def server(tmp_path: Path) -> Iterator[NatsServer]:
    nats = nats_with_password(tmp_path / "nats")
    yield nats
    nats.kill()
