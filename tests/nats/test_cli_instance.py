"""``lifeline instance``: the request it sends to the vrrp control endpoints and the exit codes.

A stub vrrp micro service (real nats-server, real micro endpoints on the same
node-unique subjects as services/vrrp/control.py) records every request body
and answers with a scripted ``ControlReply``, so what is asserted is the wire
payload and what an operator sees.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import msgspec
import pytest
from nats.aio.client import Client
from nats.micro import add_service
from nats.micro.request import Request
from nats.micro.service import EndpointConfig, Service, ServiceConfig

from shared.cli.instance import default_requester, parse_duration
from shared.events import ControlReply, encode_reply, service_subject
from shared.lab.nats import NatsServer, free_port
from tests.nats.test_cli_ops import run_cli

pytestmark = pytest.mark.nats


@dataclass
class StubVrrp:
    """Records ``(endpoint, body)`` and answers ``replies[endpoint]`` (ok by default)."""

    requests: list[tuple[str, dict[str, object]]] = field(default_factory=list)
    replies: dict[str, ControlReply] = field(default_factory=dict)


@pytest.fixture
async def stub(nc: Client, node: str) -> AsyncIterator[StubVrrp]:
    state = StubVrrp()
    svc: Service = await add_service(nc, ServiceConfig(name="lifeline-vrrp", version="0.0.0-stub"))

    def handler(endpoint: str) -> Callable[[Request], Awaitable[None]]:
        async def handle(request: Request) -> None:
            body = json.loads(request.data)
            state.requests.append((endpoint, body))
            reply = state.replies.get(
                endpoint,
                ControlReply(
                    ok=True, instance=str(body.get("instance")), base_priority=body.get("priority") or 100
                ),
            )
            await request.respond(encode_reply(reply))

        return handle

    for endpoint in ("set_priority", "maintenance", "clear"):
        await svc.add_endpoint(
            EndpointConfig(
                name=endpoint, handler=handler(endpoint), subject=service_subject(node, "vrrp", endpoint)
            )
        )
    yield state
    await svc.stop()


async def test_set_priority_sends_instance_priority_and_requester(
    nats_server: NatsServer, stub: StubVrrp, node: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = await run_cli(
        capsys, "instance", "set-priority", "VI_1", "200", "--node", node, "--by", "alice",
        "--nats", nats_server.url,
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert stub.requests == [("set_priority", {"instance": "VI_1", "priority": 200, "requested_by": "alice"})]
    assert out == f"{node} VI_1: base priority 200\n"


async def test_maintenance_sends_seconds_and_prints_until(
    nats_server: NatsServer, stub: StubVrrp, node: str, capsys: pytest.CaptureFixture[str]
) -> None:
    until = 1_795_640_000 * 1_000_000_000
    stub.replies["maintenance"] = ControlReply(
        ok=True, instance="VI_1", base_priority=150, maintenance_until=until
    )
    code, out, _ = await run_cli(
        capsys, "instance", "maintenance", "VI_1", "--for", "10m", "--node", node, "--by", "bob",
        "--nats", nats_server.url,
    )  # fmt: skip
    assert code == 0
    assert stub.requests == [("maintenance", {"instance": "VI_1", "duration": 600.0, "requested_by": "bob"})]
    assert out == f"{node} VI_1: in maintenance until 2026-11-25T20:53:20Z (base priority 150)\n"

    # Without --for: one hour.  Without --by: $SUDO_USER (or $USER) at this host.
    code, _, _ = await run_cli(
        capsys, "instance", "maintenance", "VI_1", "--node", node, "--nats", nats_server.url
    )
    assert code == 0
    assert stub.requests[-1] == (
        "maintenance",
        {"instance": "VI_1", "duration": 3600.0, "requested_by": default_requester()},
    )


async def test_clear_sends_only_instance_and_requester_json_reply(
    nats_server: NatsServer, stub: StubVrrp, node: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = await run_cli(
        capsys,
        "instance",
        "clear",
        "VI_1",
        "--node",
        node,
        "--by",
        "carol",
        "--json",
        "--nats",
        nats_server.url,
    )
    assert code == 0
    assert stub.requests == [("clear", {"instance": "VI_1", "requested_by": "carol"})]
    doc = json.loads(out)
    assert doc["ok"] is True and doc["node"] == node and doc["action"] == "clear"


async def test_refusal_exits_1_and_prints_the_reason(
    nats_server: NatsServer, stub: StubVrrp, node: str, capsys: pytest.CaptureFixture[str]
) -> None:
    stub.replies["set_priority"] = ControlReply(
        ok=False, instance="VI_1", error="an address owner (priority 255) keeps its priority"
    )
    code, out, err = await run_cli(
        capsys,
        "instance",
        "set-priority",
        "VI_1",
        "200",
        "--node",
        node,
        "--by",
        "x",
        "--nats",
        nats_server.url,
    )
    assert code == 1 and err == ""
    assert out == f"{node} VI_1: REFUSED: an address owner (priority 255) keeps its priority\n"


async def test_no_vrrp_on_the_node_exits_1_without_traceback(
    nats_server: NatsServer, node: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = await run_cli(
        capsys,
        "instance",
        "clear",
        "VI_1",
        "--node",
        node,
        "--by",
        "x",
        "--nats",
        nats_server.url,
        "--timeout",
        "1",
    )
    assert code == 1 and "Traceback" not in out + err
    assert out == f"{node} VI_1: vrrp is not running on node {node!r} (no responder)\n"


async def test_unreachable_nats_exits_69(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = await run_cli(
        capsys, "instance", "clear", "VI_1", "--by", "x", "--nats", f"nats://127.0.0.1:{free_port()}"
    )
    assert code == 69 and out == ""
    assert err.startswith("lifeline: cannot reach NATS") and err.count("\n") == 1


def test_bad_duration_and_priority_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    from shared.cli.main import main

    for argv in (
        ["instance", "maintenance", "VI_1", "--for", "soon"],
        ["instance", "set-priority", "VI_1", "high"],
    ):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
    assert "Traceback" not in capsys.readouterr().err
    assert [parse_duration(t) for t in ("600", "90s", "10m", "2h", "1d")] == [600, 90, 600, 7200, 86400]


def test_default_requester_prefers_sudo_user() -> None:
    assert default_requester({"SUDO_USER": "alice", "USER": "root"}).startswith("alice@")
    assert default_requester({"USER": "bob"}).startswith("bob@")
    assert msgspec.json.decode(msgspec.json.encode(default_requester({})), type=str)
