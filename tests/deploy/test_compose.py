"""compose.yaml for real: podman, two network-namespace nodes, failover, a crash, a clean teardown.

Each node is a network namespace on one bridge; ``podman-compose`` runs the
whole compose file in it (``nsenter --net``, so ``network_mode: host`` means
the node's network).  The nodes run the seed's first example (host a MASTER
priority 20, host b BACKUP 15).  The test shows: A takes the VIP; cutting A's
link hands it to B; a crashed service container (SIGKILL of its process) is
restarted by its restart policy with no VRRP transition in the event stream;
``down -v`` leaves no container, volume or address behind.  Passwords fail
closed: compose refuses to run a node whose ``.env`` lacks one.

Set-up (apt packages, podman-compose, the debootstrap base image) is
``deploy/test-setup.sh``; the base is cached in /var/cache/lifeline.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.lab.wait import wait_until
from shared.nats_passwords import generate_password
from shared.nats_users import SERVICE_USERS

pytestmark = [pytest.mark.root, pytest.mark.timeout(480)]

REPO = Path(__file__).parents[2]
VENV_BIN = Path(sys.executable).parent
IMAGE = "localhost/lifeline:test"
BASE = os.environ.get("LIFELINE_BASE", "localhost/lifeline-base:bookworm")
VIP = "172.16.0.100"
CONF = str(REPO / "deploy" / "containers.conf")
USERS = ("ADMIN", *(user.upper() for user in SERVICE_USERS))
"""Every password compose requires (one per service user, and the admin's)."""
ENV = {**os.environ, "CONTAINERS_CONF": CONF}
STEP = 0.3
"""Seconds between two looks at podman or the stream (each look is a podman command)."""

# Counts the node's VRRP state events in the stream, as admin, from inside the nats container.
COUNT_EVENTS = """
import asyncio, json, os, nats
async def main():
    nc = await nats.connect("nats://127.0.0.1:4222", user="admin",
                            password=os.environ["LIFELINE_NATS_PASSWORD_ADMIN"])
    info = await nc.jetstream().stream_info("LIFELINE_EVENTS", subjects_filter="lifeline.*.vrrp.>")
    print(json.dumps(info.state.subjects or {}))
    await nc.close()
asyncio.run(main())
"""


def run(*argv: str, check: bool = True, timeout: float = 300, **kw: object) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, env=ENV, timeout=timeout, check=False, **kw)  # type: ignore[call-overload]
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return str(proc.stdout)


@pytest.fixture(scope="module")
def podman() -> None:
    """podman, podman-compose and the base image (deploy/test-setup.sh; cached after the first run)."""
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces, podman)")
    setup = subprocess.run(
        [str(REPO / "deploy" / "test-setup.sh"), str(VENV_BIN.parent)],
        check=False,
        capture_output=True,
        text=True,
    )
    if setup.returncode != 0 and shutil.which("podman") is None:
        pytest.skip(f"podman cannot be installed here: {setup.stderr[-500:]}")
    assert setup.returncode == 0, setup.stderr


@pytest.fixture(scope="module")
def image(podman: None) -> str:
    started = time.monotonic()
    run(
        "podman",
        "build",
        "--network",
        "host",
        "-q",
        "-t",
        IMAGE,
        "--build-arg",
        f"BASE={BASE}",
        "-v",
        "/etc/ssl/certs/ca-certificates.crt:/run/host-ca.crt:ro",
        "--build-arg",
        "PIP_CERT=/run/host-ca.crt",
        str(REPO),
        timeout=400,
    )
    print(f"image build: {time.monotonic() - started:.1f} s")
    return IMAGE


