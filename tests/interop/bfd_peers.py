"""Two hosts running BFD: keepalived 2.2.7's BFD child or FRR's bfdd on one, lifeline's bfd on the other.

The verdicts come from both daemons' own words: keepalived logs
``(NAME) Entering Up state`` and its negotiated ``Detection time``, bfdd
``state-change: [...] init -> up``; lifeline
logs each transition (with the milliseconds since the peer's last packet
when the detection time ran out) and each change of the timers in force.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.lab.daemon import Daemon, keepalived_binary
from shared.lab.segment import Host, Segment
from shared.lab.wait import wait_until


@dataclass(frozen=True)
class Timers:
    """One side's ``bfd_instance`` timers (ms) and options."""

    min_tx: float = 10
    min_rx: float = 10
    multiplier: int = 3
    passive: bool = False
    extra: str = ""

    def block(self, name: str, neighbor: str, source: str) -> str:
        lines = [
            f"bfd_instance {name} {{",
            f"    neighbor_ip {neighbor}",
            f"    source_ip {source}",
            f"    min_tx {self.min_tx:g}",
            f"    min_rx {self.min_rx:g}",
            f"    multiplier {self.multiplier}",
            *(["    passive"] if self.passive else []),
            *([f"    {self.extra}"] if self.extra else []),
            "}",
        ]
        return "\n".join(lines) + "\n"


def bfd_config(seg: Segment, me: int, peer: int, timers: Timers, tail: str = "") -> str:
    """A keepalived.conf with one ``bfd_instance bfd1`` from host ``me`` to host ``peer`` (plus ``tail``)."""
    return timers.block("bfd1", seg.address(peer), seg.address(me)) + tail


def start_keepalived(host: Host, config: str) -> Daemon:
    """keepalived with its BFD child (pid files in the host's work dir, never the system's)."""
    work = host.workdir
    path = work / "keepalived.conf"
    path.write_text(config)
    pids = ["-p", str(work / "k.pid"), "-r", str(work / "v.pid"), "-c", str(work / "c.pid")]
    argv = [keepalived_binary(), "-n", "-l", "-D", "-f", str(path), *pids, "-b", str(work / "b.pid")]
    return Daemon(argv, work / "keepalived.log", host.name).start()


def start_lifeline_bfd(host: Host, config: str) -> Daemon:
    """lifeline's bfd service on this host's own nats-server."""
    work = host.workdir
    path = work / "lifeline-bfd.conf"
    path.write_text(config)
    url = host.ensure_nats().url
    argv = [sys.executable, "-m", "services.bfd", "--config", str(path), "--node", host.role, "--nats", url]
    return Daemon(argv, work / "lifeline-bfd.log", host.name).start()


def wait_log(daemon: Daemon, pattern: str, timeout: float, after: int = 0) -> re.Match[str]:
    """The first match of ``pattern`` in the daemon's output past offset ``after``, waited for."""
    found: list[re.Match[str]] = []

    def probe() -> bool:
        match = re.search(pattern, daemon.output()[after:])
        if match:
            found.append(match)
        return match is not None

    wait_until(f"{pattern!r} in {daemon.log.name}", probe, timeout, explain=lambda: daemon.tail(30))
    return found[0]


BFDD = Path("/usr/lib/frr/bfdd")
"""FRR's BFD daemon (Debian's ``frr`` package; the test task installs it)."""


def start_frr_bfdd(host: Host, peer: str, local: str, timers: Timers) -> Daemon:
    """FRR's bfdd alone (no zebra: a static ``peer`` needs none), state changes logged to stdout.

    It drops to user ``frr``, so its runtime directory (pid file, vty and
    control sockets) is one that user may write; the log stays in the host's
    work dir, written by the lab.
    """
    run = Path(tempfile.mkdtemp(prefix="lifeline-frr-"))
    atexit.register(shutil.rmtree, run, ignore_errors=True)
    os.chmod(run, 0o777)
    config = run / "bfdd.conf"
    lines = ["debug bfd peer", "bfd", f" peer {peer} local-address {local}"]
    lines += [f"  receive-interval {timers.min_rx:g}", f"  transmit-interval {timers.min_tx:g}"]
    lines += [f"  detect-multiplier {timers.multiplier}", *(["  passive-mode"] if timers.passive else [])]
    config.write_text("\n".join([*lines, " !", "!"]) + "\n")
    argv = [str(BFDD), "-f", str(config), "-i", str(run / "bfdd.pid"), "--vty_socket", str(run), "-P", "0"]
    argv += ["-z", str(run / "zserv.api"), "--bfdctl", str(run / "bfdd.sock"), "--log", "stdout"]
    argv += ["-u", "frr", "-g", "frr"]
    return Daemon(argv, host.workdir / "bfdd.log", host.name).start()


_STATUS = """
import asyncio, json, sys
import nats

async def ask():
    nc = await nats.connect(sys.argv[1])
    try:
        reply = await nc.request(f"lifeline.{sys.argv[2]}.ctl.bfd.status", b"", timeout=2)
        print(json.dumps(json.loads(reply.data)["detail"]))
    finally:
        await nc.close()

asyncio.run(ask())
"""


def bfd_status(host: Host) -> dict[str, Any]:
    """The bfd service's ``status`` endpoint, asked on the host's own bus (from inside its namespace)."""
    assert host.nats is not None
    argv = ["ip", "netns", "exec", host.name, sys.executable, "-c", _STATUS, host.nats.url, host.role]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True).stdout
    return dict(json.loads(out))
