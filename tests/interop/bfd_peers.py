"""Two hosts running BFD: keepalived 2.2.7's own BFD child on one, lifeline's bfd service on the other.

The verdicts come from both daemons' own words: keepalived logs
``(NAME) Entering Up state`` and its negotiated ``Detection time``; lifeline
logs each transition (with the milliseconds since the peer's last packet
when the detection time ran out) and each change of the timers in force.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

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
