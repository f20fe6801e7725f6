"""HTTP_GET and SSL_GET: one fresh connection per url, all urls must pass.

The request is keepalived's: ``GET path HTTP/1.x``, ``User-Agent: KeepAliveClient``
and a ``Host:`` header (url virtualhost, else the checker's, else the address,
with ``:port`` unless it is the scheme's default port); ``1.0C`` and ``1.1`` add
``Connection: close``.  A url passes when the status is in one of its ranges,
the MD5 of the body equals ``digest`` (if set) and ``regex`` matches (or, with
``regex_no_match``, does not).  The body is only read when digest or regex needs
it.  ``enable_sni`` sends ``sni_name``, else the virtualhost, as SNI.

``regex`` is keepalived 2.2.7's (``check_regex``): a PCRE2 pattern
(``probes/pcre.py``) searched in the *whole response*, status line and headers
included (2.2.7 hands its receive buffer to PCRE2 from the first byte on:
observed, a pattern found only in a ``Server:`` header passes), with
``regex_options`` as PCRE2 compile options, ``regex_min_offset``/
``regex_max_offset`` bounding where the match may start (counted from the
first byte of the response, max inclusive) and ``regex_stack START MAX`` as the
JIT stack.  keepalived matches 4 KiB receive buffers one after the other
(partial matching carries a match across); here the response is matched at
once, so ``^`` means the start of the response, not of a buffer.

SSL_GET's context is keepalived 2.2.7's (``check_ssl.c``): the root ``SSL``
block's ``certificate``/``key``/``password`` are the client certificate, and
``ca`` is loaded into the context, but the server's certificate is never
verified: 2.2.7 sets no ``SSL_VERIFY_PEER`` and never asks for the verification
result, so an SSL_GET whose server presents a certificate from another CA
passes (observed with keepalived 2.2.7 on Debian's kernel).  What ``ca`` does
change: a file that cannot be loaded stops keepalived's checker at start; here
``load_ssl`` raises at start and at every reload (``CheckerService`` then
refuses to start, or refuses the reload), so a wrong path is never silent.
The context is built at start and at each reload, as keepalived builds it
then, and shared by every probe.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import ssl

from services.checker.probes.base import (
    ProbeFailure,
    ProbeResult,
    SslFiles,
    Success,
    Target,
    measure,
    timeout_of,
)
from services.checker.probes.pcre import RegexError, compiled
from services.checker.probes.sockets import close_stream, family_of, open_stream
from shared.config.model_lvs import Checker, HttpGetCheck, HttpUrl, SslConfig, SslGetCheck

MAX_BODY = 16 * 1024 * 1024
MAX_HEADER = 64 * 1024


async def probe(check: Checker, target: Target) -> ProbeResult:
    return await measure(_check_urls(check, target))


async def _check_urls(check: Checker, target: Target) -> Success:
    if not isinstance(check, HttpGetCheck):
        raise ProbeFailure(f"not an HTTP checker: {type(check).__name__}")
    if target.port is None:
        raise ProbeFailure("no port to connect to")
    urls = check.urls or [HttpUrl(path="/")]
    tls = client_context(target.ssl) if isinstance(check, SslGetCheck) else None
    details = [await _check_url(check, url, target, tls) for url in urls]
    return Success("; ".join(details))


SslKey = tuple[str | None, str | None, str | None, str | None]
_CONTEXTS: dict[SslKey, ssl.SSLContext] = {}


def _ssl_key(config: SslConfig | SslFiles | None) -> SslKey:
    if config is None:
        return (None, None, None, None)
    return (config.ca, config.certificate, config.key, config.password)


def load_ssl(config: SslConfig | SslFiles | None) -> ssl.SSLContext:
    """Build keepalived's SSL_GET context now, reading every file it names (``OSError``/``SSLError`` if not).

    No certificate verification (see the module doc); the client certificate
    chain and key, with ``password`` as the key's passphrase; ``ca`` loaded.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if config is not None and config.certificate:
        ctx.load_cert_chain(config.certificate, config.key, config.password)
    if config is not None and config.ca:
        ctx.load_verify_locations(config.ca)
    _CONTEXTS[_ssl_key(config)] = ctx
    return ctx


def client_context(config: SslConfig | SslFiles | None) -> ssl.SSLContext:
    """The context ``load_ssl`` built for ``config`` at start or reload (built now if it never was)."""
    ctx = _CONTEXTS.get(_ssl_key(config))
    return ctx if ctx is not None else load_ssl(config)


