"""Fixtures the notifier's end-to-end tests share: a fresh nats-server per test and a client on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from shared.bus import connect
from shared.lab.nats import NatsServer


@pytest.fixture
async def server(nats_server_factory: Callable[[], NatsServer]) -> NatsServer:
    return nats_server_factory()


@pytest.fixture
async def nc(server: NatsServer) -> AsyncIterator[Any]:
    client = await connect(server.url, "test", reconnect_wait=0.1)
    yield client
    await client.close()
