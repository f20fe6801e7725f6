"""The http service as a process on a real nats-server, without VRRP: the protocol's edges, reloads, no bus.

What needs no namespace: the page's files and their headers, what a client
gets for a wrong method, a garbage request line or an unknown path; a SIGHUP
with a new keepalived.conf (an instance it adds is answered 503, no longer
404); and a service whose bus is not there: it listens anyway and every
``/health`` says 503 (the state is unknown), ``/metrics`` says ``lifeline_bus_up 0``.
The two-node failover is ``tests/lab/test_http_service.py``.
"""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from nats.aio.client import Client

from services.http.core.model import Model
from services.http.feed import Feed
from shared.events import (
    STATE_BUCKET,
    CheckerKind,
    RealServerHealth,
    check_subject,
    encode,
    kv_key_for_subject,
    real_server_key,
)
from shared.lab.nats import NatsServer, free_port
from shared.lab.wait import wait_until
from tests.lab.test_vrrp_service import instance
from tests.support.http_service import HttpProc

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def procs() -> Iterator[list[HttpProc]]:
    made: list[HttpProc] = []
    try:
        yield made
    except BaseException:
        for p in made:
            print(f"--- http {p.node}\n{p.log()}")
        raise
    finally:
        for p in made:
            p.stop()


def raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(request)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


def test_page_files_methods_and_bad_requests(
    nats_server: NatsServer, node: str, tmp_path: Path, procs: list[HttpProc]
) -> None:
    http = HttpProc(tmp_path, node, instance(100), nats_server.url)
    procs.append(http)
    page = http.get("/")
    assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
    assert b'src="/app.js"' in page.body and b"http://" not in page.body and b"https://" not in page.body
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert http.get("/app.js").headers["Content-Type"].startswith("text/javascript")
    assert http.get("/style.css").status == 200
    assert http.get("/status", method="POST").status == 405
    assert http.get("/nope").status == 404 and http.get("/static/app.js").status == 404
    head = http.get("/status", method="HEAD")
    assert head.status == 200 and head.body == b"" and int(head.headers["Content-Length"]) > 0
    assert raw(http.port, b"garbage\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert raw(http.port, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert raw(http.port, b"GET / HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert http.proc.poll() is None


def test_reload_makes_a_new_instance_known(
    nats_server: NatsServer, node: str, tmp_path: Path, procs: list[HttpProc]
) -> None:
    http = HttpProc(tmp_path, node, instance(100), nats_server.url)
    procs.append(http)
    assert http.get("/health/VI_2").status == 404
    wait_until("the bus", lambda: http.get("/status").json()["bus_up"], 10, explain=http.log)
    no_state = http.get("/health/VI_1")
    assert no_state.status == 503 and no_state.json()["reason"] == "no state published yet"
    http.conf.write_text(instance(100) + instance(100, name="VI_2", vrid=52))
    http.proc.send_signal(signal.SIGHUP)
    wait_until("VI_2 to be known", lambda: http.get("/health/VI_2").status, 10, expect=503, explain=http.log)
    assert http.get("/health/VI_2/backup").status == 503


def test_without_a_bus_it_listens_and_knows_nothing(node: str, tmp_path: Path, procs: list[HttpProc]) -> None:
    http = HttpProc(tmp_path, node, instance(100), f"nats://127.0.0.1:{free_port()}")
    procs.append(http)
    health = http.get("/health/VI_1")
    assert health.status == 503 and "not connected" in health.json()["reason"]
    assert http.get("/health/VI_1/backup").status == 503
    assert http.get("/status").json()["bus_up"] is False
    metrics = http.get("/metrics")
    assert metrics.status == 200 and b"lifeline_bus_up 0" in metrics.body


async def test_the_bucket_is_read_whole_past_a_thousand_keys(nc: Client, node: str) -> None:
    """A node of many real servers: more keys than one wildcard direct get may match (1024)."""
    kv = await nc.jetstream().key_value(STATE_BUCKET)
    reals = [real_server_key(f"10.0.{i // 250}.{i % 250 + 1}", 80) for i in range(1100)]
    for real in reals:
        event = RealServerHealth(
            node=node, ts=1, virtual="vs", real=real, up=True, checker=CheckerKind.TCP_CHECK
        )
        await kv.put(kv_key_for_subject(check_subject(node, "vs", real)), encode(event))
    feed = Feed(Model(), lambda _entry: None)
    await feed.snapshot(nc)
    mine = [e for e in feed.model.entries.values() if e.node == node and e.kind == "check"]
    assert len(mine) == len(reals)
