"""TCP_CHECK, HTTP_GET and SSL_GET against real servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import ssl
import subprocess
from pathlib import Path

import pytest

from services.checker.probes import run_probe
from services.checker.probes.base import Target
from shared.config.model_lvs import HttpGetCheck, HttpUrl, SslConfig, SslGetCheck, TcpCheck
from tests.checker.conftest import make
from tests.checker.servers import BODY, HttpServer, self_signed

MD5 = hashlib.md5(BODY, usedforsecurity=False).hexdigest()


async def test_tcp_open_port(http_server: HttpServer) -> None:
    check = make(TcpCheck, http_server.port)
    result = await run_probe(check, Target.of(check))
    assert result.ok, result.detail
    assert result.latency_ms >= 0


async def test_tcp_refused(closed_port: int) -> None:
    check = make(TcpCheck, closed_port)
    result = await run_probe(check, Target.of(check))
    assert not result.ok
    assert result.detail.startswith("ECONNREFUSED")


async def test_tcp_bindto_and_bind_port_are_the_source() -> None:
    seen: list[tuple[str, int]] = []

    async def handle(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        seen.append(w.get_extra_info("peername"))
        w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with __import__("socket").socket() as probe_port:
            probe_port.bind(("127.0.0.1", 0))
            source_port = probe_port.getsockname()[1]
        check = make(
            TcpCheck, port, bindto=ipaddress.ip_address("127.0.0.2"), bind_port=source_port, bind_if="lo"
        )
        result = await run_probe(check, Target.of(check))
        assert result.ok, result.detail
        await asyncio.sleep(0.05)
        assert seen == [("127.0.0.2", source_port)]
    finally:
        server.close()
        await server.wait_closed()


async def test_tcp_unknown_bind_if_fails_without_raising(http_server: HttpServer) -> None:
    check = make(TcpCheck, http_server.port, bind_if="nosuchif0")
    result = await run_probe(check, Target.of(check))
    assert not result.ok
    assert "ENODEV" in result.detail


HTTP_CASES = [
    ("status in default range", [HttpUrl(path="/ok")], True, "/ok: 200"),
    ("404 outside default range", [HttpUrl(path="/missing")], False, "status 404"),
    ("status list accepts 404", [HttpUrl(path="/missing", status_codes=((200, 200), (400, 404)))], True, ""),
    ("418 outside list", [HttpUrl(path="/teapot", status_codes=((400, 404),))], False, "status 418"),
    ("digest matches (content-length)", [HttpUrl(path="/ok", digest=MD5)], True, ""),
    ("digest matches (until close)", [HttpUrl(path="/eof", digest=MD5)], True, ""),
    ("digest matches (chunked)", [HttpUrl(path="/chunked", digest=MD5)], True, ""),
    ("digest differs", [HttpUrl(path="/ok", digest="0" * 32)], False, "digest"),
    ("regex matches", [HttpUrl(path="/ok", regex="lifel.ne")], True, ""),
    ("regex does not match", [HttpUrl(path="/ok", regex="^nope")], False, "did not match"),
    ("regex_no_match", [HttpUrl(path="/ok", regex="hello", regex_no_match=True)], False, "matched"),
    ("every url must pass", [HttpUrl(path="/ok"), HttpUrl(path="/missing")], False, "/missing"),
    # keepalived 2.2.7 searches the whole response, headers included (observed with a Server: header)
    ("regex finds a header", [HttpUrl(path="/ok", regex="^HTTP/1.0 200 X\r\nContent-Length: 15")], True, ""),
    (
        "deep regex hits the default JIT stack",
        [HttpUrl(path="/deep", regex="(a|b)*c")],
        False,
        "did not match",
    ),
    (
        "regex_stack makes room for it",
        [HttpUrl(path="/deep", regex="(a|b)*c", regex_stack=(32768, 16 << 20))],
        True,
        "",
    ),
]


@pytest.mark.parametrize(("name", "urls", "ok", "detail"), HTTP_CASES, ids=[c[0] for c in HTTP_CASES])
async def test_http_get(
    http_server: HttpServer, name: str, urls: list[HttpUrl], ok: bool, detail: str
) -> None:
    check = make(HttpGetCheck, http_server.port, urls=urls)
    result = await run_probe(check, Target.of(check))
    assert result.ok is ok, result.detail
    assert detail in result.detail


async def test_http_request_is_keepalived_shaped(http_server: HttpServer) -> None:
    check = make(HttpGetCheck, http_server.port, urls=[HttpUrl(path="/ok")], virtualhost="www.example.org")
    assert (await run_probe(check, Target.of(check))).ok
    assert http_server.requests == [
        b"GET /ok HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: www.example.org\r\n\r\n"
    ]


async def test_http_timeout_when_server_stalls(http_server: HttpServer) -> None:
    check = make(HttpGetCheck, http_server.port, urls=[HttpUrl(path="/stall")], connect_timeout=0.3)
    result = await run_probe(check, Target.of(check))
    assert not result.ok
    assert result.detail == "timeout"
    assert result.latency_ms < 5000  # generous: the point is that it ends


async def test_ssl_get_with_sni(https_server: HttpServer) -> None:
    check = make(
        SslGetCheck,
        https_server.port,
        urls=[HttpUrl(path="/ok", digest=MD5)],
        enable_sni=True,
        virtualhost="sni.example.org",
    )
    result = await run_probe(check, Target.of(check))
    assert result.ok, result.detail
    assert https_server.sni == ["sni.example.org"]
    assert b"Host: sni.example.org\r\n" in https_server.requests[0]


async def test_ssl_get_without_sni_and_status_failure(https_server: HttpServer) -> None:
    check = make(SslGetCheck, https_server.port, urls=[HttpUrl(path="/missing")], virtualhost="v.example")
    result = await run_probe(check, Target.of(check))
    assert not result.ok
    assert "status 404" in result.detail
    assert https_server.sni == [None]


async def test_ssl_get_against_plain_http_fails(http_server: HttpServer) -> None:
    check = make(SslGetCheck, http_server.port, urls=[HttpUrl(path="/ok")])
    result = await run_probe(check, Target.of(check))
    assert not result.ok


async def test_tcp_probe_marks_its_socket_with_fwmark(http_server: HttpServer) -> None:
    """The checker's ``fwmark`` is the socket's SO_MARK (what policy routing and nftables match)."""
    import socket

    from services.checker.probes.sockets import SO_MARK, make_socket

    check = make(TcpCheck, http_server.port, fwmark=7)
    with make_socket(socket.AF_INET, socket.SOCK_STREAM, check) as sock:
        assert sock.getsockopt(socket.SOL_SOCKET, SO_MARK) == 7
    result = await run_probe(check, Target.of(check))
    assert result.ok, result.detail


async def test_ssl_get_presents_the_ssl_blocks_client_certificate(tmp_path: Path) -> None:
    """The root ``SSL`` block's certificate, key and key password: a server that demands one gets it."""
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-days", "1", "-subj", "/CN=lifeline-client",
         "-passout", "pass:s3cret", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    server_ctx = self_signed(tmp_path)
    assert server_ctx is not None, "openssl made the client certificate, so it makes this one"
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    server_ctx.load_verify_locations(cert)
    server = await HttpServer().start(server_ctx)
    try:
        check = make(SslGetCheck, server.port, urls=[HttpUrl(path="/ok", digest=MD5)])
        config = SslConfig(certificate=str(cert), key=str(key), password="s3cret")
        result = await run_probe(check, Target.of(check, ssl=config))
        assert result.ok, result.detail
        refused = await run_probe(check, Target.of(check))  # no SSL block: no client certificate
        assert not refused.ok
    finally:
        await server.stop()
