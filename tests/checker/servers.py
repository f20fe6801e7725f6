"""Tiny real servers on 127.0.0.1 for the probe tests: HTTP(S), DNS, UDP, a mute TCP peer."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

BODY = b"hello lifeline\n"
DEEP = b"ab" * 3000 + b"c"
"""A body ``(a|b)*c`` needs more than PCRE2's default JIT stack for (``regex_stack``)."""

ROUTES: dict[str, tuple[int, dict[str, str], bytes]] = {
    "/ok": (200, {"Content-Length": str(len(BODY))}, BODY),
    "/eof": (200, {}, BODY),  # no length: body ends when the server closes
    "/missing": (404, {"Content-Length": "0"}, b""),
    "/teapot": (418, {"Content-Length": "0"}, b""),
    "/deep": (200, {"Content-Length": str(len(DEEP))}, DEEP),
}


@dataclass
class HttpServer:
    """Answers ROUTES, ``/chunked`` with chunked encoding, and never answers ``/stall``."""

    requests: list[bytes] = field(default_factory=list)
    sni: list[str | None] = field(default_factory=list)
    port: int = 0
    server: asyncio.Server | None = None

    async def start(self, tls: ssl.SSLContext | None = None) -> HttpServer:
        if tls is not None:
            tls.sni_callback = lambda _sock, name, _ctx: self.sni.append(name)
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=tls)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.requests.append(head)
            path = head.split(b" ")[1].decode()
            if path == "/stall":
                await asyncio.sleep(30)
            elif path == "/chunked":
                writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                half = len(BODY) // 2
                for part in (BODY[:half], BODY[half:]):
                    writer.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                writer.write(b"0\r\n\r\n")
            else:
                status, headers, body = ROUTES.get(path, (404, {"Content-Length": "0"}, b""))
                lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
                writer.write(f"HTTP/1.0 {status} X\r\n{lines}\r\n".encode() + body)
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


def self_signed(tmp: Path) -> ssl.SSLContext | None:
    """A server context with a throwaway certificate from the openssl CLI (None without openssl)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=lifeline-test",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


class DnsResponder(asyncio.DatagramProtocol):
    """Answers every query per ``mode``: answer, nxdomain, empty, stale-id-first, mute."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.queries: list[bytes] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        assert self.transport is not None
        self.queries.append(data)
        qid, question = struct.unpack_from("!H", data)[0], data[12:]
        if self.mode == "mute":
            return
        rcode = 3 if self.mode == "nxdomain" else 0
        ancount = 0 if self.mode in ("nxdomain", "empty") else 1
        answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([127, 0, 0, 1]) if ancount else b""
        if self.mode == "stale-id-first":
            stale = struct.pack("!HHHHHH", qid ^ 0xFFFF, 0x8183, 1, 0, 0, 0) + question
            self.transport.sendto(stale, addr)
        reply = struct.pack("!HHHHHH", qid, 0x8180 | rcode, 1, ancount, 0, 0) + question + answer
        self.transport.sendto(reply, addr)


class UdpEcho(asyncio.DatagramProtocol):
    def __init__(self, reply: bytes | None = None, mute: bool = False) -> None:
        self.reply = reply
        self.mute = mute
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        assert self.transport is not None
        if not self.mute:
            self.transport.sendto(self.reply if self.reply is not None else data, addr)


async def udp_server(protocol: asyncio.DatagramProtocol) -> tuple[asyncio.DatagramTransport, int]:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: protocol, local_addr=("127.0.0.1", 0))
    return transport, transport.get_extra_info("sockname")[1]
