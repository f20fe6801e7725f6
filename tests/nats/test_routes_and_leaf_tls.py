"""Cluster routes and leaf connections only with credentials, and TLS for both, on real nats-servers.

The review's finding: routes without authentication let any server that
reaches the route port join the bus, and a message it publishes reached a
node's vrrp.  Here two nodes' servers route to each other on their generated
configs (route user and password required), and a rogue nats-server tries to
route in: without credentials, with a wrong password, and (with route TLS)
with the right password but no certificate.  It is refused (its own log says
so, the node's ``routez`` lists only the real peer) and what it publishes on
the node's control subjects never reaches the node's vrrp stand-in, while the
same request from the node's own admin does.  The leaf side: a hub with TLS
that verifies certificates, a node that joins with its certificate and one
that cannot join without it.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import nats
import nats.errors
import pytest
from nats.aio.msg import Msg

from shared.lab.nats import NatsServer, free_port
from shared.lab.wait import await_until, wait_until
from shared.nats_hub import READER, HubTls
from shared.nats_passwords import generate_password
from shared.nats_users import ACCOUNT, ADMIN, generate_passwords, nats_url, render_config
from shared.settings import NatsServerSettings
from tests.support.fleet import collector, login, running_fleet
from tests.unit.test_nats_users_config import make_certs

pytestmark = pytest.mark.nats

FORGED = b"forged"
MAINTENANCE = "lifeline.n1.ctl.vrrp.maintenance"


@dataclass
class RouteNode:
    """One node's server in a route cluster: its ports and its users' passwords."""

    name: str
    passwords: dict[str, str] = field(default_factory=generate_passwords)
    port: int = field(default_factory=free_port)
    cluster_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)

    def url(self, user: str = ADMIN) -> str:
        return nats_url(user, self.passwords[user], port=self.port)

    def route_names(self) -> set[str]:
        """The servers this one has a route to (``routez``; routes are pooled, so names, not a count)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/routez", timeout=5) as reply:
            return {str(r.get("remote_name")) for r in json.load(reply).get("routes") or []}


@dataclass
class Cluster:
    nodes: list[RouteNode]
    password: str
    certs: dict[str, Path] | None
    workdir: Path
    servers: list[NatsServer] = field(default_factory=list)

    @property
    def seed(self) -> RouteNode:
        """Node n1: the one the rogue tries to route into."""
        return self.nodes[0]

    def settings(self, node: RouteNode) -> NatsServerSettings:
        """The generated route settings: every other node's route, the shared user and password."""
        tls: dict[str, str] = {}
        if self.certs is not None:
            tls = {
                "cluster_tls_cert": str(self.certs["server"]),
                "cluster_tls_key": str(self.certs["server-key"]),
                "cluster_tls_ca": str(self.certs["ca"]),
            }
        return NatsServerSettings(
            cluster_name="lifeline",
            cluster_listen=f"127.0.0.1:{node.cluster_port}",
            cluster_routes=[f"nats-route://127.0.0.1:{p.cluster_port}" for p in self.nodes if p is not node],
            cluster_user="route",
            cluster_password=self.password,
            **tls,
        )

    def start(self) -> None:
        for node in self.nodes:
            work = self.workdir / node.name
            text = render_config(
                node.name,
                node.passwords,
                port=node.port,
                http_port=node.http_port,
                store_dir=str(work / "js"),
                server=self.settings(node),
            )
            self.servers.append(NatsServer(work, port=node.port, name=node.name, config=text))
            self.servers[-1].start()

    def rogue(self, route_url: str) -> NatsServer:
        """A server someone else runs: an unrestricted user in the same account, a route to node n1."""
        port = free_port()
        text = (
            f'server_name: "rogue"\nlisten: "127.0.0.1:{port}"\n'
            f'accounts {{ {ACCOUNT}: {{ users: [ {{ user: "root", password: "root" }} ] }} }}\n'
            f'cluster {{\n  name: "lifeline"\n  listen: "127.0.0.1:{free_port()}"\n'
            f'  routes: ["{route_url}"]\n}}\n'
        )
        rogue = NatsServer(self.workdir / "rogue", port=port, name="rogue", config=text)
        self.servers.append(rogue)
        rogue.start()
        return rogue


@pytest.fixture(params=[False, True], ids=["plain", "tls"])
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    certs = make_certs(tmp_path) if request.param else None
    joined = Cluster([RouteNode("n1"), RouteNode("n2")], generate_password(), certs, tmp_path)
    try:
        joined.start()
        wait_until("n1 and n2 routed", lambda: joined.nodes[0].route_names() == {"lifeline-n2"}, 20.0, 0.1)
        yield joined
    finally:
        for server in joined.servers:
            server.kill()


@pytest.fixture
async def n1_vrrp(cluster: Cluster) -> AsyncIterator[list[Msg]]:
    """Node n1's vrrp, stood in for: the control requests it receives, each answered."""
    seen: list[Msg] = []
    async with login(cluster.seed.url("vrrp")) as vrrp:

        async def answer(msg: Msg) -> None:
            seen.append(msg)
            if msg.reply:
                await vrrp.nc.publish(msg.reply, b'{"ok":true}')

        await vrrp.nc.subscribe("lifeline.n1.ctl.vrrp.>", cb=answer)
        await vrrp.nc.flush()
        yield seen


