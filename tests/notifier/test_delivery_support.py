"""Helpers for the notifier delivery tests (no tests here): configs, recorder scripts, publishing, waiting."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import nats
from nats.aio.client import Client

from services.notifier.consumers import sink_consumers
from services.notifier.service import NotifierOptions, NotifierService
from shared.bus import Publisher
from shared.bus.provision import node_plan, provision
from shared.config.load import load
from shared.config.model import Config
from shared.events import InstanceState, VrrpState
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]

# Short timings: a test must see retries, redeliveries and lease takeovers within seconds.
FAST = {"ack_wait": 2.0, "initial_delay": 0.05, "max_delay": 0.5, "max_attempts": 0, "jitter": 0.0}


def recorder(path: Path, out: Path, *, sleep: float = 0.0, fail_marker: Path | None = None) -> Path:
    """A notify script appending ``argv... seq=N attempt=A`` to ``out`` (one line, one write)."""
    fail = f'[ -e "{fail_marker}" ] && exit 1\n' if fail_marker is not None else ""
    pause = f"sleep {sleep}\n" if sleep else ""
    path.write_text(
        "#!/bin/sh\n"
        + fail
        + pause
        + f'printf "%s seq=%s attempt=%s\\n" "$*" "$LIFELINE_SEQ" "$LIFELINE_ATTEMPT" >> "{out}"\n'
    )
    path.chmod(0o755)
    return path


def instance_block(name: str, vrid: int, notify: str = "", extra: str = "") -> str:
    return (
        f"vrrp_instance {name} {{\n  state BACKUP\n  interface lo\n  virtual_router_id {vrid}\n"
        f"  priority 100\n  virtual_ipaddress {{\n    10.9.{vrid}.1\n  }}\n"
        + (f'  notify "{notify}"\n' if notify else "")
        + extra
        + "}\n"
    )


def write_config(path: Path, *, global_defs: str = "", instances: Iterable[str] = ()) -> Path:
    path.write_text(f"global_defs {{\n  router_id lab1\n{global_defs}}}\n" + "".join(instances))
    return path


def transition(instance: str, state: VrrpState, priority: int = 100, vrid: int = 51) -> InstanceState:
    return InstanceState(
        instance=instance,
        vrid=vrid,
        interface="lo",
        state=state,
        base_priority=100,
        effective_priority=priority,
    )


def flip(i: int) -> VrrpState:
    return VrrpState.MASTER if i % 2 == 0 else VrrpState.BACKUP


async def publisher(nc: Client, node: str) -> Publisher:
    pub = Publisher(node)
    await pub.start(nc)
    await asyncio.wait_for(pub.ready.wait(), 10)
    return pub


def service(
    conf: Path, node: str, url: str, *, settings: Settings | None = None, **delivery: object
) -> NotifierService:
    config = load(conf).config
    opts = NotifierOptions(health=False, lease_ttl=1.5, delivery={**FAST, **delivery})
    chosen = settings or Settings(node=node, state_dir=str(conf.parent / "state"))  # the notify claims
    return NotifierService(config, chosen, node=node, nats_url=url, options=opts)


async def provision_for(
    url: str,
    config: Config,
    settings: Settings,
    node: str,
    *,
    health: bool = True,
    delivery: dict[str, object] | None = None,
    lease_ttl: float = 1.5,
) -> None:
    """What the admin does before the notifier starts or reloads (``lifeline bus provision``)."""
    consumers = sink_consumers(config, settings, node, health=health, delivery=delivery)
    nc = await nats.connect(url)
    try:
        await provision(nc, node_plan(node, consumers, lease_ttl=lease_ttl))
    finally:
        await nc.close()


async def provisioned(svc: NotifierService, config: Config | None = None) -> NotifierService:
    """``svc``'s consumers (for ``config``, default its own), provisioned as the admin would."""
    o = svc.options
    chosen = config if config is not None else svc.config
    await provision_for(
        svc.nats_url,
        chosen,
        svc.settings,
        svc.node,
        health=o.health,
        delivery=o.delivery,
        lease_ttl=o.lease_ttl,
    )
    return svc


async def start(svc: NotifierService) -> NotifierService:
    """Provision, then start: the order every deployment follows."""
    await provisioned(svc)
    await svc.start()
    return svc


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def seqs(path: Path) -> list[int]:
    return [int(w[4:]) for line in lines(path) for w in line.split() if w.startswith("seq=")]


class NotifierProcess:
    """``python -m services.notifier`` as a real subprocess, to be killed with SIGKILL."""

    def __init__(self, conf: Path, node: str, url: str, log: Path) -> None:
        settings = log.parent / "empty.toml"  # no lifeline.toml of the host's
        settings.write_text("")
        self.args = [
            sys.executable, "-m", "services.notifier", "--config", str(conf), "--node", node,
            "--nats", url, "--settings", str(settings), "--no-health",
            "--ack-wait", "2", "--lease-ttl", "1.5", "--retry-initial", "0.05", "--retry-max", "0.5",
            "--max-attempts", "0",
        ]  # fmt: skip
        self.log = log
        self.conf, self.node, self.url = conf, node, url
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self, timeout: float = 20.0) -> None:
        config = load(self.conf).config
        settings = Settings(node=self.node)
        await provision_for(self.url, config, settings, self.node, health=False, delivery={"ack_wait": 2.0})
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.args,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=out,
                env={
                    **os.environ,
                    "PYTHONPATH": str(ROOT),
                    "LIFELINE_STATE_DIR": str(self.log.parent / "state"),
                },
            )
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), timeout)
        assert b"notifier ready" in line, self.log.read_text()[-3000:]

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
