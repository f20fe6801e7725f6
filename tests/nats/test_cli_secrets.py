"""Operator commands keep secrets to themselves, and ``lifeline metrics`` listens on loopback by default.

``status`` is run through ``shared.cli.main.main`` (what the console script
runs); ``metrics`` as a real process (``python -m shared.cli.main metrics``)
on a real nats-server, looked at from outside: the kernel's table of listening
sockets, connections to this machine's addresses, and the status requests its
scrapes send on the bus.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from nats.aio.client import Client

from shared.cli.main import main
from shared.events import Service, status_subject
from shared.lab.daemon import Daemon
from shared.lab.nats import NatsServer, free_port
from shared.lab.wait import await_until

pytestmark = pytest.mark.nats

R = "<redacted>"


@pytest.mark.parametrize(
    ("userinfo", "shown"), [("admin:St-Pw-4411", f"admin:{R}"), ("Tok-En-5522", R)], ids=["password", "token"]
)
def test_status_cannot_reach_error_hides_the_url_credentials(
    capsys: pytest.CaptureFixture[str], userinfo: str, shown: str
) -> None:
    port = free_port()
    code = main(["status", "--nats", f"nats://{userinfo}@127.0.0.1:{port}"])
    out, err = capsys.readouterr()
    assert code == 69 and out == ""
    assert err.startswith(f"lifeline: cannot reach NATS at nats://{shown}@127.0.0.1:{port}: ")
    assert userinfo.rpartition(":")[2] not in err


def test_status_cannot_reach_error_hides_the_settings_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The password of lifeline.toml is registered: even a URL that repeats it verbatim shows none."""
    settings = tmp_path / "lifeline.toml"
    port = free_port()
    settings.write_text(
        f'nats_url = "nats://127.0.0.1:{port}/St-Pw-6633"\n'
        'nats_user = "admin"\nnats_password = "St-Pw-6633"\n'
    )
    assert main(["status", "--settings", str(settings)]) == 69
    err = capsys.readouterr().err
    assert "St-Pw-6633" not in err and f"127.0.0.1:{port}/{R}" in err


# --------------------------------------------------------------------------- lifeline metrics


def listening(port: int) -> set[str]:
    """IPv4 addresses with a TCP socket listening on ``port``, from the kernel (``/proc/net/tcp``)."""
    found: set[str] = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        address, _, hex_port = fields[1].partition(":")
        if int(hex_port, 16) == port and fields[3] == "0A":  # 0A: LISTEN
            found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


def own_addresses() -> list[str]:
    """This machine's IPv4 addresses other than loopback."""
    shown = subprocess.run(["ip", "-j", "-4", "addr"], capture_output=True, text=True, check=True).stdout
    return [
        a["local"]
        for link in json.loads(shown)
        for a in link.get("addr_info", [])
        if not a["local"].startswith("127.")
    ]


def connects(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=2):
            return True
    except OSError:
        return False


Start = Callable[..., tuple[Daemon, int]]


@pytest.fixture
def metrics(tmp_path: Path, nats_server: NatsServer, node: str) -> Iterator[Start]:
    """``start(*flags)`` runs ``lifeline metrics`` for ``node`` on a free port: (daemon, port)."""
    started: list[Daemon] = []

    def start(*flags: str) -> tuple[Daemon, int]:
        port = free_port()
        settings = tmp_path / "empty.toml"
        settings.write_text("")
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIFELINE_")}
        argv = [sys.executable, "-m", "shared.cli.main", "metrics", "--nats", nats_server.url]
        argv += ["--settings", str(settings), "--node", node, "--port", str(port), *flags]
        daemon = Daemon(argv, tmp_path / f"metrics-{port}.log", env=env).start()
        started.append(daemon)
        return daemon, port

    try:
        yield start
    finally:
        for daemon in started:
            daemon.stop()


async def test_metrics_listen_on_loopback_by_default(metrics: Start) -> None:
    daemon, port = metrics()
    await await_until("the listening line", lambda: "lifeline metrics for node" in daemon.output(), 30)
    assert f"on http://127.0.0.1:{port}/metrics" in daemon.output()
    assert listening(port) == {"127.0.0.1"}
    assert connects("127.0.0.1", port)
    for address in own_addresses():
        assert not connects(address, port), f"reachable on {address}"


async def test_metrics_listen_wider_with_listen(metrics: Start) -> None:
    addresses = own_addresses()
    if not addresses:
        pytest.skip("this machine has no address but loopback")
    daemon, port = metrics("--listen", "0.0.0.0")
    await await_until("the listening line", lambda: "lifeline metrics for node" in daemon.output(), 30)
    assert listening(port) == {"0.0.0.0"}
    assert connects(addresses[0], port)  # so the refusal above is the bind, not a firewall


async def get(port: int) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    response = (await reader.read()).decode()
    writer.close()
    return response


async def test_rapid_gets_cause_one_bus_scrape(metrics: Start, nc: Client, node: str) -> None:
    """Every scrape asks each service's status once; nobody answers here, so a scrape lasts >= 1 s."""
    asked: list[str] = []

    async def count(msg: object) -> None:
        asked.append(getattr(msg, "subject", ""))

    subs = [await nc.subscribe(status_subject(node, s.value), cb=count) for s in Service]
    await nc.flush()
    daemon, port = metrics()
    await await_until("the listening line", lambda: "lifeline metrics for node" in daemon.output(), 30)
    gets: list[asyncio.Task[str]] = []

    def scraping() -> bool:  # one more GET per probe, until one of them makes a scrape that reaches the bus
        gets.append(asyncio.create_task(get(port)))
        return bool(asked)

    await await_until("a scrape reaching the bus", scraping, 30, step=0.05)
    responses = await asyncio.gather(*gets, *(get(port) for _ in range(20)))
    for sub in subs:
        await sub.unsubscribe()
    assert all(r.startswith("HTTP/1.1 200") for r in responses)
    assert sorted(asked) == sorted(status_subject(node, s.value) for s in Service), asked
    bodies = {r.split("\r\n\r\n", 1)[1] for r in responses[-20:]}
    assert len(bodies) == 1 and "lifeline_bus_up 1" in bodies.pop()  # the twenty shared that one scrape
