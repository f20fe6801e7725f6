"""Fixtures for the tests that run *inside* the VM (``LIFELINE_IN_VM=1``); never collected on the host.

One session: the lab, a nats-server per node on the generated per-service
users (``shared.nats_users``, provisioned by the admin first as ``lifeline up``
does), lvs "a" on the seed's third example with the real checker following
its TCP_CHECKs, lvs "b" on ``scenario.conf`` whose health the tests drive by
publishing ``RealServerHealth`` themselves as admin.  Every lvs logs in as
user ``lvs`` and the checker as ``checker``: the IPVS tests prove those users'
rights are enough to do the job.
All Python daemons start together at session start: under emulation each
costs ~20 s, so they overlap instead of queueing.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from shared.bus.provision import node_plan
from shared.lab.nats import NatsServer, free_port
from shared.lab.wait import wait_until
from shared.nats_users import ADMIN, generate_passwords, render_config
from tests.kernel.inside.lab import LOG_STEP, Daemon, Lab

IN_VM = os.environ.get("LIFELINE_IN_VM") == "1"
if not IN_VM:
    collect_ignore_glob = ["test_*.py"]

REPO = Path(__file__).resolve().parents[3]
ARCHWIKI = REPO / "docs" / "examples" / "archwiki-3-lvs-host-a.conf"
SCENARIO = Path(__file__).with_name("scenario.conf")
OUT = Path(os.environ.get("LIFELINE_VM_OUT", "/tmp"))
PASSWORDS = generate_passwords()


def login(user: str) -> dict[str, str]:
    """A service's environment: its own NATS user, as ``lifeline up`` and compose give it."""
    return {"LIFELINE_NATS_USER": user, "LIFELINE_NATS_PASSWORD": PASSWORDS[user]}


def node_server(workdir: Path, node: str) -> NatsServer:
    """Node ``node``'s nats-server on the generated users, provisioned as admin."""
    port = free_port()
    text = render_config(node, PASSWORDS, port=port, store_dir=str(workdir / f"js-{node}"))
    server = NatsServer(workdir / f"nats-{node}", port=port, name=node, config=text)
    server.start(timeout=180)  # under emulation a cold nats-server takes its time
    server.provision_now(node_plan(node), user=ADMIN, password=PASSWORDS[ADMIN], timeout=180)
    return server


@dataclass
class Env:
    lab: Lab
    servers: dict[str, NatsServer]
    workdir: Path
    lvs_a: Daemon
    lvs_b: Daemon
    checker_a: Daemon | None
    scenario: Path
    """lvs b's config file (a writable copy the reload test edits)."""
    results: dict[str, object]
    daemons: list[Daemon] = field(default_factory=list)

    def start_lvs_b(self, *, keep: bool) -> Daemon:
        argv = [sys.executable, "-m", "services.lvs", "--config", str(self.scenario), "--node", "b"]
        argv += ["--nats", self.servers["b"].url, "--state-file", str(self.workdir / "lvs-b.json")]
        self.lvs_b = Daemon(
            f"lvs-b-{len(self.results)}", [*argv, *(["--keep"] if keep else [])], self.workdir, login("lvs")
        )
        return self.lvs_b

    def record(self, key: str, value: object) -> None:
        """Numbers for bench/RESULTS-lvs.md, written next to the junit XML."""
        self.results[key] = value
        (OUT / "kernel-results.json").write_text(json.dumps(self.results, indent=2))

    def publish(self, node: str, events: list[object]) -> None:
        asyncio.run(_publish(self.servers[node].url, node, events))

    def status(self, node: str) -> dict[str, object]:
        return asyncio.run(_status(self.servers[node].url, node))

    def last_reload(self, node: str, service: str) -> dict[str, object]:
        """The service's last ``ServiceReload`` (its KV key), as JSON."""
        return asyncio.run(_last_reload(self.servers[node].url, node, service))

    def pool_events(self, node: str, virtual: str) -> list[dict[str, object]]:
        """Every PoolEvent of one virtual server in the JetStream event stream, oldest first."""
        return asyncio.run(_pool_events(self.servers[node].url, node, virtual))


