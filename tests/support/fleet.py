"""A fleet for tests: a hub and nodes, every server on its generated config, on loopback ports.

The deployment's shape, not a lab shortcut: the hub is ``render_hub_config``
with a leaf user per node, each node is ``render_config`` with its own
passwords and ``leaf_url``/``leaf_password`` (the user is the default
``leaf-<node>``, which also gives it its JetStream domain).  Used by
``tests/lab/test_fleet.py`` (the fleet view) and ``tests/nats/test_fleet_isolation.py``
(what one node may not do to another).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg

from shared.bus.provision import node_plan
from shared.lab.nats import NatsServer, free_port
from shared.nats_hub import FLEET_ADMIN, READER, FleetNode, HubTls, parse_nodes, render_hub_config
from shared.nats_passwords import generate_password
from shared.nats_users import ADMIN, generate_passwords, nats_url, render_config
from shared.settings import NatsServerSettings


@dataclass
class FleetSecrets:
    """Every password of a fleet: the hub's users (one leaf user per node) and each node's users."""

    nodes: Sequence[str]
    hub: dict[str, str] = field(default_factory=dict)
    node: dict[str, dict[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.fleet = parse_nodes([",".join(self.nodes)])
        self.hub = {FLEET_ADMIN: generate_password(), READER: generate_password()}
        self.hub |= {n.user: generate_password() for n in self.fleet}
        self.node = {name: generate_passwords() for name in self.nodes}

    def leaf(self, node: str) -> FleetNode:
        return next(n for n in self.fleet if n.name == node)


class Fleet:
    """The hub and the nodes' servers, and how to reach each as a given user."""

    def __init__(self, secrets: FleetSecrets, hub: NatsServer, leaf_port: int, http_port: int) -> None:
        self.secrets = secrets
        self.hub = hub
        self.leaf_port = leaf_port
        self.http_port = http_port
        self.nodes: dict[str, NatsServer] = {}

    def leafz(self) -> list[dict[str, object]]:
        """The hub's leaf connections (its monitoring endpoint): who is joined, as which user."""
        url = f"http://127.0.0.1:{self.http_port}/leafz"
        with urllib.request.urlopen(url, timeout=5) as reply:
            return list(json.load(reply).get("leafs") or [])

    def url(self, node: str, user: str = ADMIN) -> str:
        """``nats://user:password@`` of a node's server (``--nats`` for the operator commands)."""
        return nats_url(user, self.secrets.node[node][user], port=self.nodes[node].port)

    def hub_url(self, user: str = FLEET_ADMIN) -> str:
        return nats_url(user, self.secrets.hub[user], port=self.hub.port)

    def node_settings(self, node: str, **extra: str) -> NatsServerSettings:
        """What docs/operations.md "Fleet" has an operator set on a node: the hub and its leaf password."""
        password = self.secrets.hub[self.secrets.leaf(node).user]
        options = {"leaf_url": f"nats-leaf://127.0.0.1:{self.leaf_port}", "leaf_password": password}
        return NatsServerSettings(**(options | extra))

    def start_node(
        self,
        workdir: Path,
        node: str,
        config: str | None = None,
        port: int | None = None,
        settings: NatsServerSettings | None = None,
    ) -> NatsServer:
        """Node ``node``'s server on its generated config (``settings``: else :meth:`node_settings`).

        ``config``: a hand-written config instead, listening on ``port``.
        """
        port = port or free_port()
        work = workdir / node
        text = config or render_config(
            node,
            self.secrets.node[node],
            port=port,
            store_dir=str(work / "js"),
            server=settings or self.node_settings(node),
        )
        self.nodes[node] = NatsServer(work, port=port, name=node, config=text)
        self.nodes[node].start()
        if config is None:  # what lifeline up does before its services start: the admin provisions
            self.nodes[node].provision_now(
                node_plan(node), user=ADMIN, password=self.secrets.node[node][ADMIN]
            )
        return self.nodes[node]

    def kill(self) -> None:
        for server in [*self.nodes.values(), self.hub]:
            server.kill()


