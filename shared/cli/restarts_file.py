"""What ``lifeline up`` tells ``lifeline status`` and the metrics about its restarts: a small JSON file.

Why a file and not the bus: the restarts matter most when the bus or a
service is down, and ``lifeline up`` is not a bus client.  The supervisor
rewrites ``state_dir/<node>/supervisor.json`` (atomically: write, then rename)
whenever a service starts or dies; the readers show it when it is there and
say nothing when it is not (a node run by systemd or compose: ``systemctl
show -p NRestarts`` / ``docker inspect`` say the same).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path

import msgspec

from shared.settings import Settings, node_state_dir

FILE_NAME = "supervisor.json"


class ServiceRestarts(msgspec.Struct, frozen=True):
    """One supervised service: running now, restarts so far, the last backoff (s), the last exit status."""

    running: bool
    restarts: int
    backoff: float
    last_exit: int | None = None


def restarts_path(settings: Settings) -> Path:
    return node_state_dir(settings) / FILE_NAME


def write_restarts(path: Path, services: Mapping[str, ServiceRestarts]) -> None:
    """Replace the file with ``services``; an unwritable state directory is no reason to stop supervising."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(msgspec.json.encode(dict(services)))
        os.replace(tmp, path)


def read_restarts(path: Path) -> dict[str, ServiceRestarts]:
    """The supervisor's last word, or nothing (no ``lifeline up`` here, or an unreadable file)."""
    try:
        return msgspec.json.decode(path.read_bytes(), type=dict[str, ServiceRestarts])
    except (OSError, msgspec.DecodeError):
        return {}
