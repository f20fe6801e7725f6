"""The liveness file: a service's event loop says "alive, ready" every few seconds, on disk.

Why a file and not the bus: a container healthcheck that asks the service's
``status`` over NATS needs the right to publish on control subjects, which
only admins have (docs/security.md, "The bus: who may do what"), and it costs
a Python start with nats-py for every check.  The runner's event loop
(``shared.runner.run.Host``) rewrites ``<dir>/<service>[-<replica>].alive``
every ``EVERY`` seconds (atomically: a new file renamed over the old one),
so a stuck loop shows as a stale file; ``lifeline health SERVICE --local``
reads it (``verdict``).  The file holds the pid, the ready flag and the time:
no secret, mode 0644.

The directory: ``$LIFELINE_RUN_DIR``, else ``/run/lifeline`` for root and
``<tmp>/lifeline-<uid>`` for anyone else, so the service and a healthcheck
run as the same user in the same container agree without being told.

Standard library only: the healthcheck imports this and almost nothing else.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

EVERY = 5.0
"""Seconds between two writes."""

STALE_AFTER = 3 * EVERY
"""A file older than this: the event loop is stuck, or the service is gone."""

DIR_ENV = "LIFELINE_RUN_DIR"


def run_dir() -> Path:
    """Where liveness files live for this user (see the module doc)."""
    explicit = os.environ.get(DIR_ENV)
    if explicit:
        return Path(explicit)
    if os.geteuid() == 0:
        return Path("/run/lifeline")
    return Path(tempfile.gettempdir()) / f"lifeline-{os.geteuid()}"


def alive_path(service: str, replica: str | None = None, directory: Path | None = None) -> Path:
    name = f"{service}-{replica}" if replica else service
    return (directory or run_dir()) / f"{name}.alive"


def write(path: Path, *, ready: bool, pid: int | None = None, now: float | None = None) -> None:
    """Replace ``path`` at once with the current record (0644; the directory is made 0755)."""
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    record = {"pid": pid or os.getpid(), "ready": ready, "time": time.time() if now is None else now}
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps(record))
    os.chmod(tmp, 0o644)  # whatever the umask
    os.replace(tmp, path)


def remove(path: Path) -> None:
    path.unlink(missing_ok=True)


def verdict(text: str | None, now: float, *, pid_alive: bool = True) -> str | None:
    """None when healthy (fresh, ready, its process alive), else why not (pure)."""
    if text is None:
        return "no liveness file (not running, or another user's run directory)"
    try:
        record = json.loads(text)
        at, ready = float(record["time"]), bool(record["ready"])
    except (ValueError, KeyError, TypeError):
        return "unreadable liveness file"
    age = now - at
    if age > STALE_AFTER:
        return f"liveness file {age:.0f}s old (stuck or stopped)"
    if not pid_alive:
        return "its process is gone"
    return None if ready else "starting (not ready yet)"


def check(path: Path, now: float | None = None) -> str | None:
    """``verdict`` of the file at ``path``, with its pid looked up."""
    try:
        text: str | None = path.read_text()
    except OSError:
        text = None
    return verdict(text, time.time() if now is None else now, pid_alive=_pid_alive(text))


def _pid_alive(text: str | None) -> bool:
    try:
        pid = int(json.loads(text or "{}")["pid"])
    except (ValueError, KeyError, TypeError):
        return True  # the verdict says what is wrong with the file
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
