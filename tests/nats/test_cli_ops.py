"""Operator commands against a real nats-server: status, events, reload, health, metrics.

The commands run in a thread through ``shared.cli.main.main`` (the same path as the
console script), so what is asserted is what an operator sees on stdout.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Mapping, Sequence

import msgspec
import pytest
from nats.aio.client import Client
from nats.micro.service import Service as MicroService

from shared.bus import Publisher, register_service
from shared.cli.main import main
from shared.cli.metrics import serve
from shared.cli.metrics_collect import Collector
from shared.events import (
    EventBase,
    ReloadReply,
    TrackerKind,
    TrackerResult,
    VrrpState,
    encode_token,
)
from shared.lab.nats import NatsServer, free_port
from tests.nats.events_sample import every_event, instance

pytestmark = pytest.mark.nats

NS = 1_000_000_000


async def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def publish(node: str, events: Sequence[EventBase], nc: Client) -> Publisher:
    pub = Publisher(node)
    await pub.start(nc)
    for event in events:
        pub.publish(event)  # type: ignore[type-var]
    assert await pub.flush(10)
    return pub


@pytest.fixture
async def micro(nc: Client, node: str) -> AsyncIterator[list[MicroService]]:
    started: list[MicroService] = []
    yield started
    for svc in started:
        await svc.stop()


async def start_vrrp(nc: Client, node: str, micro: list[MicroService], reply: ReloadReply) -> None:
    async def status() -> Mapping[str, object]:
        return {
            "instances": {
                "VI_1": {
                    "state": "MASTER",
                    "vrid": 51,
                    "interface": "eth0",
                    "counters": {
                        "adverts_sent": 42,
                        "adverts_received": 7,
                        "transitions": 3,
                        "garps_sent": 5,
                    },
                }
            },
            "receivers": [{"interface": "eth0", "mode": "multicast 224.0.0.18", "drops": {"bad_ttl": 2}}],
        }

    async def reload(_body: bytes) -> ReloadReply:
        return reply

    micro.append(
        await register_service(nc, node=node, service="vrrp", version="9.9.0", status=status, reload=reload)
    )


def entries_of(view: dict[str, object], node: str) -> dict[str, dict[str, object]]:
    rows = view["entries"]
    assert isinstance(rows, list)
    return {f"{r['kind']} {r['name']}": r for r in rows if r["node"] == node}


async def test_status_json_shows_state_and_marks_old_entries_stale(
    nats_server: NatsServer, nc: Client, node: str, capsys: pytest.CaptureFixture[str]
) -> None:
    now = time.time_ns()
    events: list[EventBase] = [msgspec.structs.replace(e, ts=now) for e in every_event()]
    old_tracker = TrackerResult(tracker="old one", kind=TrackerKind.FILE, ok=True, ts=now - 600 * NS)
    await publish(node, [*events, old_tracker], nc)

    code, out, err = await run_cli(
        capsys, "status", "--json", "--nats", nats_server.url, "--stale-after", "60"
    )
    assert code == 1 and re.search(r"^lifeline: \d+ entries are stale", err)  # a script must see it
    view = json.loads(out)
    rows = entries_of(view, node)
    assert node in view["nodes"]
    assert rows["instance VI_1"]["state"] == "MASTER prio 100/100"
    assert rows["tracker chk haproxy.sh"]["state"] == "FAILED (-20)"
    assert rows["real 172.16.0.100:80/tcp 192.168.200.2:8080"]["state"] == "DOWN HTTP_GET"
    assert "QUORUM DOWN" in str(rows["pool fwmark:7"]["state"])
    assert rows["tracker old one"]["stale"] is True
    assert rows["tracker chk haproxy.sh"]["stale"] is False

    # A smaller threshold makes the fresh ones stale too (no service is running for them).
    await asyncio.sleep(1.1)
    code, out, _ = await run_cli(capsys, "status", "--json", "--nats", nats_server.url, "--stale-after", "1")
    assert all(r["stale"] for r in entries_of(json.loads(out), node).values())

    code, out, _ = await run_cli(capsys, "status", "--nats", nats_server.url, "--stale-after", "1")
    assert code == 1
    line = next(ln for ln in out.splitlines() if ln.startswith(node) and " instance " in ln)
    assert "VI_1" in line and "MASTER" in line and line.endswith("STALE")


async def test_status_lists_live_replicas_and_keeps_their_transitions_fresh(
    nats_server: NatsServer,
    nc: Client,
    node: str,
    micro: list[MicroService],
    capsys: pytest.CaptureFixture[str],
) -> None:
    await publish(
        node, [instance(), msgspec.structs.replace(instance("VI_2"), ts=time.time_ns() - 600 * NS)], nc
    )
    await start_vrrp(nc, node, micro, ReloadReply(ok=True))
    _, out, _ = await run_cli(capsys, "status", "--json", "--nats", nats_server.url, "--stale-after", "60")
    view = json.loads(out)
    replicas = [r for r in view["replicas"] if r["node"] == node]
    assert [(r["service"], r["version"]) for r in replicas] == [("vrrp", "9.9.0")]
    assert entries_of(view, node)["instance VI_2"]["stale"] is False  # old, but vrrp answers on that node


async def test_status_without_nats_is_one_line_and_exit_69(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = await run_cli(capsys, "status", "--nats", f"nats://127.0.0.1:{free_port()}")
    assert code == 69 and out == ""
    assert err.startswith("lifeline: cannot reach NATS") and err.count("\n") == 1


async def test_events_since_prints_stored_events_in_order(
    nats_server: NatsServer, nc: Client, node: str, capsys: pytest.CaptureFixture[str]
) -> None:
    states = [VrrpState.BACKUP, VrrpState.MASTER, VrrpState.FAULT]
    await publish(node, [instance(state=s, n=i) for i, s in enumerate(states)], nc)
    url, subject = nats_server.url, f"{encode_token(node)}.>"
    code, out, _ = await run_cli(
        capsys, "events", "--nats", url, "--since", "5m", "--subject", subject, "-n", "3"
    )
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 3
    assert re.fullmatch(
        rf"\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ {re.escape(node)} "
        r"vrrp VI_1 BACKUP->BACKUP \(master_down_timer\) prio 100",
        lines[0],
    )
    assert "BACKUP->FAULT" in lines[2]

    code, out, _ = await run_cli(
        capsys, "events", "--json", "--nats", url, "--since", "5m", "--subject", subject, "--idle-exit", "0.5"
    )
    objs = [json.loads(ln) for ln in out.splitlines()]
    assert [o["state"] for o in objs] == ["BACKUP", "MASTER", "FAULT"]
    assert [o["seq"] for o in objs] == sorted(o["seq"] for o in objs)


async def test_reload_reaches_the_service_and_prints_its_reply(
    nats_server: NatsServer,
    nc: Client,
    node: str,
    micro: list[MicroService],
    capsys: pytest.CaptureFixture[str],
) -> None:
    await start_vrrp(nc, node, micro, ReloadReply(ok=True, detail="2 instances changed"))
    code, out, _ = await run_cli(capsys, "reload", "vrrp", "--node", node, "--nats", nats_server.url)
    assert (code, out) == (0, f"{node} vrrp: reloaded (2 instances changed)\n")

    code, out, _ = await run_cli(
        capsys, "reload", "--node", node, "--nats", nats_server.url, "--timeout", "1"
    )
    assert code == 0
    assert f"{node} vrrp: reloaded" in out and f"{node} checker: not running" in out

    code, _, _ = await run_cli(capsys, "reload", "lvs", "--node", node, "--nats", nats_server.url)
    assert code == 1


async def test_reload_refused_exits_1_with_the_errors(
    nats_server: NatsServer,
    nc: Client,
    node: str,
    micro: list[MicroService],
    capsys: pytest.CaptureFixture[str],
) -> None:
    await start_vrrp(nc, node, micro, ReloadReply(ok=False, errors=["line 3: unknown keyword"]))
    code, out, _ = await run_cli(capsys, "reload", "vrrp", "--node", node, "--nats", nats_server.url)
    assert code == 1
    assert out == f"{node} vrrp: REFUSED\n  line 3: unknown keyword\n"


async def test_health_exit_codes(
    nats_server: NatsServer,
    nc: Client,
    node: str,
    micro: list[MicroService],
    capsys: pytest.CaptureFixture[str],
) -> None:
    await start_vrrp(nc, node, micro, ReloadReply(ok=True))
    url = nats_server.url
    assert (await run_cli(capsys, "health", "vrrp", "--node", node, "--nats", url))[0] == 0
    assert (await run_cli(capsys, "health", "checker", "--node", node, "--nats", url))[0] == 1
    assert (await run_cli(capsys, "health", "vrrp", "--node", "elsewhere", "--nats", url, "-q"))[:2] == (
        1,
        "",
    )
    dead = f"nats://127.0.0.1:{free_port()}"
    assert (await run_cli(capsys, "health", "vrrp", "--node", node, "--nats", dead))[0] == 1


def parse_exposition(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)", line)
        assert m, line
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        samples[(m.group(1), labels)] = float(m.group(3))
    return samples


async def test_metrics_scrape_over_http(nc: Client, node: str, micro: list[MicroService]) -> None:
    await publish(node, every_event(), nc)
    await start_vrrp(nc, node, micro, ReloadReply(ok=True))
    port = free_port()
    server = await serve(Collector(nc, node).scrape, "127.0.0.1", port)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        response = (await reader.read()).decode()
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
    head, body = response.split("\r\n\r\n", 1)
    assert head.startswith("HTTP/1.1 200") and "version=0.0.4" in head
    m = parse_exposition(body)
    vi = {("iname", "VI_1"), ("intf", "eth0"), ("vrid", "51")}
    assert m[("keepalived_up", frozenset())] == 1
    assert m[("keepalived_vrrp_state", frozenset({*vi, ("ip_address", "10.0.0.100/24")}))] == 2
    assert m[("keepalived_vrrp_effective_priority", frozenset(vi))] == 100
    assert m[("keepalived_advertisements_sent_total", frozenset({*vi, ("state", "MASTER")}))] == 42
    assert m[("keepalived_vrrp_transitions_total", frozenset(vi))] == 3
    drops = frozenset({("intf", "eth0"), ("mode", "multicast 224.0.0.18"), ("reason", "bad_ttl")})
    assert m[("keepalived_vrrp_drops_total", drops)] == 2
    assert m[("keepalived_script_status", frozenset({("name", "chk haproxy.sh"), ("kind", "script")}))] == 0
    rs = {("virtual", "172.16.0.100:80/tcp"), ("real", "192.168.200.2:8080"), ("checker", "HTTP_GET")}
    assert m[("keepalived_lvs_rs_up", frozenset(rs))] == 0
    assert m[("keepalived_lvs_vs_quorum_up", frozenset({("virtual", "fwmark:7")}))] == 0
    assert m[("lifeline_service_up", frozenset({("service", "checker")}))] == 0
