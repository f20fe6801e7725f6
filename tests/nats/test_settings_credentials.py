"""Services log in with the credentials of lifeline.toml / ``LIFELINE_NATS_*``, not only a URL's.

Against a real nats-server running the generated per-service users (and, in
one test, TLS with client certificates): the checker and the notifier run as
real processes (``python -m services.<name>``) whose only credentials are in
their environment or in a lifeline.toml, and prove it by answering their
status endpoint to the admin.  The checker's real-server heartbeats also carry
the probe's latency all the way to ``lifeline metrics``
(``keepalived_lvs_rs_check_latency_seconds``).
"""

from __future__ import annotations

import os
import re
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import nats.errors
import pytest
from nats.aio.client import Client

from shared.bus.connect import connect, tls_context
from shared.bus.provision import node_plan
from shared.cli.metrics_collect import Collector
from shared.events import status_subject
from shared.lab.daemon import Daemon
from shared.lab.nats import NatsServer, free_port
from shared.lab.wait import await_until
from shared.nats_users import ADMIN, generate_passwords, render_config
from shared.settings import NatsServerSettings, Settings
from tests.unit.test_nats_users_config import make_certs

pytestmark = pytest.mark.nats

NODE = "cred-node"
PASSWORDS = generate_passwords()


def generated_server(workdir: Path, server: NatsServerSettings | None = None) -> NatsServer:
    """A nats-server from ``render_config``: the deployment's users, optionally TLS."""
    port = free_port()
    text = render_config(NODE, PASSWORDS, port=port, store_dir=str(workdir / "js"), server=server)
    return NatsServer(workdir, port=port, name=NODE, config=text)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[NatsServer]:
    srv = generated_server(tmp_path / "nats")
    srv.start()
    srv.provision_now(node_plan(NODE), user=ADMIN, password=PASSWORDS[ADMIN])  # as the admin would
    try:
        yield srv
    finally:
        srv.kill()


@pytest.fixture
async def admin(server: NatsServer) -> AsyncIterator[Client]:
    nc = await nats.connect(server.url, user=ADMIN, password=PASSWORDS[ADMIN])
    try:
        yield nc
    finally:
        await nc.close()


def spawn(module: str, conf: Path, url: str, env: dict[str, str], log: Path) -> Daemon:
    base = {k: v for k, v in os.environ.items() if not k.startswith("LIFELINE_") or k == "LIFELINE_STATE_DIR"}
    argv = [sys.executable, "-m", module, "--config", str(conf), "--node", NODE, "--nats", url]
    return Daemon(argv, log, env=base | env).start()


async def answers_status(admin: Client, service: str, daemon: Daemon) -> bytes:
    """The service's status reply, once it is on the bus (generous: interpreter start-up included)."""

    async def status() -> bytes | None:
        assert daemon.running, daemon.output()
        try:
            return (await admin.request(status_subject(NODE, service), b"", timeout=1)).data
        except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
            return None

    await await_until(f"{service} to answer its status", status, 30, step=0.2, explain=daemon.output)
    reply = await status()
    assert reply is not None
    return reply


@pytest.fixture
def tcp_server() -> Iterator[int]:
    """A listening TCP socket: the real server a TCP_CHECK connects to."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield int(sock.getsockname()[1])


def lvs_conf(tmp_path: Path, port: int) -> Path:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(
        f"""
virtual_server 127.0.0.1 {port} {{
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 127.0.0.1 {port} {{
        weight 1
        TCP_CHECK {{
            connect_timeout 2
        }}
    }}
}}
"""
    )
    return conf


async def test_checker_logs_in_from_environment_and_its_latency_reaches_metrics(
    server: NatsServer, admin: Client, tmp_path: Path, tcp_server: int
) -> None:
    log = tmp_path / "checker.log"
    env = {"LIFELINE_NATS_USER": "checker", "LIFELINE_NATS_PASSWORD": PASSWORDS["checker"]}
    checker = spawn("services.checker", lvs_conf(tmp_path, tcp_server), server.url, env, log)
    try:
        assert b'"service":"checker"' in await answers_status(admin, "checker", checker)
        collector = Collector(admin, NODE)
        pattern = re.compile(r"^keepalived_lvs_rs_check_latency_seconds\{.*\} (\S+)$", re.M)
        found: list[str] = []

        async def latency() -> bool:
            found[:] = pattern.findall(await collector.scrape())
            return bool(found)

        await await_until("the check latency in the metrics", latency, 20, step=0.2, explain=checker.output)
        assert 0 < float(found[0]) < 2.0  # a real connect on loopback: measured, and below the timeout
    finally:
        checker.stop()


async def test_notifier_logs_in_from_lifeline_toml(
    server: NatsServer, admin: Client, tmp_path: Path, tcp_server: int
) -> None:
    settings = tmp_path / "lifeline.toml"
    settings.write_text(f'nats_user = "notifier"\nnats_password = "{PASSWORDS["notifier"]}"\n')
    log = tmp_path / "notifier.log"
    notifier = spawn(
        "services.notifier",
        lvs_conf(tmp_path, tcp_server),
        server.url,
        {"LIFELINE_SETTINGS": str(settings)},
        log,
    )
    try:
        assert b'"service":"notifier"' in await answers_status(admin, "notifier", notifier)
    finally:
        notifier.stop()


async def test_wrong_password_is_refused(server: NatsServer) -> None:
    """The positive tests above can fail: without the right password the server says no."""
    with pytest.raises((nats.errors.Error, OSError)):
        await nats.connect(server.url, user="checker", password="wrong", allow_reconnect=False)


async def test_tls_with_client_certificate_from_settings(tmp_path: Path) -> None:
    certs = make_certs(tmp_path)
    opts = NatsServerSettings(
        tls_cert=str(certs["server"]),
        tls_key=str(certs["server-key"]),
        tls_ca=str(certs["ca"]),
        tls_verify=True,
    )
    srv = generated_server(tmp_path / "nats", opts)
    srv.start()
    url = f"tls://127.0.0.1:{srv.port}"
    try:
        settings = Settings(
            node=NODE,
            nats_url=url,
            nats_user="vrrp",
            nats_password=PASSWORDS["vrrp"],
            nats_tls_ca=str(certs["ca"]),
            nats_tls_cert=str(certs["client"]),
            nats_tls_key=str(certs["client-key"]),
        )
        nc = await connect(url, "pytest-tls", settings=settings)
        try:
            reply = await nc.request("$JS.API.STREAM.INFO.LIFELINE_EVENTS", b"", timeout=2)  # vrrp may
            assert b"stream_info_response" in reply.data
        finally:
            await nc.close()
        # without the client certificate the server refuses the handshake
        no_cert = Settings(node=NODE, nats_url=url, nats_tls_ca=str(certs["ca"]))
        with pytest.raises((nats.errors.Error, OSError)):
            await nats.connect(url, tls=tls_context(no_cert), allow_reconnect=False, connect_timeout=2)
    finally:
        srv.kill()
