"""The fleet: three nodes' nats-servers as leaf nodes of a hub, each with its own JetStream domain.

What it proves (docs/operations.md, "Fleet"): with the nodes' servers joined,
an external subscriber on the hub (its read-only ``reader`` user) receives
every node's events, and ``lifeline status --domain ...`` as the hub's
``fleet-admin`` lists all three nodes (their KV state through
``$JS.<domain>.API`` over the leaf connections, their service replicas
through ``$SRV.INFO``), while each node's event stream keeps only its own
events (the services name their node's subjects), a control request from the
hub reaches the node it names, and a node whose server is down is reported
without hiding the rest.  On a node, its admin sees its own node only: the
other domains do not answer it (tests/nats/test_fleet_isolation.py covers the
rest of what one node may not do to another).

The deployment's shape, not a lab shortcut: every server's config is the
generated one (``shared.nats_hub`` for the hub with a leaf user per node,
``shared.nats_users`` for each node with its per-service users and
``leaf_url``/``leaf_password``, which also give it its JetStream domain),
the events are published as each node's ``vrrp`` user and the operator
commands run as ``fleet-admin`` on the hub or ``admin`` on a node.  Real
nats-servers, real ``shared.bus`` Publishers; the servers run in the root
namespace on distinct loopback ports (no netns is needed for routing between
them), which is why the test is marked ``root`` only to run with the rest of
the lab suite.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.micro.service import Service as MicroService

from shared.bus import Publisher, connect, register_service
from shared.cli.main import main
from shared.events import VrrpState
from shared.lab.wait import await_until
from shared.nats_hub import FLEET_ADMIN, READER
from shared.nats_users import ADMIN
from tests.nats.events_sample import instance
from tests.support.fleet import Fleet, fleet_probe, running_fleet

pytestmark = [pytest.mark.root, pytest.mark.nats]

NODES = ("a", "b", "c")


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    with running_fleet(tmp_path, NODES) as joined:
        yield joined


@pytest.fixture
async def clients(fleet: Fleet) -> AsyncIterator[dict[str, Client]]:
    """``hub``: the external subscriber (hub ``reader``); per node its ``vrrp`` user and its ``admin``."""
    out: dict[str, Client] = {}
    try:
        out["hub"] = await connect(fleet.hub_url(READER), "pytest-hub", reconnect_wait=0.1)
        for node in fleet.nodes:
            for user in ("vrrp", ADMIN):
                out[f"{node}/{user}"] = await connect(
                    fleet.url(node, user), f"pytest-{node}-{user}", reconnect_wait=0.1
                )
        yield out
    finally:
        for nc in out.values():
            with contextlib.suppress(Exception):  # node b's server is killed on purpose: close may fail
                await nc.close()


async def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def test_hub_receives_every_nodes_events_and_fleet_admin_status_lists_the_fleet(
    fleet: Fleet,
    clients: dict[str, Client],
    capsys: pytest.CaptureFixture[str],
) -> None:
    nodes = fleet.nodes
    received: list[Msg] = []

    async def on_event(msg: Msg) -> None:
        received.append(msg)

    # The external subscriber: a plain core subscription on the hub, nothing lifeline-specific.
    await clients["hub"].subscribe("lifeline.*.vrrp.>", cb=on_event)
    await clients["hub"].flush()
    async with fleet_probe(fleet, clients["hub"]) as joined:
        await await_until("every node's probe to reach the hub", joined, 15.0, 0.1)

    publishers: list[Publisher] = []
    micro: list[MicroService] = []
    fleet_admin = await connect(fleet.hub_url(FLEET_ADMIN), "pytest-fleet-admin")
    try:
        for node in NODES:
            pub = Publisher(node)
            await pub.start(clients[f"{node}/vrrp"])  # the node's vrrp user, as the vrrp service
            pub.publish(instance("VI_1", state=VrrpState.MASTER if node == "a" else VrrpState.BACKUP))
            assert await pub.flush(10), f"node {node}: events not acknowledged by its own JetStream"
            publishers.append(pub)

        async def status() -> dict[str, object]:
            return {}

        micro.append(
            await register_service(
                clients["b/vrrp"], node="b", service="vrrp", version="9.9.0", status=status
            )
        )

        expected = {f"lifeline.{n}.vrrp.state.VI_1" for n in NODES}
        await await_until(
            "every node's event at the hub", lambda: {m.subject for m in received} >= expected, 10.0
        )
        by_node = {json.loads(m.data)["node"]: json.loads(m.data) for m in received}
        assert by_node["a"]["state"] == "MASTER"
        assert by_node["b"]["state"] == by_node["c"]["state"] == "BACKUP"

        # Each node's stream holds its own events only, read here through its domain (as the fleet admin) ...
        for node in NODES:
            js = fleet_admin.jetstream(domain=node)
            info = await js.stream_info("LIFELINE_EVENTS", subjects_filter=">")
            assert set(info.state.subjects or {}) == {f"lifeline.{node}.vrrp.state.VI_1"}

        # ... and status on the hub, given the fleet's domains, shows all three nodes.
        hub = fleet.hub_url(FLEET_ADMIN)
        code, out, err = await run_cli(
            capsys, "status", "--json", "--nats", hub, "--domain", "a,b", "--domain", "c"
        )
        assert (code, err) == (0, "")
        view = json.loads(out)
        assert view["nodes"] == list(NODES)
        assert view["domains"] == {"a": "ok", "b": "ok", "c": "ok"}
        states = {(r["node"], r["kind"], r["name"]): r["state"] for r in view["entries"]}
        assert states[("a", "instance", "VI_1")].startswith("MASTER")
        assert states[("b", "instance", "VI_1")].startswith("BACKUP")
        assert states[("c", "instance", "VI_1")].startswith("BACKUP")
        assert [(r["node"], r["service"]) for r in view["replicas"]] == [("b", "vrrp")]

        # The table for people: every node's rows.
        code, out, _ = await run_cli(capsys, "status", "--nats", hub, "--domain", "a,b,c")
        assert code == 0
        assert {line.split()[0] for line in out.splitlines()[1:]} == set(NODES)

        # Control requests cross the fleet from the hub: node b's vrrp answers a health request.
        code, out, _ = await run_cli(capsys, "health", "vrrp", "--node", "b", "--nats", hub)
        assert (code, out) == (0, "b vrrp: healthy\n")

        # A node's admin sees its own node only: the other domains do not answer it.
        code, out, err = await run_cli(
            capsys, "status", "--json", "--nats", fleet.url("c"), "--domain", "b,c", "--wait", "0.2"
        )
        assert code == 1 and "JetStream domain b did not answer" in err
        assert json.loads(out)["domains"] == {"b": json.loads(out)["domains"]["b"], "c": "ok"}
        assert {r["node"] for r in json.loads(out)["entries"]} == {"c"}

        # A node that does not answer (its server down) is reported, the rest still shown, exit 1.
        nodes["b"].kill()
        code, out, err = await run_cli(
            capsys, "status", "--json", "--nats", hub, "--domain", "a,b,c", "--wait", "0.2"
        )
        assert code == 1
        assert "JetStream domain b did not answer" in err and "Traceback" not in err
        view = json.loads(out)
        assert view["domains"]["b"] != "ok" and view["domains"]["a"] == "ok"
        assert {r["node"] for r in view["entries"]} >= {"a", "c"}
    finally:
        for svc in micro:
            await svc.stop()
        for pub in publishers:
            await pub.close(0.5)
        await fleet_admin.close()