def ssl_problem(config: SslConfig | None) -> str | None:
    """Why the ``SSL`` block cannot be used (keepalived: "SSL error : Cant load CA file..."), else None."""
    try:
        load_ssl(config)
    except (OSError, ssl.SSLError) as exc:
        names = (
            "" if config is None else f" (ca {config.ca}, certificate {config.certificate}, key {config.key})"
        )
        return f"SSL{names}: cannot load: {exc}"
    return None


def host_header(check: HttpGetCheck, url: HttpUrl, target: Target, tls: bool) -> str:
    vhost = url.virtualhost or check.virtualhost
    if vhost:
        return vhost
    host = f"[{target.host}]" if family_of(target.host) == socket.AF_INET6 else target.host
    default_port = 443 if tls else 80
    return host if target.port == default_port else f"{host}:{target.port}"


def build_request(check: HttpGetCheck, url: HttpUrl, host: str) -> bytes:
    version = "1.1" if check.http_protocol == "1.1" else "1.0"
    close = "Connection: close\r\n" if check.http_protocol in ("1.0C", "1.1") else ""
    return (
        f"GET {url.path or '/'} HTTP/{version}\r\nUser-Agent: KeepAliveClient\r\n{close}Host: {host}\r\n\r\n"
    ).encode("latin-1")


async def _check_url(check: HttpGetCheck, url: HttpUrl, target: Target, tls: ssl.SSLContext | None) -> str:
    assert target.port is not None
    timeout = timeout_of(check)
    sni = (check.sni_name or url.virtualhost or check.virtualhost) if check.enable_sni else None
    reader, writer = await open_stream(check, target.host, target.port, timeout, tls=tls, server_hostname=sni)
    try:
        writer.write(build_request(check, url, host_header(check, url, target, tls is not None)))
        async with asyncio.timeout(timeout):
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            status, headers = parse_head(head)
        if not any(lo <= status <= hi for lo, hi in url.status_codes):
            raise ProbeFailure(f"{url.path}: status {status}")
        if url.digest is None and url.regex is None:
            return f"{url.path}: {status}"
        body = await read_body(reader, headers, timeout)
        check_body(url, body, head)
        return f"{url.path}: {status}, {len(body)} bytes"
    finally:
        await close_stream(writer)


def parse_head(raw: bytes) -> tuple[int, dict[str, str]]:
    """Status code and lower-cased headers of the response."""
    if len(raw) > MAX_HEADER:
        raise ProbeFailure("response header too large")
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ProbeFailure(f"malformed status line {lines[0][:60]!r}")
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers


async def read_body(reader: asyncio.StreamReader, headers: dict[str, str], timeout: float) -> bytes:
    """The body by Content-Length, chunked encoding, or until the server closes."""
    async with asyncio.timeout(timeout):
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return await _read_chunked(reader)
        length = headers.get("content-length")
        if length is not None and length.isdigit():
            if int(length) > MAX_BODY:
                raise ProbeFailure("body too large")
            return await reader.readexactly(int(length))
        body = await reader.read(MAX_BODY + 1)
        while chunk := await reader.read(MAX_BODY + 1 - len(body)):
            body += chunk
        if len(body) > MAX_BODY:
            raise ProbeFailure("body too large")
        return body


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            return bytes(body)
        if len(body) + size > MAX_BODY:
            raise ProbeFailure("body too large")
        body += await reader.readexactly(size)
        await reader.readexactly(2)


def check_body(url: HttpUrl, body: bytes, head: bytes = b"") -> None:
    """Digest (of the body), then regex (in head + body); raises ``ProbeFailure`` naming what failed."""
    if url.digest is not None:
        got = hashlib.md5(body, usedforsecurity=False).hexdigest()
        if got != url.digest.lower():
            raise ProbeFailure(f"{url.path}: digest {got} != {url.digest.lower()}")
    if url.regex is not None:
        matched = regex_matches(url, head + body)
        if matched == url.regex_no_match:
            raise ProbeFailure(f"{url.path}: regex {'matched' if matched else 'did not match'}")


def regex_matches(url: HttpUrl, response: bytes) -> bool:
    """keepalived's test: a match starting in [regex_min_offset, regex_max_offset] of the response."""
    assert url.regex is not None
    try:
        pattern = compiled(url.regex, tuple(url.regex_options))
    except RegexError as exc:
        raise ProbeFailure(f"{url.path}: {exc}") from None
    stack = (
        url.regex_stack if len(url.regex_stack) == 2 and url.regex_stack[0] <= url.regex_stack[1] else None
    )
    start = pattern.search(response, url.regex_min_offset or 0, stack)
    if start is None:
        return False
    return url.regex_max_offset is None or start <= url.regex_max_offset
