"""In a fleet, one node cannot steer another: real servers on their generated configs, a hub and two nodes.

The attack from the security review: node A's admin (or root on node A)
sends a maintenance request to node B's vrrp through the hub.  Three layers
are each tested on their own, with node B's vrrp stood in for by a subscriber
as B's ``vrrp`` user on its control subjects, and a positive control each time
(the fleet admin's request *does* reach B, A's own traffic *does* reach the
hub), so "never seen" means refused and not "not yet delivered":

- A's ``admin`` is refused by A's own server (``Permissions Violation``):
  B's control subjects, B's JetStream domain, B's keys;
- a compromised node A (a server with an unrestricted user, joined with A's
  leaf credentials) gets nothing of B's: the hub's ``leaf-a`` user lets only
  A's subjects up and A's control and domain down;
- a rogue that speaks the leaf-node protocol itself (so no node-side check
  applies) is refused by the hub, which closes its connection, and receives
  nothing of B's even when it asks for everything;

and a leaf connection without credentials, or with a client's, is refused.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import nats.errors
import pytest
from nats.aio.msg import Msg

from shared.lab.nats import free_port
from shared.lab.wait import await_until
from shared.nats_hub import FLEET_ADMIN, READER
from shared.nats_users import ACCOUNT
from tests.support.fleet import Fleet, Login, RawLeaf, collector, fleet_probe, login, running_fleet

pytestmark = pytest.mark.nats

NODES = ("a", "b")
MAINTENANCE = "lifeline.b.ctl.vrrp.maintenance"


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    with running_fleet(tmp_path, NODES) as joined:
        yield joined


@pytest.fixture
async def b_vrrp(fleet: Fleet) -> AsyncIterator[list[Msg]]:
    """Node B's vrrp, stood in for: every control request it receives, each answered ``{"ok":true}``."""
    seen: list[Msg] = []
    async with login(fleet.url("b", "vrrp")) as vrrp:

        async def answer(msg: Msg) -> None:
            seen.append(msg)
            if msg.reply:
                await vrrp.nc.publish(msg.reply, b'{"ok":true}')

        await vrrp.nc.subscribe("lifeline.b.ctl.vrrp.>", cb=answer)
        await vrrp.nc.flush()
        async with login(fleet.hub_url(READER)) as reader, fleet_probe(fleet, reader.nc) as probe:
            await await_until("both nodes joined", probe, 15.0, 0.1)
        yield seen


FORGED = b"forged"
"""In every payload an attacker sends: none may ever reach node B."""


async def fleet_admin_reaches_b(fleet: Fleet, seen: list[Msg]) -> None:
    """The positive control: the hub's fleet admin asks B's vrrp, B answers, and saw nothing forged before."""
    async with login(fleet.hub_url(FLEET_ADMIN)) as admin:
        reply = await admin.nc.request(MAINTENANCE, b"from-the-hub", timeout=5)
    assert reply.data == b'{"ok":true}'
    assert seen[-1].data == b"from-the-hub"
    assert not [m.subject for m in seen if FORGED in m.data]


async def until_violation(user: Login, subject: str) -> None:
    await await_until(f"a violation on {subject}", lambda: user.violated(subject), 3.0)


async def test_node_admin_cannot_reach_another_node(fleet: Fleet, b_vrrp: list[Msg]) -> None:
    async with login(fleet.url("a")) as admin:
        for subject in (MAINTENANCE, "lifeline.b.track.chk", "$KV.lifeline_state.b.vrrp.x", "$JS.b.API.INFO"):
            await admin.nc.publish(subject, FORGED)
            await admin.nc.flush()
            await until_violation(admin, subject)
        with pytest.raises(nats.errors.Error):
            await admin.nc.request(MAINTENANCE, FORGED, timeout=1)
        # its own node's control is its to use
        await admin.nc.publish("lifeline.a.ctl.vrrp.status", b"")
        await admin.nc.flush()
        assert not admin.violated("lifeline.a.ctl.vrrp.status")
    await fleet_admin_reaches_b(fleet, b_vrrp)


def compromised_node_config(fleet: Fleet, port: int, store: Path) -> str:
    """What root on node A could run: one user with no permissions at all, A's leaf credentials."""
    leaf = fleet.secrets.leaf("a")
    url = f"nats-leaf://{leaf.user}:{fleet.secrets.hub[leaf.user]}@127.0.0.1:{fleet.leaf_port}"
    return (
        f'server_name: "rogue-a"\nlisten: "127.0.0.1:{port}"\n'
        f'jetstream {{ store_dir: "{store}", domain: "a" }}\n'
        f'accounts {{ {ACCOUNT}: {{ jetstream: enabled, users: [ {{ user: "root", password: "root" }} ] }} }}'
        "\n"
        f'leafnodes {{ remotes: [ {{ urls: ["{url}"], account: "{ACCOUNT}" }} ] }}\n'
    )