class Node:
    def __init__(self, lab: str, name: str, workdir: Path, conf: str, address: str) -> None:
        self.name = name
        self.project = f"{lab}-{name}"
        self.netns = f"{lab}-{name}"
        self.workdir = workdir
        self.address = address
        shutil.copy(REPO / "docs" / "examples" / conf, workdir / "keepalived.conf")
        env = {
            "LIFELINE_NODE": name,
            "LIFELINE_IMAGE": IMAGE,
            "LIFELINE_KEEPALIVED_DIR": str(workdir),
            "LIFELINE_CONFIG_FILE": "keepalived.conf",
            "LIFELINE_SETTINGS_FILE": str(REPO / "deploy" / "lifeline.toml"),
            "LIFELINE_CHECKER_USER": "lifeline",
            **{f"LIFELINE_NATS_PASSWORD_{u}": generate_password() for u in USERS},
        }
        self.env_file = workdir / ".env"
        self.env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))

    def compose(self, *args: str, check: bool = True) -> str:
        return run(
            "nsenter",
            f"--net=/run/netns/{self.netns}",
            str(VENV_BIN / "podman-compose"),
            "-f",
            str(REPO / "compose.yaml"),
            "--env-file",
            str(self.env_file),
            "-p",
            self.project,
            *args,
            check=check,
        )

    def container(self, service: str) -> str:
        return f"{self.project}_{service}_1"

    def inspect(self, service: str, fmt: str) -> str:
        return run("podman", "inspect", self.container(service), "--format", fmt).strip()

    def healthy(self, service: str) -> bool:
        out = subprocess.run(
            [
                "nsenter",
                f"--net=/run/netns/{self.netns}",
                "podman",
                "healthcheck",
                "run",
                self.container(service),
            ],
            capture_output=True,
            text=True,
            env=ENV,
            check=False,
        )
        return out.returncode == 0

    def has_vip(self) -> bool:
        out = run("ip", "-n", self.netns, "-o", "addr", "show", "dev", "eth0")
        return f" {VIP}/" in out

    def vrrp_events(self) -> dict[str, int]:
        # exec must enter the node's network too: a host-network container has no namespace of its own
        out = run(
            "nsenter",
            f"--net=/run/netns/{self.netns}",
            "podman",
            "exec",
            self.container("nats"),
            "python",
            "-c",
            COUNT_EVENTS,
        )
        counts: dict[str, int] = json.loads(out)
        return counts

    def state_lines(self) -> list[str]:
        proc = subprocess.run(
            ["podman", "logs", self.container("vrrp")], capture_output=True, text=True, env=ENV, check=True
        )
        return [line for line in (proc.stdout + proc.stderr).splitlines() if "Entering" in line]


@pytest.fixture
def lab(image: str, tmp_path: Path) -> Iterator[tuple[Node, Node]]:
    tag = f"llc{uuid.uuid4().hex[:5]}"
    sw = f"{tag}-sw"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = Node(tag, "node-a", tmp_path / "a", "archwiki-1-host-a.conf", "172.16.0.1/24")
    b = Node(tag, "node-b", tmp_path / "b", "archwiki-1-host-b.conf", "172.16.0.2/24")
    nodes = (a, b)
    try:
        run("ip", "netns", "add", sw)
        run("ip", "-n", sw, "link", "add", "br0", "type", "bridge")
        run("ip", "-n", sw, "link", "set", "br0", "up")
        for i, node in enumerate(nodes):
            run("ip", "netns", "add", node.netns)
            run(
                "ip",
                "link",
                "add",
                "eth0",
                "netns",
                node.netns,
                "type",
                "veth",
                "peer",
                "name",
                f"p{i}",
                "netns",
                sw,
            )
            run("ip", "-n", sw, "link", "set", f"p{i}", "master", "br0", "up")
            run("ip", "-n", node.netns, "link", "set", "lo", "up")
            run("ip", "-n", node.netns, "link", "set", "eth0", "up")
            run("ip", "-n", node.netns, "addr", "add", node.address, "dev", "eth0")
        yield a, b
    finally:
        for node in nodes:
            if Path(f"/run/netns/{node.netns}").exists():
                node.compose("down", "-v", "-t", "5", check=False)
            run("ip", "netns", "del", node.netns, check=False)
        run("ip", "netns", "del", sw, check=False)


