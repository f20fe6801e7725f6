"""The http service against two real vrrp services in namespaces, on a real nats-server.

Two nodes (``pair``), each with its vrrp service (``tests.lab.test_vrrp_service.Lab``)
and its http service (``tests.support.http_service``): the health endpoints
follow the election (200 on the master, 503 on the backup, and the reverse on
``/backup``), flip when the master's link goes down, and the event stream
carries the transition as it happens.  A vrrp service killed as MASTER leaves
MASTER in the state bucket: its node's health check must still turn 503.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.lab.wait import wait_until
from tests.lab.test_vrrp_service import VIP4, Lab, has_vip, instance
from tests.support.http_service import HttpProc, SseReader

pytestmark = [pytest.mark.root, pytest.mark.timeout(90)]


@pytest.fixture
def https(lab: Lab, tmp_path: Path) -> Iterator[list[HttpProc]]:
    """An http service for each lab node (a and b), started once their vrrp services run."""
    procs: list[HttpProc] = []
    try:
        yield procs
    except BaseException:
        for p in procs:
            print(f"--- http {p.node}\n{p.log()}")
        raise
    finally:
        for p in procs:
            p.stop()


def start_pair(lab: Lab, https: list[HttpProc], tmp_path: Path) -> tuple[HttpProc, HttpProc]:
    a, b = lab.hosts
    conf_a, conf_b = instance(150), instance(100)
    lab.master_then_backup(conf_a, conf_b)
    for host, conf in ((a, conf_a), (b, conf_b)):
        https.append(HttpProc(tmp_path, lab.node(host), conf, lab.server.url))
    return https[0], https[1]


def test_health_follows_the_election_and_flips_on_failover(
    lab: Lab, https: list[HttpProc], tmp_path: Path
) -> None:
    a, b = lab.hosts
    ha, hb = start_pair(lab, https, tmp_path)
    wait_until("a's /health to say master", lambda: ha.health("VI_1"), 10, expect=200, explain=ha.log)
    wait_until("b's /health/backup to say backup", lambda: hb.health("VI_1", backup=True), 10, expect=200)
    assert hb.health("VI_1") == 503 and ha.health("VI_1", backup=True) == 503
    body = ha.get("/health/VI_1").json()
    assert body["state"] == "MASTER" and body["vips"] == [f"{VIP4}/32"] and body["effective_priority"] == 150
    assert ha.get("/health/NOPE").status == 404 and ha.get("/health/NOPE/backup").status == 404
    assert ha.get("/health/VI_1", method="HEAD").body == b""

    events = SseReader(hb.port)
    try:
        wait_until("the stream's first frame", lambda: events.events, 5)
        assert b"text/event-stream" in events.head
        first = events.events[0]
        assert first.event == "status" and {lab.node(a), lab.node(b)} <= set(first.json()["nodes"])

        cut = time.monotonic()
        a.ip("link", "set", "eth0", "down")
        took = wait_until("b's /health to say master", lambda: hb.health("VI_1"), 10, expect=200)
        wait_until("a's /health to say not master", lambda: ha.health("VI_1"), 5, expect=503)
        assert has_vip(b, VIP4)

        def master_frame() -> float | None:
            for e in events.events:
                if (
                    e.event == "entry"
                    and e.json()["node"] == lab.node(b)
                    and e.json()["event"]["state"] == "MASTER"
                ):
                    return e.at
            return None

        wait_until("the stream to carry b's MASTER", master_frame, 5)
        streamed = (master_frame() or 0) - cut
        transitions = [e.json() for e in events.events if e.event == "transition"]
        assert any(t["node"] == lab.node(b) and t["state"] == "MASTER" for t in transitions), transitions
        print(f"\nlink cut -> b's /health 200: {took:.3f} s; -> MASTER on b's /events: {streamed:.3f} s")
    finally:
        events.close()

    view = hb.get("/status").json()
    rows = {(r["node"], r["kind"], r["name"]): r for r in view["entries"]}
    assert rows[(lab.node(b), "instance", "VI_1")]["event"]["state"] == "MASTER"
    assert rows[(lab.node(a), "instance", "VI_1")]["event"]["state"] == "FAULT"
    assert {(r["node"], r["service"]) for r in view["replicas"]} >= {
        (lab.node(b), "vrrp"),
        (lab.node(b), "http"),
    }
    assert view["transitions"][0]["node"] in (lab.node(a), lab.node(b))
    metrics = hb.get("/metrics")
    assert metrics.status == 200 and b'keepalived_vrrp_state{iname="VI_1"' in metrics.body
    assert b"lifeline_bus_up 1" in metrics.body and b"keepalived_up 1" in metrics.body


def test_a_master_that_died_is_not_healthy(lab: Lab, https: list[HttpProc], tmp_path: Path) -> None:
    """kill -9 leaves MASTER in the bucket: the node's http service must stop vouching for it."""
    ha, hb = start_pair(lab, https, tmp_path)
    wait_until("a's /health to say master", lambda: ha.health("VI_1"), 10, expect=200, explain=ha.log)
    pa = lab.procs[0]
    assert pa.proc is not None
    os.kill(pa.proc.pid, signal.SIGKILL)
    took = wait_until("a's /health to say 503", lambda: ha.health("VI_1"), 10, expect=503)
    assert "does not answer" in ha.get("/health/VI_1").json()["reason"]
    wait_until("b's /health to say master", lambda: hb.health("VI_1"), 10, expect=200)
    print(f"\nvrrp killed on a -> a's /health 503 after {took:.3f} s")