@contextlib.contextmanager
def running_fleet(
    workdir: Path, nodes: Sequence[str], tls: HubTls | None = None, start: bool = True
) -> Iterator[Fleet]:
    """The hub with a leaf user per node, then (``start``) every node as its leaf; all killed at the end."""
    secrets = FleetSecrets(nodes)
    leaf_port, hub_port, http_port = free_port(), free_port(), free_port()
    text = render_hub_config(
        secrets.hub,
        secrets.fleet,
        host="127.0.0.1",
        port=hub_port,
        leaf_port=leaf_port,
        store_dir=str(workdir / "hub" / "js"),
        tls=tls,
        http_port=http_port,
    )
    hub = NatsServer(workdir / "hub", port=hub_port, name="hub", config=text)
    fleet = Fleet(secrets, hub, leaf_port, http_port)
    try:
        fleet.hub.start()
        for node in nodes if start else ():
            fleet.start_node(workdir, node)
        yield fleet
    finally:
        fleet.kill()


class Login:
    """A connection as one user, with the asynchronous errors (permission violations) the server sent."""

    def __init__(self, nc: Client, errors: list[str]) -> None:
        self.nc = nc
        self.errors = errors

    def violated(self, subject: str) -> bool:
        return any("permissions violation" in e.lower() and subject.lower() in e.lower() for e in self.errors)


@contextlib.asynccontextmanager
async def login(url: str, name: str = "pytest") -> AsyncIterator[Login]:
    errors: list[str] = []

    async def error_cb(exc: Exception) -> None:
        errors.append(str(exc))

    nc = await nats.connect(url, name=name, error_cb=error_cb, allow_reconnect=False)
    try:
        yield Login(nc, errors)
    finally:
        with contextlib.suppress(Exception):
            await nc.close()


def collector(into: list[Msg]) -> Callable[[Msg], Awaitable[None]]:
    async def cb(msg: Msg) -> None:
        into.append(msg)

    return cb


@contextlib.asynccontextmanager
async def fleet_probe(
    fleet: Fleet, hub: Client, nodes: Sequence[str] | None = None
) -> AsyncIterator[Callable[[], Awaitable[bool]]]:
    """A probe for ``await_until``: true once each node's admin reached ``hub`` (leafs up, interest known).

    ``hub`` subscribes to ``lifeline.*.probe``; each call publishes a probe on
    every node not seen yet, as that node's admin (its own subject).
    """
    names = list(nodes or fleet.nodes)
    seen: set[str] = set()

    async def on_probe(msg: Msg) -> None:
        seen.add(msg.subject.split(".")[1])

    sub = await hub.subscribe("lifeline.*.probe", cb=on_probe)
    await hub.flush()
    admins: dict[str, Client] = {}
    try:
        for node in names:
            admins[node] = await nats.connect(fleet.url(node), allow_reconnect=False)

        async def probe() -> bool:
            for node, nc in admins.items():
                if node not in seen:
                    await nc.publish(f"lifeline.{node}.probe", b"")
                    await nc.flush()
            return seen >= set(names)

        yield probe
    finally:
        await sub.unsubscribe()
        for nc in admins.values():
            await nc.close()


class RawLeaf:
    """A hostile "node server": the leaf-node protocol spoken by hand, so no node-side check applies.

    A real nats-server also enforces, on its own side, the permissions the hub
    sends it; a compromised node would not.  This speaks CONNECT, ``LS+``
    (interest: what it wants the hub to send down) and ``LMSG`` (a message up)
    directly, so whatever it achieves is what the hub itself lets through.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.lines: list[str] = []
        self.closed = False
        self._task = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, port: int, user: str | None, password: str | None) -> RawLeaf:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await reader.readline()  # the hub's INFO
        creds = {"user": user, "pass": password} if user else {}
        connect = {"name": "rogue", "headers": True, **creds}
        writer.write(f"CONNECT {json.dumps(connect)}\r\nPING\r\n".encode())
        await writer.drain()
        return cls(reader, writer)

    async def _read(self) -> None:
        while line := await self.reader.readline():
            text = line.decode(errors="replace").rstrip("\r\n")
            self.lines.append(text)
            if text == "PING":
                self.writer.write(b"PONG\r\n")
        self.closed = True

    async def send(self, *lines: str) -> None:
        self.writer.write("".join(f"{line}\r\n" for line in lines).encode())
        await self.writer.drain()

    async def interest(self, *subjects: str) -> None:
        await self.send(*(f"LS+ {subject}" for subject in subjects), "PING")

    async def publish(self, subject: str, payload: str = "forged") -> None:
        await self.send(f"LMSG {subject} {len(payload)}", payload)

    def received(self) -> list[str]:
        """Subjects of the messages the hub sent down."""
        return [line.split()[1] for line in self.lines if line.startswith("LMSG ")]

    def errors(self) -> list[str]:
        return [line for line in self.lines if line.startswith("-ERR")]

    async def close(self) -> None:
        self._task.cancel()
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()
