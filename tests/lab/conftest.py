"""Fixtures for the lab tests: the shared netns fixtures plus ready-made segments."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.lab.nats import NatsServer
from shared.lab.segment import Host, Segment
from tests.lab.test_vrrp_service import Lab
from tests.support.netns import netns_session

__all__ = ["netns_session"]


@pytest.fixture
def pair(netns_session: None) -> Iterator[list[Host]]:
    """Hosts a and b, each with an eth0 on one bridge; removed (with whatever runs inside) after the test."""
    with Segment(["a", "b"], observer=False) as segment:
        yield segment.hosts


@pytest.fixture
def trio(netns_session: None) -> Iterator[list[Host]]:
    """Hosts a, b and c on one bridge (unicast to several peers)."""
    with Segment(["a", "b", "c"], observer=False) as segment:
        yield segment.hosts


@pytest.fixture
def lab(pair: list[Host], tmp_path: Path, nats_server: NatsServer) -> Iterator[Lab]:
    """The vrrp service lab on ``pair`` (test_vrrp_service*.py, test_vrrp_groups.py); logs on failure."""
    lab = Lab(pair, tmp_path, nats_server)
    try:
        yield lab
    except BaseException:
        print(lab.logs())
        raise
    finally:
        lab.close()


@pytest.fixture
def lab3(trio: list[Host], tmp_path: Path, nats_server: NatsServer) -> Iterator[Lab]:
    """The vrrp service lab on ``trio`` (test_vrrp_three_node.py); logs in ``tmp_path``."""
    lab = Lab(trio, tmp_path, nats_server)
    try:
        yield lab
    finally:
        for proc in lab.procs:  # SIGKILL all first: one slow to be reaped must not leave the others running
            if proc.proc is not None and proc.proc.poll() is None:
                proc.proc.kill()
        lab.close()