async def _admin(url: str) -> Any:
    import nats

    return await nats.connect(url, user=ADMIN, password=PASSWORDS[ADMIN], inbox_prefix="_INBOX_admin")


async def _publish(url: str, node: str, events: list[object]) -> None:
    from shared.events import MSG_ID_HEADER, encode, subject_for

    nc = await _admin(url)
    for n, event in enumerate(events):
        # ts is stamped as the message leaves: the service's health_to_kernel_ms starts here.
        stamped = event.__class__(**{**_fields(event), "node": node, "ts": time.time_ns()})  # type: ignore[call-arg]
        headers = {MSG_ID_HEADER: f"kernel-test:{time.monotonic_ns()}:{n}"}  # as a Publisher sends it
        await nc.publish(subject_for(stamped), encode(stamped), headers=headers)  # type: ignore[arg-type]
    await nc.flush()
    await nc.close()


def _fields(event: object) -> dict[str, object]:
    import msgspec

    return msgspec.structs.asdict(event)  # type: ignore[arg-type]


async def _status(url: str, node: str) -> dict[str, object]:
    from shared.events import status_subject

    nc = await _admin(url)
    try:
        reply = await nc.request(status_subject(node, "lvs"), b"", timeout=30)
    finally:
        await nc.close()
    return json.loads(reply.data)  # type: ignore[no-any-return]


async def _last_reload(url: str, node: str, service: str) -> dict[str, object]:
    from shared.events import STATE_BUCKET, kv_key_for_subject, service_reload_subject

    nc = await _admin(url)
    try:
        kv = await nc.jetstream().key_value(STATE_BUCKET)
        entry = await kv.get(kv_key_for_subject(service_reload_subject(node, service)))
    finally:
        await nc.close()
    return json.loads(entry.value or b"{}")  # type: ignore[no-any-return]


async def _pool_events(url: str, node: str, virtual: str) -> list[dict[str, object]]:
    from shared.events import pool_subject

    nc = await _admin(url)
    out: list[dict[str, object]] = []
    try:
        sub = await nc.jetstream().subscribe(pool_subject(node, virtual), ordered_consumer=True)
        while True:
            try:
                msg = await sub.next_msg(timeout=2)
            except Exception:
                break
            out.append(json.loads(msg.data))
    finally:
        await nc.close()
    return out


@pytest.fixture(scope="session")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    workdir = tmp_path_factory.mktemp("kernel")
    lab = Lab(workdir)
    lab.up()
    servers = {node: node_server(workdir, node) for node in ("a", "b")}
    scenario = workdir / "scenario.conf"
    shutil.copy(SCENARIO, scenario)
    py = sys.executable
    lvs_a = Daemon(
        "lvs-a",
        [
            *(py, "-m", "services.lvs", "--config", str(ARCHWIKI), "--node", "a"),
            *("--nats", servers["a"].url, "--state-file", str(workdir / "lvs-a.json")),
        ],
        workdir,
        login("lvs"),
    )
    # The example names mail.example.net; give the checker (only) a hosts file that resolves it.
    hosts = workdir / "hosts"
    cmd = f"mount --bind {hosts} /etc/hosts && exec {py} -m services.checker"
    cmd += f" --config {ARCHWIKI} --node a --nats {servers['a'].url}"
    checker = Daemon("checker-a", ["unshare", "-m", "sh", "-c", cmd], workdir, login("checker"))
    e = Env(lab, servers, workdir, lvs_a, lvs_a, checker, scenario, {})
    e.start_lvs_b(keep=True)
    for text, timeout in (("lifeline-lvs ready", 180), ("on the bus", 60)):
        for lvs in (e.lvs_a, e.lvs_b):
            what = f"{lvs.name} to log {text!r}"
            wait_until(what, partial(lvs.logged, text), timeout, LOG_STEP, explain=lvs.tail)
    try:
        yield e
    finally:
        for daemon in (e.lvs_a, e.lvs_b, e.checker_a):
            if daemon is not None:
                daemon.stop()
        for server in servers.values():
            server.kill()
        lab.down()
        for daemon in (e.lvs_a, e.checker_a, *e.daemons):
            if daemon is not None:
                (OUT / daemon.log.name).write_text(daemon.output()[-20000:])
