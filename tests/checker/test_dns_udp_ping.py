"""DNS_CHECK, UDP_CHECK and PING_CHECK against real sockets on 127.0.0.1."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

import pytest

from services.checker.probes import run_probe
from services.checker.probes.base import Target
from shared.config.model_lvs import DnsCheck, PingCheck, UdpCheck
from tests.checker.conftest import make
from tests.checker.servers import DnsResponder, UdpEcho, udp_server

DNS_CASES = [
    ("answer", {}, True, "NOERROR, 1 answer"),
    ("nxdomain", {}, False, "RCODE NXDOMAIN"),
    ("empty", {}, False, "no answer records"),
    ("stale-id-first", {}, True, "NOERROR"),
    ("mute", {"connect_timeout": 0.3}, False, "timeout"),
]


@pytest.mark.parametrize(("mode", "extra", "ok", "detail"), DNS_CASES, ids=[c[0] for c in DNS_CASES])
async def test_dns(mode: str, extra: dict[str, object], ok: bool, detail: str) -> None:
    responder = DnsResponder(mode)
    transport, port = await udp_server(responder)
    try:
        check = make(DnsCheck, port, type="A", name="www.example.org", **extra)
        result = await run_probe(check, Target.of(check))
        assert result.ok is ok, result.detail
        assert detail in result.detail
        assert responder.queries[0][12:] == b"\x03www\x07example\x03org\x00\x00\x01\x00\x01"
    finally:
        transport.close()


async def test_dns_default_query_is_soa_of_root() -> None:
    responder = DnsResponder("answer")
    transport, port = await udp_server(responder)
    try:
        check = make(DnsCheck, port)
        assert (await run_probe(check, Target.of(check))).ok
        assert responder.queries[0][12:] == b"\x00\x00\x06\x00\x01"
    finally:
        transport.close()


async def test_dns_closed_port_is_refused(closed_port: int) -> None:
    check = make(DnsCheck, closed_port)
    result = await run_probe(check, Target.of(check))
    assert not result.ok
    assert result.detail.startswith("ECONNREFUSED")


UDP_CASES = [
    # name, server reply (None: echo; b"MUTE": silent), checker fields, ok, detail
    ("echo, no require_reply", None, {}, True, "reply of"),
    ("echo, require_reply", None, {"require_reply": True}, True, "reply of 3 bytes"),
    ("pattern with wildcard", b"\x01\x2a\x03", {"require_reply": True, "reply_pattern": "01xa"}, True, ""),
    (
        "pattern mismatch",
        b"\x02\x2a",
        {"require_reply": True, "reply_pattern": "01"},
        False,
        "does not match",
    ),
    ("reply too long", None, {"require_reply": True, "max_reply_length": 2}, False, "outside"),
    ("reply too short", None, {"require_reply": True, "min_reply_length": 4}, False, "outside"),
    ("mute, no require_reply", b"MUTE", {"connect_timeout": 0.3}, True, "no reply and no ICMP error"),
    ("mute, require_reply", b"MUTE", {"connect_timeout": 0.3, "require_reply": True}, False, "timeout"),
]


@pytest.mark.parametrize(
    ("name", "reply", "fields", "ok", "detail"), UDP_CASES, ids=[c[0] for c in UDP_CASES]
)
async def test_udp(name: str, reply: bytes | None, fields: dict[str, object], ok: bool, detail: str) -> None:
    transport, port = await udp_server(UdpEcho(reply=reply, mute=reply == b"MUTE"))
    try:
        check = make(UdpCheck, port, payload=b"\x01\x02\x03", **fields)
        result = await run_probe(check, Target.of(check))
        assert result.ok is ok, result.detail
        assert detail in result.detail
    finally:
        transport.close()


@pytest.mark.parametrize("require_reply", [False, True])
async def test_udp_closed_port_fails_on_icmp_unreachable(closed_port: int, require_reply: bool) -> None:
    check = make(UdpCheck, closed_port, require_reply=require_reply, connect_timeout=2.0)
    result = await run_probe(check, Target.of(check))
    assert not result.ok
    assert result.detail.startswith("ECONNREFUSED")
    assert result.latency_ms < 1500  # the ICMP error ends the wait, not the timeout


async def test_ping_localhost() -> None:
    check = make(PingCheck, None)
    result = await run_probe(check, Target.of(check))
    assert result.ok, result.detail


async def test_ping_ipv6_localhost() -> None:
    if not socket.has_ipv6 or not Path("/proc/net/if_inet6").exists():
        pytest.skip("no IPv6 on this host")
    check = make(PingCheck, None, connect_ip=ipaddress.ip_address("::1"))
    result = await run_probe(check, Target.of(check))
    assert result.ok, result.detail


async def test_ping_unanswered_fails() -> None:
    """Forced out of ``lo`` (bind_if), a packet for a non-local address is dropped: no reply, ever."""
    check = make(
        PingCheck, None, connect_ip=ipaddress.ip_address("198.51.100.1"), bind_if="lo", connect_timeout=0.3
    )
    result = await run_probe(check, Target.of(check))
    assert not result.ok
    assert result.detail == "timeout"
