"""pytest fixture for tests that need network namespaces (the lab itself is :mod:`shared.lab`).

``netns_session``: once per session (and per xdist worker), check root, and
sweep the namespaces a crashed earlier run left behind (their pid is dead; a
live worker's are left alone).  Tests then build what they need with
:class:`shared.lab.segment.Segment` or :class:`shared.lab.netns.Lab`, which
delete everything they made (and kill every process inside) on exit.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from shared.lab.netns import TEST_PREFIX, remove_stale


@pytest.fixture(scope="session")
def netns_session() -> Iterator[None]:
    """Namespaces need CAP_SYS_ADMIN (say so plainly rather than fail in ``ip``); sweep a crashed run's."""
    if os.geteuid() != 0:
        pytest.fail("network-namespace tests need root (run them as root or in CI)")
    remove_stale(TEST_PREFIX)
    yield
