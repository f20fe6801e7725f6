"""Fixtures for probe tests: every server listens on 127.0.0.1 on a port the kernel picks."""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from shared.config.model_lvs import CheckBase
from tests.checker.servers import HttpServer, self_signed

C = TypeVar("C", bound=CheckBase)
LOCAL = ipaddress.ip_address("127.0.0.1")


def make(cls: type[C], port: int | None, **kw: Any) -> C:
    """A checker as the loader would leave it, aimed at 127.0.0.1 with a short timeout."""
    fields: dict[str, Any] = {"connect_ip": LOCAL, "connect_port": port, "connect_timeout": 1.0}
    return cls(**(fields | kw))


@pytest.fixture
async def http_server() -> AsyncIterator[HttpServer]:
    server = await HttpServer().start()
    yield server
    await server.stop()


@pytest.fixture(scope="session")
def tls_context(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    ctx = self_signed(tmp_path_factory.mktemp("tls"))
    if ctx is None:
        pytest.skip("no openssl CLI (and no cryptography package) to make a test certificate")
    return ctx


@pytest.fixture
async def https_server(tls_context: ssl.SSLContext) -> AsyncIterator[HttpServer]:
    server = await HttpServer().start(tls_context)
    yield server
    await server.stop()


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port nothing listens on (TCP and UDP): bound, read, closed."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    yield port


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    return tmp_path
