"""The pure parts of the probes: wire formats and verdicts, without sockets."""

from __future__ import annotations

import struct

import pytest

from services.checker.probes import PROBES, dns, file, http, misc, ping, udp
from services.checker.probes.base import ProbeFailure, Target
from shared.config.model_lvs import FileCheck, HttpGetCheck, HttpUrl, MiscCheck, TcpCheck, UdpCheck


def test_registry_covers_every_probe_kind() -> None:
    assert set(PROBES) == {
        "TCP_CHECK", "HTTP_GET", "SSL_GET", "SMTP_CHECK", "DNS_CHECK",
        "UDP_CHECK", "PING_CHECK", "MISC_CHECK", "FILE_CHECK",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("name", "wire"),
    [
        (".", b"\x00"),
        ("example.org", b"\x07example\x03org\x00"),
        ("example.org.", b"\x07example\x03org\x00"),
    ],
)
def test_dns_name_encoding(name: str, wire: bytes) -> None:
    assert dns.encode_name(name) == wire


def test_dns_query_layout() -> None:
    q = dns.build_query(0x1234, ".", "SOA")
    assert q == struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + b"\x00" + struct.pack("!HH", 6, 1)


def _reply(query: bytes, *, flags: int = 0x8180, ancount: int = 1, question: bytes | None = None) -> bytes:
    qid = query[:2]
    return qid + struct.pack("!HHHHH", flags, 1, ancount, 0, 0) + (question or query[12:]) + b"\xc0\x0c"


@pytest.mark.parametrize(
    ("reply_kw", "error"),
    [
        ({}, None),
        ({"flags": 0x8183}, "RCODE NXDOMAIN"),
        ({"flags": 0x8182}, "RCODE SERVFAIL"),
        ({"flags": 0x0100}, "not a response"),
        ({"ancount": 0}, "no answer records"),
        ({"question": dns.encode_name("other.org") + struct.pack("!HH", 1, 1)}, "question section"),
    ],
)
def test_dns_reply_verdicts(reply_kw: dict[str, object], error: str | None) -> None:
    query = dns.build_query(7, "example.org", "A")
    reply = _reply(query, **reply_kw)  # type: ignore[arg-type]
    if error is None:
        assert dns.check_reply(reply, query).startswith("NOERROR")
    else:
        with pytest.raises(ProbeFailure, match=error):
            dns.check_reply(reply, query)


def test_dns_question_case_insensitive() -> None:
    query = dns.build_query(7, "Example.ORG", "A")
    assert dns.check_reply(_reply(query, question=query[12:].lower()), query)


@pytest.mark.parametrize(
    ("pattern", "reply", "ok"),
    [
        ("0102", b"\x01\x02", True),
        ("0102", b"\x01\x03", False),
        ("01x2", b"\x01\xf2", True),
        ("01X2", b"\x01\xf3", False),
        ("010203", b"\x01\x02", True),  # compared up to the shorter length
        ("01", b"\x01\x02\x03", True),
    ],
)
def test_udp_reply_pattern(pattern: str, reply: bytes, ok: bool) -> None:
    assert udp.pattern_matches(pattern, reply) is ok


def test_udp_reply_length_bounds() -> None:
    check = UdpCheck(require_reply=True, min_reply_length=2, max_reply_length=3)
    assert udp.check_reply(check, b"ab")
    with pytest.raises(ProbeFailure, match="outside"):
        udp.check_reply(check, b"abcd")
    with pytest.raises(ProbeFailure, match="outside"):
        udp.check_reply(check, b"a")


def test_http_request_and_host_header() -> None:
    check = HttpGetCheck(http_protocol="1.1")
    url = HttpUrl(path="/health")
    target = Target("10.0.0.2", 8080)
    assert http.build_request(check, url, http.host_header(check, url, target, tls=False)) == (
        b"GET /health HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\n"
        b"Host: 10.0.0.2:8080\r\n\r\n"
    )
    assert http.host_header(check, url, Target("10.0.0.2", 80), tls=False) == "10.0.0.2"
    assert http.host_header(check, url, Target("::1", 443), tls=True) == "[::1]"
    vhost = HttpGetCheck(virtualhost="www.example.org")
    assert http.host_header(vhost, url, target, tls=False) == "www.example.org"
    assert (
        http.host_header(vhost, HttpUrl(path="/", virtualhost="u.example"), target, tls=False) == "u.example"
    )
    assert b"HTTP/1.0\r\n" in http.build_request(HttpGetCheck(), url, "h")
    assert b"Connection: close" not in http.build_request(HttpGetCheck(), url, "h")
    assert b"Connection: close" in http.build_request(HttpGetCheck(http_protocol="1.0C"), url, "h")


