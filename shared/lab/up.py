"""A whole lifeline node in a lab host: ``lifeline up`` (nats-server and every service, supervised).

Why not :meth:`shared.lab.segment.Host.start`: that runs the vrrp service
alone, which is what the election tests and most benchmarks want.  A fault
test needs the node as it is deployed, where the supervisor restarts a
service that died and every service has its own NATS user: the chaos suite
and ``bench/chaos.py`` kill, freeze and starve those processes, so they need
to find each one (:func:`service_process`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

import psutil  # type: ignore[import-untyped]

from shared.lab.daemon import Daemon
from shared.lab.segment import Host

NATS_PORT = 4222
"""The embedded server's port: each host has a loopback of its own, so every node uses the default."""


def start_up(host: Host, config: Path, env: Mapping[str, str] | None = None) -> Daemon:
    """``lifeline up --config CONFIG`` in ``host``'s namespace, its store and state in the host's work dir.

    The node is named after the host's role; it reads no lifeline.toml of the
    machine (``LIFELINE_SETTINGS`` points at a file that does not exist) and
    keeps what must outlive a process in ``<workdir>/state``.  Output goes to
    ``<workdir>/up.log`` (every service logs there too).
    """
    store = host.workdir / "store"
    store.mkdir(mode=0o700, exist_ok=True)
    argv = [sys.executable, "-m", "shared.cli.main", "up", "--config", str(config), "--node", host.role]
    argv += ["--nats-port", str(NATS_PORT), "--store-dir", str(store)]
    full = dict(os.environ) | {
        "LIFELINE_SETTINGS": str(host.workdir / "no-settings.toml"),
        "LIFELINE_STATE_DIR": str(host.workdir / "state"),
        **(env or {}),
    }
    return Daemon(argv, host.workdir / "up.log", host.name, env=full).start()


def service_process(up: Daemon, service: str) -> psutil.Process | None:
    """The live child of ``up`` running ``service`` (``vrrp``, ``checker``, ``notifier``, ``lvs``, ``nats``).

    A dead child its supervisor has not reaped yet (a zombie, e.g. while the
    supervisor is stopped) is not the service.
    """
    if not up.running:
        return None
    try:
        children = psutil.Process(up.pid).children()
    except psutil.Error:
        return None
    for child in children:
        try:
            cmd = child.cmdline()
            alive = child.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            continue
        hit = "nats-server" in cmd[0] if service == "nats" else f"services.{service}" in cmd
        if hit and alive:
            return child
    return None
