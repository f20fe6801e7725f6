"""The HTTP side: one request per connection, answered by the service's handlers, or an event stream.

Why asyncio's own server: the whole protocol needed is a request line, a few
headers to skip, and one response (``Connection: close``), which is what
health checkers, Prometheus, curl and EventSource speak; a framework would be
one more dependency in every image for that.  Limits keep a slow or hostile
client from holding memory: a request line and headers of 8 KiB at most,
read within 5 s.  Responses carry ``nosniff`` and a same-origin content
security policy: the page loads nothing from elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Final

from services.http.core.routes import Kind, Route, route
from services.http.core.sse import KEEPALIVE, frame

log = logging.getLogger("lifeline.http")

READ_TIMEOUT: Final = 5.0
MAX_HEAD: Final = 8192
KEEPALIVE_EVERY: Final = 15.0
"""Seconds between comment frames on an idle event stream."""
SUBSCRIBER_QUEUE: Final = 1024
"""Frames a slow event-stream client may fall behind before it is dropped (it reconnects and resyncs)."""

SECURITY_HEADERS: Final = (
    "X-Content-Type-Options: nosniff\r\n"
    "Content-Security-Policy: default-src 'self'; frame-ancestors 'none'\r\n"
    "Referrer-Policy: no-referrer\r\n"
)


@dataclass(frozen=True)
class Response:
    status: int
    content_type: str
    body: bytes


class Subscriber:
    """One event-stream client: frames queued for it; ``lagged`` once it fell too far behind."""

    def __init__(self, limit: int = SUBSCRIBER_QUEUE) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(limit)
        self.lagged = False

    def offer(self, data: bytes) -> None:
        try:
            self.queue.put_nowait(data)
        except asyncio.QueueFull:
            self.lagged = True


@dataclass
class Hub:
    """Every event-stream client; ``publish`` hands a frame to each without waiting for any."""

    subscribers: set[Subscriber] = field(default_factory=set)

    def publish(self, data: bytes) -> None:
        for sub in list(self.subscribers):
            sub.offer(data)


Respond = Callable[[Route], Awaitable[Response]]
"""The service's answer to a route (everything but the event stream)."""
Greeting = Callable[[], bytes]
"""The first frames of a new event stream (the whole state, so the client needs nothing else)."""


class HttpServer:
    """Routes requests to ``respond``, streams ``hub`` to ``/events`` clients."""

    def __init__(self, respond: Respond, greeting: Greeting, hub: Hub) -> None:
        self.respond = respond
        self.greeting = greeting
        self.hub = hub
        self.server: asyncio.Server | None = None
        self._streams: set[asyncio.StreamWriter] = set()

    async def start(self, host: str, port: int) -> None:
        self.server = await asyncio.start_server(self._handle, host, port, limit=MAX_HEAD)

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            for writer in list(self._streams):  # open event streams would keep wait_closed waiting
                writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 2.0)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            method, target = await asyncio.wait_for(_read_head(reader), READ_TIMEOUT)
            where = route(method, target)
            if where.kind == Kind.EVENTS:
                await self._stream(writer)
                return
            response = await self.respond(where)
            body = response.body if method != "HEAD" else b""
            writer.write(_head(response.status, response.content_type, len(response.body)) + body)
            await writer.drain()
        except BadRequest as exc:
            writer.write(_head(400, "text/plain; charset=utf-8", len(str(exc)) + 1) + f"{exc}\n".encode())
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:  # a bug of ours: the client gets a 500, the log the traceback, the server lives on
            log.exception("http: request failed")
            with contextlib.suppress(Exception):
                writer.write(_head(500, "text/plain; charset=utf-8", 22) + b"internal server error\n")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _stream(self, writer: asyncio.StreamWriter) -> None:
        """``text/event-stream`` until the client goes, falls too far behind, or the server closes."""
        sub = Subscriber()
        self.hub.subscribers.add(sub)
        self._streams.add(writer)
        try:
            head = (
                "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
                f"{SECURITY_HEADERS}Connection: close\r\n\r\n"
            )
            writer.write(head.encode() + self.greeting())
            await writer.drain()
            while not sub.lagged or not sub.queue.empty():
                try:
                    data = await asyncio.wait_for(sub.queue.get(), KEEPALIVE_EVERY)
                except TimeoutError:
                    data = KEEPALIVE
                writer.write(data)
                await writer.drain()
            log.info("event stream client fell %d frames behind: dropped (it reconnects)", SUBSCRIBER_QUEUE)
        finally:
            self.hub.subscribers.discard(sub)
            self._streams.discard(writer)


class BadRequest(Exception):
    """Not an HTTP request line: 400."""


async def _read_head(reader: asyncio.StreamReader) -> tuple[str, str]:
    try:
        line = (await reader.readline()).decode("latin-1")
        while (await reader.readline()) not in (b"\r\n", b"\n", b""):
            pass  # headers: nothing here depends on them
    except ValueError:  # a line longer than MAX_HEAD (StreamReader's limit)
        raise BadRequest(f"request line or header longer than {MAX_HEAD} bytes") from None
    parts = line.split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise BadRequest("bad request line")
    return parts[0], parts[1]


def _head(status: int, content_type: str, length: int) -> bytes:
    phrase = HTTPStatus(status).phrase
    return (
        f"HTTP/1.1 {status} {phrase}\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n"
        f"Cache-Control: no-store\r\n{SECURITY_HEADERS}Connection: close\r\n\r\n"
    ).encode()


def greeting_frames(status_json: str, retry_ms: int = 1000) -> bytes:
    """What a new stream starts with: reconnect within ``retry_ms``, then the whole state."""
    return frame(status_json, event="status", retry_ms=retry_ms)