def test_compose_pair_fails_over_and_restarts_a_crashed_service(lab: tuple[Node, Node]) -> None:
    a, b = lab
    started = time.monotonic()
    a.compose("up", "-d")
    b.compose("up", "-d")
    print(f"compose up (2 nodes): {time.monotonic() - started:.1f} s")
    services = ("nats", "vrrp", "checker", "notifier", "http")
    for node in lab:
        for service in services:
            running = lambda n=node, s=service: n.inspect(s, "{{.State.Status}}") == "running"  # noqa: E731
            wait_until(f"{node.name} {service} running", running, 20, STEP)
            # `init: true`: PID 1 of the container is the init (it reaps what scripts leave), not the service
            assert node.inspect(service, "{{.HostConfig.Init}}") == "true"
            pid1 = Path(f"/proc/{node.inspect(service, '{{.State.Pid}}')}/comm").read_text().strip()
            assert pid1 not in ("python", "python3", "nats-server", "sh"), pid1
    took = wait_until("A holds the VIP", a.has_vip, 30, STEP)
    print(f"A MASTER {took:.1f} s after compose up")
    assert not b.has_vip()
    wait_until("B's BACKUP event in its stream", lambda: bool(b.vrrp_events()), 20, STEP)
    # the compose healthchecks (`lifeline health SERVICE --local`: the liveness file, no bus)
    for service in ("nats", "vrrp", "checker", "notifier", "http"):
        wait_until(f"{service} healthy", lambda s=service: b.healthy(s), 20, STEP)

    # A crashed service container is restarted, and VRRP does not move.
    before = b.vrrp_events()
    for service in ("notifier", "checker"):
        pid = int(b.inspect(service, "{{.State.Pid}}"))
        os.kill(pid, 9)
        wait_until(
            f"{service} restarted",
            lambda s=service, p=pid: (
                b.inspect(s, "{{.State.Status}}") == "running"
                and int(b.inspect(s, "{{.State.Pid}}")) not in (0, p)
            ),
            30,
            STEP,
        )
        assert int(b.inspect(service, "{{.RestartCount}}")) >= 1
    time.sleep(3)  # several adverts
    assert b.vrrp_events() == before, "a service restart caused a VRRP transition"
    assert a.has_vip() and not b.has_vip()
    assert b.inspect("vrrp", "{{.RestartCount}}") == "0"

    # Cut A's link: B takes over.
    run("ip", "-n", a.netns, "link", "set", "eth0", "down")
    took = wait_until("B holds the VIP", b.has_vip, 15, STEP)
    print(f"failover: B MASTER {took:.1f} s after A's link went down")
    wait_until("B's MASTER event", lambda: sum(b.vrrp_events().values()) > sum(before.values()), 10, STEP)
    assert any("MASTER" in line for line in b.state_lines())

    # Tear down clean.
    for node in lab:
        node.compose("down", "-v", "-t", "5")
        left = run("podman", "ps", "-a", "--filter", f"label=io.podman.compose.project={node.project}", "-q")
        assert not left.strip()
        vols = run("podman", "volume", "ls", "-q")
        assert node.project not in vols
    assert not b.has_vip()


@pytest.mark.parametrize("missing", ["unset", "empty"])
def test_compose_refuses_a_node_without_a_password(podman: None, tmp_path: Path, missing: str) -> None:
    """``${VAR:?...}``: no container is created with an empty password (``config`` resolves every one)."""
    env = {f"LIFELINE_NATS_PASSWORD_{u}": generate_password() for u in USERS}
    env["LIFELINE_NATS_PASSWORD_CHECKER"] = ""
    if missing == "unset":
        del env["LIFELINE_NATS_PASSWORD_CHECKER"]
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    argv = [str(VENV_BIN / "podman-compose"), "-f", str(REPO / "compose.yaml"), "--env-file", str(env_file)]
    clean = {k: v for k, v in ENV.items() if not k.startswith("LIFELINE_")}
    done = subprocess.run(
        [*argv, "config"], capture_output=True, text=True, env=clean, timeout=60, check=False
    )
    assert done.returncode != 0
    assert "LIFELINE_NATS_PASSWORD_CHECKER" in done.stderr and "docs/deploy.md" in done.stderr, done.stderr
    env["LIFELINE_NATS_PASSWORD_CHECKER"] = generate_password()  # the positive control: complete, it resolves
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    done = subprocess.run(
        [*argv, "config"], capture_output=True, text=True, env=clean, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert env["LIFELINE_NATS_PASSWORD_CHECKER"] in done.stdout
