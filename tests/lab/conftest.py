"""Fixtures for the lab tests: the shared netns fixtures plus ready-made segments."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.lab.nats import NatsServer
from tests.lab.test_vrrp_service import Lab
from tests.support.lab import LabHost, vrrp_segment
from tests.support.netns import NetnsLab, netns_lab, netns_session

__all__ = ["netns_lab", "netns_session"]


@pytest.fixture
def pair(netns_lab: NetnsLab) -> list[LabHost]:
    """Hosts a and b, each with an eth0 on one bridge; removed after the test."""
    return vrrp_segment(netns_lab, ["a", "b"])


@pytest.fixture
def trio(netns_lab: NetnsLab) -> list[LabHost]:
    """Hosts a, b and c on one bridge (unicast to several peers)."""
    return vrrp_segment(netns_lab, ["a", "b", "c"])


@pytest.fixture
def lab(pair: list[LabHost], tmp_path: Path, nats_server: NatsServer) -> Iterator[Lab]:
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
def lab3(trio: list[LabHost], tmp_path: Path, nats_server: NatsServer) -> Iterator[Lab]:
    """The vrrp service lab on ``trio`` (test_vrrp_three_node.py); logs in ``tmp_path``."""
    lab = Lab(trio, tmp_path, nats_server)
    try:
        yield lab
    finally:
        for proc in lab.procs:  # SIGKILL all first: one slow to be reaped must not leave the others running
            if proc.proc is not None and proc.proc.poll() is None:
                proc.proc.kill()
        lab.close()
