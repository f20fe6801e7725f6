"""Fixtures for the lab tests: the shared netns fixtures plus ready-made segments."""

from __future__ import annotations

import pytest

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
