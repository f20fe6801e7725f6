"""The webhook sink against a tiny HTTP/1.1 server running in the test."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from services.notifier.sinks.base import DeliveryContext, DeliveryError
from services.notifier.sinks.webhook import WebhookSink
from shared.events import InstanceState, VrrpState, decode


@dataclass
class Server:
    port: int
    status: int = 200
    delay: float = 0.0
    requests: list[tuple[bytes, dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
async def http() -> AsyncIterator[Server]:
    state = Server(port=0)

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        request_line = (await r.readuntil(b"\r\n")).rstrip()
        headers: dict[str, str] = {}
        while (line := await r.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await r.readexactly(int(headers.get("content-length", "0")))
        state.requests.append((request_line, headers, body))
        await asyncio.sleep(state.delay)
        w.write(f"HTTP/1.1 {state.status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".encode())
        await w.drain()
        w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        server.close()
        await server.wait_closed()


def event() -> InstanceState:
    return InstanceState(
        instance="VI_1", vrid=51, interface="eth0", state=VrrpState.BACKUP, base_priority=100,
        effective_priority=100, node="n1", seq=9, boot_id="boot1",
    )  # fmt: skip


async def test_posts_the_bus_json_with_idempotency_key(http: Server) -> None:
    sink = WebhookSink(f"http://127.0.0.1:{http.port}/hook?x=1", headers={"Authorization": "Bearer t"})
    await sink.deliver(event(), DeliveryContext(attempt=2))
    [(line, headers, body)] = http.requests
    assert line == b"POST /hook?x=1 HTTP/1.1"
    assert headers["content-type"] == "application/json"
    assert headers["idempotency-key"] == "boot1:9"
    assert headers["x-lifeline-attempt"] == "2"
    assert headers["authorization"] == "Bearer t"
    assert headers["host"] == f"127.0.0.1:{http.port}"
    assert decode(body) == event()


@pytest.mark.parametrize(("status", "retryable"), [(503, True), (429, True), (400, False), (301, False)])
async def test_status_codes(http: Server, status: int, retryable: bool) -> None:
    http.status = status
    with pytest.raises(DeliveryError) as err:
        await WebhookSink(f"http://127.0.0.1:{http.port}/").deliver(event(), DeliveryContext())
    assert err.value.retryable is retryable
    assert str(status) in str(err.value)


async def test_timeout_and_refused_are_retryable(http: Server) -> None:
    http.delay = 2.0
    with pytest.raises(DeliveryError) as err:
        await WebhookSink(f"http://127.0.0.1:{http.port}/", timeout=0.2).deliver(event(), DeliveryContext())
    assert err.value.retryable
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    with pytest.raises(DeliveryError) as err:
        await WebhookSink(f"http://127.0.0.1:{port}/").deliver(event(), DeliveryContext())
    assert err.value.retryable


def test_rejects_bad_urls() -> None:
    with pytest.raises(ValueError):
        WebhookSink("ftp://example.net/")


async def test_url_credentials_are_sent_as_basic_auth(http: Server) -> None:
    """``https://user:pw@host/``: sent, not dropped (percent-encoding decoded, as curl does)."""
    await WebhookSink(f"http://hook%40ops:p%3Aw@127.0.0.1:{http.port}/hook").deliver(
        event(), DeliveryContext()
    )
    [(line, headers, _body)] = http.requests
    assert line == b"POST /hook HTTP/1.1"
    assert headers["authorization"] == "Basic " + base64.b64encode(b"hook@ops:p:w").decode()
    assert headers["host"] == f"127.0.0.1:{http.port}"  # never the userinfo


async def test_a_configured_authorization_header_wins_over_url_credentials(http: Server) -> None:
    sink = WebhookSink(f"http://u:p@127.0.0.1:{http.port}/", headers={"authorization": "Bearer t"})
    await sink.deliver(event(), DeliveryContext())
    assert http.requests[0][1]["authorization"] == "Bearer t"


async def test_the_proxy_of_the_environment_is_used(http: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP_PROXY (and HTTPS_PROXY for https:// URLs, NO_PROXY): the request goes to the proxy."""
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{http.port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    await WebhookSink("http://hooks.example.invalid:8080/hook").deliver(event(), DeliveryContext())
    [(line, _headers, body)] = http.requests
    assert line == b"POST http://hooks.example.invalid:8080/hook HTTP/1.1"
    assert decode(body) == event()
