"""pytest fixtures for a real nats-server (the server itself is :class:`shared.lab.nats.NatsServer`).

Registered for every test by the root conftest (``pytest_plugins``):

- ``nats_server``: the session's shared server, restarted if a previous test
  left it stopped.  Tests share its stream and KV, so they use unique node names.
- ``nats_server_factory``: ``factory() -> NatsServer`` for a private server a
  test may stop, restart or kill at will; every one is killed at teardown.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shared.lab.nats import NatsServer


@pytest.fixture(scope="session")
def _nats_server_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path_factory.mktemp("nats"))
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def nats_server(_nats_server_session: NatsServer) -> NatsServer:
    """The session's nats-server, running (restarted if a previous test stopped it)."""
    _nats_server_session.start()
    return _nats_server_session


@pytest.fixture
def nats_server_factory(tmp_path: Path) -> Iterator[Callable[[], NatsServer]]:
    """Build private, started servers a test may stop and restart; all killed at teardown."""
    servers: list[NatsServer] = []

    def factory() -> NatsServer:
        server = NatsServer(
            tmp_path / f"nats{len(servers)}", name=f"lifeline-test-{os.getpid()}-{len(servers)}"
        )
        servers.append(server)
        server.start()
        return server

    try:
        yield factory
    finally:
        for server in servers:
            server.kill()
