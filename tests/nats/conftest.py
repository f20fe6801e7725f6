"""Fixtures for bus tests against a real nats-server (see tests/support/nats.py and shared/lab/nats.py)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from nats.aio.client import Client

from shared.bus import connect
from shared.lab.nats import NatsServer


@pytest.fixture
def node() -> str:
    """A node name no other test uses, with a dot to exercise token encoding."""
    return f"node-{uuid.uuid4().hex[:8]}.test"


@pytest.fixture
async def nc(nats_server: NatsServer) -> AsyncIterator[Client]:
    client = await connect(nats_server.url, "pytest", reconnect_wait=0.1)
    try:
        yield client
    finally:
        await client.close()