@pytest.mark.parametrize(
    ("url", "body", "ok"),
    [
        (HttpUrl(path="/", regex="ok"), b"all ok", True),
        (HttpUrl(path="/", regex="ok"), b"all fine", False),
        (HttpUrl(path="/", regex="ok", regex_no_match=True), b"all ok", False),
        (HttpUrl(path="/", regex="OK", regex_options=("caseless",)), b"all ok", True),
        (HttpUrl(path="/", regex="ok", regex_min_offset=5), b"ok...ok", True),
        (HttpUrl(path="/", regex="ok", regex_min_offset=6), b"ok...ok", False),
        (HttpUrl(path="/", regex="ok", regex_max_offset=1), b"..ok", False),
        (HttpUrl(path="/", digest="5d41402abc4b2a76b9719d911017c592"), b"hello", True),
        (HttpUrl(path="/", digest="5D41402ABC4B2A76B9719D911017C592"), b"hello", True),
        (HttpUrl(path="/", digest="5d41402abc4b2a76b9719d911017c592"), b"hello!", False),
    ],
)
def test_http_body_checks(url: HttpUrl, body: bytes, ok: bool) -> None:
    if ok:
        http.check_body(url, body)
    else:
        with pytest.raises(ProbeFailure):
            http.check_body(url, body)


@pytest.mark.parametrize(
    ("dynamic", "status", "ok", "weight"),
    [
        (False, 0, True, None),
        (False, 1, False, None),
        (False, 5, False, None),
        (True, 0, True, None),
        (True, 1, False, None),
        (True, 2, True, 0),
        (True, 12, True, 10),
        (True, 255, True, 253),
        (True, -15, False, None),  # killed by SIGTERM
    ],
)
def test_misc_exit_status(dynamic: bool, status: int, ok: bool, weight: int | None) -> None:
    check = MiscCheck(misc_dynamic=dynamic)
    if ok:
        assert misc.verdict(check, status).weight == weight
    else:
        with pytest.raises(ProbeFailure):
            misc.verdict(check, status)


@pytest.mark.parametrize(
    ("weight", "reverse", "raw", "ok", "delta"),
    [
        (0, False, b"0\n", True, None),
        (0, False, b"3\n", False, None),
        (1, False, b"7", True, 7),
        (2, False, b"  -3 trailing", True, -6),
        (2, True, b"3", True, -6),
        (5, False, b"junk", True, 0),  # strtol: no number reads as 0
        (1, False, b"-2147483648", False, None),
    ],
)
def test_file_check_values(weight: int, reverse: bool, raw: bytes, ok: bool, delta: int | None) -> None:
    check = FileCheck(track_file="t", weight=weight, reverse=reverse)
    value = file.parse_value(raw)
    if ok:
        assert file.verdict(check, value).weight == delta
    else:
        with pytest.raises(ProbeFailure):
            file.verdict(check, value)


def test_icmp_echo_checksum_and_matching() -> None:
    import socket

    pkt = ping.build_echo(socket.AF_INET, 0x1111, 0x2222, b"token")
    assert ping.checksum(pkt) == 0  # a correct checksum sums to zero
    reply = bytes([0]) + pkt[1:]
    assert ping.is_our_reply(reply, socket.AF_INET, 0x1111, 0x2222, b"token")
    assert not ping.is_our_reply(pkt, socket.AF_INET, 0x1111, 0x2222, b"token")  # our own request
    assert not ping.is_our_reply(reply, socket.AF_INET, 0x9999, 0x2222, b"token")
    ip_header = bytes([0x45]) + bytes(19)
    assert ping.is_our_reply(ip_header + reply, socket.AF_INET, 0x1111, 0x2222, b"token")


def test_target_of_uses_resolved_connect_fields() -> None:
    import ipaddress

    check = TcpCheck(connect_ip=ipaddress.ip_address("10.1.2.3"), connect_port=99)
    assert Target.of(check) == Target("10.1.2.3", 99)