async def test_a_route_with_credentials_carries_the_bus(cluster: Cluster) -> None:
    """The positive half: n2's event reaches a subscriber on n1 over the authenticated route."""
    got: list[Msg] = []
    async with login(cluster.seed.url()) as n1, login(cluster.nodes[1].url()) as n2:
        await n1.nc.subscribe("lifeline.n2.>", cb=collector(got))
        await n1.nc.flush()

        async def crossed() -> bool:
            await n2.nc.publish("lifeline.n2.vrrp.state.VI_1", b"{}")
            await n2.nc.flush()
            return bool(got)

        await await_until("n2's event on n1", crossed, 10.0, 0.1)


ROGUES = {
    "no credentials": "nats-route://127.0.0.1:{port}",
    "wrong password": "nats-route://route:" + "W" * 33 + "@127.0.0.1:{port}",
    "right password": "nats-route://route:{password}@127.0.0.1:{port}",
}


# Without route TLS the password is the whole defence: a rogue that has it is a peer, so that case is
# only made with TLS (where the rogue still lacks a certificate the cluster's CA signed).
ROGUE_CASES = [(tls, who) for tls in (False, True) for who in ROGUES if tls or who != "right password"]


@pytest.mark.parametrize(
    ("cluster", "who"),
    ROGUE_CASES,
    ids=[f"{'tls' if tls else 'plain'}-{who}" for tls, who in ROGUE_CASES],
    indirect=["cluster"],
)
async def test_a_rogue_route_is_refused_and_never_reaches_vrrp(
    cluster: Cluster, n1_vrrp: list[Msg], who: str
) -> None:
    url = ROGUES[who].format(port=cluster.seed.cluster_port, password=cluster.password)
    seed = cluster.servers[0]
    refusal = "TLS route handshake error" if cluster.certs else "authentication error"
    before = _count(seed, refusal)
    rogue = cluster.rogue(url)
    wait_until(f"n1 to refuse the rogue ({refusal})", lambda: _count(seed, refusal) > before, 20.0, 0.1)
    async with login(f"nats://root:root@127.0.0.1:{rogue.port}") as root:
        for _ in range(3):
            await root.nc.publish(MAINTENANCE, FORGED)
        await root.nc.flush()
        with pytest.raises(nats.errors.NoRespondersError):
            await root.nc.request(MAINTENANCE, FORGED, timeout=2)
    async with login(cluster.seed.url()) as admin:  # the positive control: n1's own operator
        reply = await admin.nc.request(MAINTENANCE, b"from-n1-admin", timeout=5)
    assert reply.data == b'{"ok":true}'
    assert [m.data for m in n1_vrrp] == [b"from-n1-admin"]
    assert await asyncio.to_thread(cluster.seed.route_names) == {"lifeline-n2"}


def _count(server: NatsServer, marker: str) -> int:
    """Lines of the server's log naming ``marker`` (its refusals of route connections)."""
    try:
        return server.log_path.read_text(errors="replace").count(marker)
    except OSError:
        return 0


# --------------------------------------------------------------------------- leaf connections over TLS


def tls_client(certs: dict[str, Path]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(certs["ca"]))
    ctx.load_cert_chain(str(certs["client"]), str(certs["client-key"]))
    return ctx


async def test_leaf_over_tls_joins_with_its_certificate_and_not_without(tmp_path: Path) -> None:
    certs = make_certs(tmp_path)
    tls = HubTls(str(certs["server"]), str(certs["server-key"]), str(certs["ca"]), verify=True)
    with running_fleet(tmp_path / "fleet", ["a", "b"], tls=tls, start=False) as fleet:
        leaf_url = f"tls://127.0.0.1:{fleet.leaf_port}"
        with_cert = fleet.node_settings(
            "a", leaf_url=leaf_url, leaf_ca=str(certs["ca"]), leaf_cert=str(certs["client"]),
            leaf_key=str(certs["client-key"]),
        )  # fmt: skip
        fleet.start_node(tmp_path, "a", settings=with_cert)
        await await_until("a joined over TLS", lambda: len(fleet.leafz()) == 1, 15.0, 0.1)
        fleet.start_node(
            tmp_path, "b", settings=fleet.node_settings("b", leaf_url=leaf_url, leaf_ca=str(certs["ca"]))
        )
        refused = "client didn't provide a certificate"
        wait_until("the hub to refuse b (no certificate)", lambda: _count(fleet.hub, refused) > 0, 15.0, 0.1)
        assert [leaf["name"] for leaf in fleet.leafz()] == ["lifeline-a"]

        got: list[Msg] = []
        reader = await nats.connect(
            f"tls://127.0.0.1:{fleet.hub.port}", user=READER, password=fleet.secrets.hub[READER],
            tls=tls_client(certs), allow_reconnect=False,
        )  # fmt: skip
        try:
            await reader.subscribe("lifeline.a.>", cb=collector(got))
            await reader.flush()
            async with login(fleet.url("a")) as admin:

                async def crossed() -> bool:
                    await admin.nc.publish("lifeline.a.vrrp.state.VI_1", b"{}")
                    await admin.nc.flush()
                    return bool(got)

                await await_until("a's event at the hub over TLS", crossed, 10.0, 0.1)
        finally:
            await reader.close()
        with pytest.raises((nats.errors.Error, OSError, ssl.SSLError)):  # the hub's clients verified too
            await nats.connect(
                f"tls://127.0.0.1:{fleet.hub.port}", user=READER, password=fleet.secrets.hub[READER],
                tls=ssl.create_default_context(cafile=str(certs["ca"])), allow_reconnect=False,
                connect_timeout=2,
            )  # fmt: skip
