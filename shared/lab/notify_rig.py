"""A node whose notify scripts are timed: one VRRP instance tracking a dummy link, in a namespace.

Why a rig of its own: the claims (``shared.notify_claims``) promise a notify
script within a second of the transition whatever the bus and the notifier
do, so a test and the benchmark need the same thing: a transition at a known
instant (the tracked link ``dum0``, one end of a veth pair, set down or up: FAULT, then BACKUP and
MASTER), a script that writes when it started, which event it ran for
(``LIFELINE_EVENT_ID``, ``LIFELINE_ATTEMPT``) and its own arguments, and the
parts to break: lifeline's nats-server (root namespace, reached through a
relay as in production it is the node's own) and the notifier (a process).
``impl="keepalived"`` runs the real keepalived on the same file instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import msgspec
import nats
from nats.js.errors import NotFoundError

from services.notifier.consumers import sink_consumers
from services.notifier.delivery.feed import durable_name
from shared.bus.provision import Plan, node_plan
from shared.config.load import load
from shared.events import EVENT_STREAM, MSG_ID_HEADER, Service, status_subject
from shared.lab.daemon import Daemon, keepalived_binary
from shared.lab.nats import NatsProxy, NatsServer
from shared.lab.segment import Host, Segment
from shared.notify_claims import CLAIMS_DIR, Claim
from shared.settings import Settings

Impl = Literal["lifeline", "keepalived"]
NODE = "rig"
TRACKED = "dum0"

RECORDER = """#!/bin/sh
echo "$(date +%s.%N) ${LIFELINE_EVENT_ID:-none} ${LIFELINE_ATTEMPT:-1} $*" >> OUT
while [ -e HOLD ]; do sleep 0.05; done
"""
"""Writes its line when it starts, then runs on while the file HOLD exists (a script caught mid-run)."""


def rig_config(recorder: Path) -> str:
    """One instance, alone on its segment (so MASTER after its master-down interval), tracking ``dum0``."""
    notify = "\n".join(f'    notify_{s} "{recorder} {s}"' for s in ("master", "backup", "fault"))
    return f"""
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 0.1
    version 3
    track_interface {{
        {TRACKED}
    }}
{notify}
    virtual_ipaddress {{
        192.0.2.100
    }}
}}
"""


@dataclass(frozen=True)
class Run:
    """One line of the recorder: when the script started, for which event and attempt, its argument."""

    started: float
    event_id: str
    attempt: int
    word: str


class NotifyRig:
    """Host ``a`` with the tracked ``dum0``, the recorder, lifeline (vrrp, notifier, nats) or keepalived."""

    def __init__(self, workdir: Path, impl: Impl = "lifeline") -> None:
        self.workdir = workdir
        self.impl = impl
        self.out = workdir / "runs"
        self.hold = workdir / "hold"
        self.state_dir = workdir / "state"
        self.recorder = workdir / "record.sh"
        self.conf = workdir / "keepalived.conf"
        self.segment = Segment(["a"], observer=False, workdir=workdir / "lab")
        self.nats = NatsServer(workdir / "nats", provision=False)
        self.proxy: NatsProxy | None = None
        self.vrrp: Daemon | None = None
        self.notifier: Daemon | None = None

    @property
    def host(self) -> Host:
        return self.segment.hosts[0]

    def __enter__(self) -> NotifyRig:
        self.segment.__enter__()
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> None:
        self.recorder.write_text(RECORDER.replace("OUT", str(self.out)).replace("HOLD", str(self.hold)))
        self.recorder.chmod(0o755)
        self.conf.write_text(rig_config(self.recorder))
        self.host.ip(
            "link", "add", TRACKED, "type", "veth", "peer", "name", f"{TRACKED}p"
        )  # no dummy module here
        self.host.ip("link", "set", f"{TRACKED}p", "up")
        self.host.ip("link", "set", TRACKED, "up")
        if self.impl == "keepalived":
            work = self.workdir
            pids = ["-p", str(work / "k.pid"), "-r", str(work / "v.pid"), "-c", str(work / "c.pid")]
            argv = [keepalived_binary(), "-n", "-l", "-D", "-f", str(self.conf), *pids]
            self.vrrp = Daemon(argv, work / "keepalived.log", self.host.name).start()
            return
        self.start_nats()
        self.proxy = NatsProxy(self.host.name, self.nats.port)
        env = {**os.environ, "LIFELINE_STATE_DIR": str(self.state_dir)}
        argv = [sys.executable, "-m", "services.vrrp", "--config", str(self.conf), "--node", NODE]
        self.vrrp = Daemon([*argv, "--nats", self.proxy.url], self.workdir / "vrrp.log", self.host.name, env)
        self.vrrp.start()
        argv = [sys.executable, "-m", "services.notifier", "--config", str(self.conf), "--node", NODE]
        log = self.workdir / "notifier.log"  # in the namespace too: the file names its interfaces
        self.notifier = Daemon([*argv, "--nats", self.proxy.url], log, self.host.name, env)
        self.notifier.start()

    def plan(self) -> Plan:
        config = load(str(self.conf)).config
        return node_plan(NODE, sink_consumers(config, Settings(node=NODE), NODE))

    def start_nats(self) -> None:
        """Start (again) on the same port and store; streams and the notifier's consumer made if missing."""
        self.nats.start()
        self.nats.provision_now(self.plan())

    def close(self) -> None:
        for daemon in (self.notifier, self.vrrp):
            if daemon is not None:
                daemon.kill()
        if self.proxy is not None:
            self.proxy.close()
        self.nats.kill()
        self.segment.close()

    # ------------------------------------------------------------------ acts

    def link(self, up: bool) -> float:
        """Set ``dum0`` down (FAULT) or up (then BACKUP, MASTER); the wall-clock instant just before."""
        before = time.time()
        self.host.ip("link", "set", TRACKED, "up" if up else "down")
        return before

    # ------------------------------------------------------------------ what happened

    def runs(self) -> list[Run]:
        if not self.out.exists():
            return []
        rows = [line.split() for line in self.out.read_text().splitlines()]
        return [Run(float(r[0]), r[1], int(r[2]), r[3]) for r in rows if len(r) == 4]

    def claims(self) -> dict[str, Claim]:
        """Event id (``boot:seq``) → its claim: who ran its scripts."""
        folder = self.state_dir / NODE / CLAIMS_DIR
        found: dict[str, Claim] = {}
        for path in folder.glob("*.claim"):
            boot, _, seq = path.name.removesuffix(".claim").rpartition("-")
            found[f"{boot}:{seq}"] = msgspec.json.decode(path.read_bytes(), type=Claim)
        return found

    def fallback_status(self) -> dict[str, int]:
        """The vrrp service's ``notify_fallback`` counters (its status endpoint)."""

        async def ask() -> dict[str, int]:
            nc = await nats.connect(self.nats.url, connect_timeout=1, max_reconnect_attempts=0)
            try:
                reply = await nc.request(status_subject(NODE, Service.VRRP), b"", timeout=2)
            finally:
                await nc.close()
            return dict(msgspec.json.decode(reply.data)["detail"]["notify_fallback"])

        return asyncio.run(ask())

    def caught_up(self, ids: set[str]) -> bool:
        """The stream holds the events ``ids`` and the notifier's script consumer has acked everything."""

        async def look() -> bool:
            nc = await nats.connect(self.nats.url, connect_timeout=1, max_reconnect_attempts=0)
            try:
                js = nc.jetstream()
                stream = await js.stream_info(EVENT_STREAM)
                stored = set()
                for seq in range(stream.state.first_seq, stream.state.last_seq + 1):
                    with contextlib.suppress(NotFoundError):
                        msg = await js.get_msg(EVENT_STREAM, seq)
                        stored.add((msg.headers or {}).get(MSG_ID_HEADER, ""))
                info = await js.consumer_info(EVENT_STREAM, durable_name("script"))
            except NotFoundError:
                return False
            finally:
                await nc.close()
            return ids <= stored and not info.num_pending and not info.num_ack_pending

        try:
            return asyncio.run(look())
        except (OSError, nats.errors.Error):
            return False
