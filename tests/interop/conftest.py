"""Fixtures for the interop tests: the shared netns fixtures from tests/support."""

from tests.support.netns import netns_lab, netns_session

__all__ = ["netns_lab", "netns_session"]
