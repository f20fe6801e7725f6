"""Fixtures for the migration tests: the shared netns fixture from tests/support."""

from tests.support.netns import netns_session

__all__ = ["netns_session"]
