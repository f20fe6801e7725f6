"""The fleet: three nodes' nats-servers as leaf nodes of a hub, each with its own JetStream domain.

What it proves (issue 8, "Fleet"): with the nodes' servers joined, an external
subscriber on the hub receives every node's events, and ``lifeline status
--domain ...`` on any one node lists all three nodes (their KV state through
``$JS.<domain>.API`` over the leaf connections, their service replicas through
``$SRV.INFO``), while each node's event stream keeps only its own events (the
services name their node's subjects), and a node whose server is down is
reported without hiding the rest.

The deployment's shape, not a lab shortcut: every server's config is the
generated one (``shared.nats_users``: the hub with ``--hub``, each node with
its per-service users and ``leaf_url``/``leaf_user``/``leaf_password``, which
also give it its JetStream domain), the leaf connections log in to the hub as
its ``leaf`` user, the events are published as each node's ``vrrp`` user and
the operator commands run as ``admin``.  Real nats-servers, real ``shared.bus``
Publishers; the servers run in the root namespace on distinct loopback ports
(no netns is needed for routing between them), which is why the test is
marked ``root`` only to run with the rest of the lab suite.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.micro.service import Service as MicroService

from shared.bus import Publisher, connect, register_service
from shared.bus.provision import node_plan
from shared.cli.main import main
from shared.events import VrrpState
from shared.lab.nats import NatsServer, free_port
from shared.lab.wait import await_until
from shared.nats_users import ADMIN, generate_passwords, nats_url, render_config, render_hub_config
from shared.settings import NatsServerSettings
from tests.nats.events_sample import instance

pytestmark = [pytest.mark.root, pytest.mark.nats]

NODES = ("a", "b", "c")


HUB_PASSWORDS = generate_passwords((ADMIN, "leaf"))
PASSWORDS = {node: generate_passwords() for node in NODES}
"""Every node has its own passwords, as every deployed node would."""


class Fleet:
    """The servers, and how to reach them as a given user."""

    def __init__(self, hub: NatsServer, nodes: dict[str, NatsServer]) -> None:
        self.hub = hub
        self.nodes = nodes

    def admin_url(self, node: str) -> str:
        """The URL the operator commands get (``--nats``): admin, credentials in the URL."""
        return nats_url(ADMIN, PASSWORDS[node][ADMIN], port=self.nodes[node].port)


def node_conf(workdir: Path, node: str, port: int, leaf_port: int) -> str:
    """What docs/operations.md "Fleet" has an operator set: the hub as leaf remote, with its leaf user."""
    server = NatsServerSettings(
        leaf_url=f"nats-leaf://127.0.0.1:{leaf_port}", leaf_user="leaf", leaf_password=HUB_PASSWORDS["leaf"]
    )
    return render_config(node, PASSWORDS[node], port=port, store_dir=str(workdir / "js"), server=server)


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    leaf_port = free_port()
    hub_port = free_port()
    hub_text = render_hub_config(
        HUB_PASSWORDS["leaf"],
        HUB_PASSWORDS[ADMIN],
        host="127.0.0.1",
        port=hub_port,
        leaf_port=leaf_port,
        store_dir=str(tmp_path / "hub" / "js"),
    )
    hub = NatsServer(tmp_path / "hub", port=hub_port, name="hub", config=hub_text)
    nodes: dict[str, NatsServer] = {}
    try:
        hub.start()
        for node in NODES:
            port = free_port()
            work = tmp_path / node
            nodes[node] = NatsServer(
                work, port=port, name=node, config=node_conf(work, node, port, leaf_port)
            )
            nodes[node].start()
            # what lifeline up does before its services start: the admin provisions the node's bus
            nodes[node].provision_now(node_plan(node), user=ADMIN, password=PASSWORDS[node][ADMIN])
        yield Fleet(hub, nodes)
    finally:
        for server in [*nodes.values(), hub]:
            server.kill()


@pytest.fixture
async def clients(fleet: Fleet) -> AsyncIterator[dict[str, Client]]:
    """``hub``: the external subscriber (hub admin); per node its ``vrrp`` user and its ``admin``."""
    out: dict[str, Client] = {}
    try:
        out["hub"] = await connect(
            fleet.hub.url, "pytest-hub", reconnect_wait=0.1, user=ADMIN, password=HUB_PASSWORDS[ADMIN]
        )
        for node, server in fleet.nodes.items():
            for user in ("vrrp", ADMIN):
                out[f"{node}/{user}"] = await connect(
                    server.url,
                    f"pytest-{node}-{user}",
                    reconnect_wait=0.1,
                    user=user,
                    password=PASSWORDS[node][user],
                )
        yield out
    finally:
        for nc in out.values():
            with contextlib.suppress(Exception):  # node b's server is killed on purpose: close may fail
                await nc.close()


@contextlib.asynccontextmanager
async def fleet_probe(clients: dict[str, Client]) -> AsyncIterator[Callable[[], Awaitable[bool]]]:
    """A probe for ``await_until``: publish on every node, true once each one's probe reached the hub.

    That is the fleet joined: every leaf connection up, and the hub's interest known on every node.
    """
    seen: set[str] = set()

    async def on_probe(msg: Msg) -> None:
        seen.add(msg.subject.rsplit(".", 1)[-1])

    async def probe() -> bool:
        for node in NODES:
            await clients[f"{node}/{ADMIN}"].publish(f"fleetprobe.{node}", b"")
            await clients[f"{node}/{ADMIN}"].flush()
        return seen == set(NODES)

    sub = await clients["hub"].subscribe("fleetprobe.>", cb=on_probe)
    await clients["hub"].flush()
    try:
        yield probe
    finally:
        await sub.unsubscribe()


async def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def test_hub_receives_every_nodes_events_and_status_on_one_node_lists_the_fleet(
    fleet: Fleet,
    clients: dict[str, Client],
    capsys: pytest.CaptureFixture[str],
) -> None:
    nodes = fleet.nodes
    received: list[Msg] = []

    async def on_event(msg: Msg) -> None:
        received.append(msg)

    # The external subscriber: a plain core subscription on the hub, nothing lifeline-specific.
    await clients["hub"].subscribe("lifeline.>", cb=on_event)
    await clients["hub"].flush()
    async with fleet_probe(clients) as joined:
        await await_until("every node's probe to reach the hub", joined, 15.0, 0.1)

    publishers: list[Publisher] = []
    micro: list[MicroService] = []
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

        # Each node's stream holds its own events only, read here through its domain (as a's admin) ...
        for node in NODES:
            js = clients[f"a/{ADMIN}"].jetstream(domain=node)
            info = await js.stream_info("LIFELINE_EVENTS", subjects_filter=">")
            assert set(info.state.subjects or {}) == {f"lifeline.{node}.vrrp.state.VI_1"}

        # ... and status on node c, given the fleet's domains, shows all three nodes.
        code, out, err = await run_cli(
            capsys, "status", "--json", "--nats", fleet.admin_url("c"), "--domain", "a,b", "--domain", "c"
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

        # The table for people, from node a: every node's rows.
        code, out, _ = await run_cli(capsys, "status", "--nats", fleet.admin_url("a"), "--domain", "a,b,c")
        assert code == 0
        assert {line.split()[0] for line in out.splitlines()[1:]} == set(NODES)

        # Control requests cross the fleet too: node b's vrrp answers a health request made on node a.
        code, out, _ = await run_cli(capsys, "health", "vrrp", "--node", "b", "--nats", fleet.admin_url("a"))
        assert (code, out) == (0, "b vrrp: healthy\n")

        # A node that does not answer (its server down) is reported, the rest still shown, exit 1.
        nodes["b"].kill()
        code, out, err = await run_cli(
            capsys, "status", "--json", "--nats", fleet.admin_url("c"), "--domain", "a,b,c", "--wait", "0.2"
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