async def test_a_compromised_node_gets_nothing_of_another_node_through_the_hub(
    fleet: Fleet, b_vrrp: list[Msg], tmp_path: Path
) -> None:
    fleet.nodes.pop("a").kill()
    port = free_port()
    config = compromised_node_config(fleet, port, tmp_path / "rogue" / "js")
    fleet.start_node(tmp_path / "rogue", "a", config, port)
    on_b: list[Msg] = []
    async with login(fleet.url("b")) as b_admin, login(fleet.hub_url(READER)) as reader:
        await b_admin.nc.subscribe("lifeline.>", cb=collector(on_b))  # whatever reaches node B
        await b_admin.nc.flush()
        at_hub: list[Msg] = []
        await reader.nc.subscribe("lifeline.a.>", cb=collector(at_hub))
        await reader.nc.flush()
        async with login(f"nats://root:root@127.0.0.1:{port}") as rogue:
            # the leaf is up: the rogue's own node's subjects reach the hub
            async def own_event_at_hub() -> bool:
                await rogue.nc.publish("lifeline.a.vrrp.state.VI_1", b"{}")
                await rogue.nc.flush()
                return bool(at_hub)

            await await_until("node A's event at the hub", own_event_at_hub, 15.0, 0.2)
            for subject in (MAINTENANCE, "lifeline.b.track.chk", "$KV.lifeline_state.b.vrrp.x"):
                await rogue.nc.publish(subject, FORGED)
            await rogue.nc.flush()
            for subject in (MAINTENANCE, "$JS.b.API.INFO"):
                with pytest.raises((nats.errors.NoRespondersError, nats.errors.TimeoutError)):
                    await rogue.nc.request(subject, FORGED, timeout=1)
    await fleet_admin_reaches_b(fleet, b_vrrp)
    assert not [m.subject for m in on_b if FORGED in m.data]


async def test_a_rogue_leaf_is_refused_by_the_hub_itself(fleet: Fleet, b_vrrp: list[Msg]) -> None:
    leaf = fleet.secrets.leaf("a")
    rogue = await RawLeaf.connect(fleet.leaf_port, leaf.user, fleet.secrets.hub[leaf.user])
    try:
        # Down (hub → node): it asks for everything, gets only A's control.
        await rogue.interest(
            "lifeline.>", "lifeline.b.>", "lifeline.b.track.>", "lifeline.b.ctl.>", "lifeline.a.ctl.>"
        )
        await await_until("the hub's PONG", lambda: rogue.lines.count("PONG") >= 2, 5.0)
        async with login(fleet.url("b")) as b_admin, login(fleet.hub_url(READER)) as reader:
            at_hub: list[Msg] = []
            await reader.nc.subscribe("lifeline.b.track.>", cb=collector(at_hub))
            await reader.nc.flush()
            await b_admin.nc.publish("lifeline.b.track.chk", b"{}")  # B's tracker result reaches the hub ...
            await await_until("B's track at the hub", lambda: bool(at_hub), 5.0)
        async with login(fleet.hub_url(FLEET_ADMIN)) as admin:
            await admin.nc.publish("lifeline.b.ctl.vrrp.status", b"")  # ... and so does a request to B
            await admin.nc.publish("lifeline.a.ctl.vrrp.status", b"")  # A's own control: the positive control
            await admin.nc.flush()
        await await_until("A's control down the rogue leaf", rogue.received, 5.0)
        assert rogue.received() == ["lifeline.a.ctl.vrrp.status"]

        # Up (node → hub): a forged maintenance request is refused and the leaf connection closed.
        await rogue.publish(MAINTENANCE)
        await await_until("the hub to close the rogue leaf", lambda: rogue.closed, 5.0)
        assert any(f'Permissions Violation for Publish to "{MAINTENANCE}"' in e for e in rogue.errors())
    finally:
        await rogue.close()
    await fleet_admin_reaches_b(fleet, b_vrrp)  # nothing of the rogue's reached B before this


@pytest.mark.parametrize(
    "who", ["no credentials", "wrong password", "the fleet admin", "another node's user"]
)
async def test_a_leaf_without_its_credentials_is_refused(fleet: Fleet, who: str) -> None:
    user, password = {
        "no credentials": (None, None),
        "wrong password": ("leaf-a", "x" * 33),
        "the fleet admin": (FLEET_ADMIN, fleet.secrets.hub[FLEET_ADMIN]),  # a client user, not a leaf's
        "another node's user": ("leaf-b", fleet.secrets.hub["leaf-a"]),
    }[who]
    await await_until("both nodes joined", lambda: len(fleet.leafz()) == 2, 15.0, 0.1)
    rogue = await RawLeaf.connect(fleet.leaf_port, user, password)
    try:
        await await_until("the hub to close the connection", lambda: rogue.closed, 5.0)
        assert any("Authorization Violation" in e for e in rogue.errors()), rogue.lines
    finally:
        await rogue.close()
    joined = {(leaf["account"], leaf["name"]) for leaf in await asyncio.to_thread(fleet.leafz)}
    assert joined == {(ACCOUNT, "lifeline-a"), (ACCOUNT, "lifeline-b")}


async def test_leaf_users_cannot_log_in_as_clients(fleet: Fleet) -> None:
    leaf = fleet.secrets.leaf("a")
    url = f"nats://{leaf.user}:{fleet.secrets.hub[leaf.user]}@127.0.0.1:{fleet.hub.port}"
    with pytest.raises((nats.errors.Error, OSError)):
        await nats.connect(url, allow_reconnect=False, connect_timeout=2)


async def test_fleet_admin_reads_every_domain_and_the_reader_only_events(
    fleet: Fleet, b_vrrp: list[Msg]
) -> None:
    """What ``lifeline status --domain`` needs works for the fleet admin; the reader may not control."""
    async with login(fleet.hub_url(FLEET_ADMIN)) as admin:
        for node in NODES:
            info = json.loads((await admin.nc.request(f"$JS.{node}.API.INFO", b"", timeout=5)).data)
            assert "error" not in info, info
    async with login(fleet.hub_url(READER)) as reader:
        await reader.nc.publish(MAINTENANCE, FORGED)
        await reader.nc.flush()
        await until_violation(reader, MAINTENANCE)
        await reader.nc.subscribe("lifeline.b.ctl.>")
        await reader.nc.flush()
        await until_violation(reader, "lifeline.b.ctl.>")
    await fleet_admin_reaches_b(fleet, b_vrrp)
