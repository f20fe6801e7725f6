"""What the script tests share: a private user database, a tree of scripts that report who they ran as.

The user database is a copy of the host's ``/etc/passwd`` and ``/etc/group``
with test users added (or ``keepalived_script`` taken out), bind-mounted over
the real files in a mount namespace of the service's own (``in_user_db``): the
host's database is never touched, and tests running beside each other each
see their own.  Services, ``lifeline config check`` and the scripts they start
all run inside it, so ``id`` in a script names the test users.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from shared.lab.nats import NatsServer, free_port

OWN, OWN_UID, EXTRA_GID = "ll-own", 64991, 64993
SU, SU_UID = "ll-su", 64992
DEFAULT, DEFAULT_UID = "keepalived_script", 64990
TEST_NAMES = (OWN, SU, DEFAULT, "ll-extra")

NATS_USER, NATS_PASSWORD = "svc", "s3cret-not-for-scripts"


@dataclass(frozen=True)
class UserDb:
    passwd: Path
    group: Path


def user_db(workdir: Path, *, with_default: bool) -> UserDb:
    """The host's users, ``ll-own`` (also in ``ll-extra``), ``ll-su``; ``keepalived_script`` if asked."""
    workdir.mkdir(parents=True, exist_ok=True)
    users = [
        f"{OWN}:x:{OWN_UID}:{OWN_UID}::/home/{OWN}:/bin/sh",
        f"{SU}:x:{SU_UID}:{SU_UID}::/nonexistent:/bin/sh",
    ]
    groups = [f"{OWN}:x:{OWN_UID}:", f"{SU}:x:{SU_UID}:", f"ll-extra:x:{EXTRA_GID}:{OWN}"]
    if with_default:
        users.append(f"{DEFAULT}:x:{DEFAULT_UID}:{DEFAULT_UID}::/nonexistent:/usr/sbin/nologin")
        groups.append(f"{DEFAULT}:x:{DEFAULT_UID}:")
    db = UserDb(workdir / "passwd", workdir / "group")
    db.passwd.write_text(_without_test_names(Path("/etc/passwd")) + "\n".join(users) + "\n")
    db.group.write_text(_without_test_names(Path("/etc/group")) + "\n".join(groups) + "\n")
    for path in (db.passwd, db.group):
        path.chmod(0o644)
    return db


def _without_test_names(path: Path) -> str:
    lines = [line for line in path.read_text().splitlines() if line.split(":", 1)[0] not in TEST_NAMES]
    return "\n".join(lines) + "\n"


def in_user_db(db: UserDb, argv: list[str]) -> list[str]:
    """``argv`` in a mount namespace of its own where ``db`` is the user database."""
    mount = 'mount --bind "$1" /etc/passwd && mount --bind "$2" /etc/group && shift 2 && exec "$@"'
    return [
        "unshare", "--mount", "--propagation", "private", "--",
        "sh", "-c", mount, "sh", str(db.passwd), str(db.group), *argv,
    ]  # fmt: skip


REPORT = """#!/bin/sh
# who am I, where, with which environment: written to $1/$2, and one line per run to $1/$2.runs
out="$1/$2"
{
  echo "uid=$(id -u) gid=$(id -g) groups=$(id -G)"
  echo "user=$(id -un) group=$(id -gn)"
  echo "cwd=$(pwd)"
  echo "---"
  env
} > "$out.$$" && mv -f "$out.$$" "$out"
echo $$ >> "$out.runs"
"""


@dataclass(frozen=True)
class Report:
    """What one script saw."""

    uid: int
    gid: int
    groups: tuple[int, ...]
    user: str
    group: str
    cwd: str
    env: dict[str, str]


def read_report(path: Path) -> Report:
    head, _, env_text = path.read_text().partition("---\n")
    ids, names, cwd = head.splitlines()[:3]
    match = re.fullmatch(r"uid=(\d+) gid=(\d+) groups=([\d ]*)", ids)
    assert match is not None, ids
    name = dict(word.split("=", 1) for word in names.split())
    env = dict(line.split("=", 1) for line in env_text.splitlines() if "=" in line)
    groups = tuple(int(g) for g in match[3].split())
    return Report(int(match[1]), int(match[2]), groups, name["user"], name["group"], cwd[4:], env)


@dataclass(frozen=True)
class ScriptTree:
    """``top`` (0755) with ``bin/`` (0755: safe), ``unsafe/`` (0777) and ``out/`` (1777) under ``/tmp``.

    pytest's own directories are 0700, which no script user could enter.
    """

    top: Path

    @property
    def safe(self) -> Path:
        return self.top / "bin" / "report.sh"

    @property
    def unsafe(self) -> Path:
        return self.top / "unsafe" / "report.sh"

    @property
    def out(self) -> Path:
        return self.top / "out"

    def command(self, label: str, *, unsafe: bool = False) -> str:
        """The quoted command line of a script writing ``label``'s report."""
        return f'"{self.unsafe if unsafe else self.safe} {self.out} {label}"'

    def report(self, label: str) -> Report | None:
        path = self.out / label
        return read_report(path) if path.exists() else None

    def runs(self, label: str) -> int:
        path = self.out / f"{label}.runs"
        return len(path.read_text().splitlines()) if path.exists() else 0


@contextmanager
def script_tree() -> Iterator[ScriptTree]:
    top = Path(tempfile.mkdtemp(prefix="lifeline-scripts-"))
    try:
        top.chmod(0o755)
        for name, mode in (("bin", 0o755), ("unsafe", 0o777), ("out", 0o1777)):
            (top / name).mkdir()
            (top / name).chmod(mode)
        for script in (top / "bin" / "report.sh", top / "unsafe" / "report.sh"):
            script.write_text(REPORT)
            script.chmod(stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
        yield ScriptTree(top)
    finally:
        shutil.rmtree(top, ignore_errors=True)


def nats_with_password(workdir: Path) -> NatsServer:
    """A nats-server (JetStream) that only lets ``NATS_USER`` in: the services' credentials are real."""
    port = free_port()
    config = (
        f"listen: 127.0.0.1:{port}\nserver_name: lifeline-scripts-{os.getpid()}-{port}\n"
        f'jetstream {{ store_dir: "{workdir / "jetstream"}" }}\n'
        f'authorization {{ user: {NATS_USER}, password: "{NATS_PASSWORD}" }}\n'
    )
    server = NatsServer(workdir, port=port, config=config)
    server.start()
    return server


def service_env(server: NatsServer, settings: Path) -> dict[str, str]:
    """The environment a service gets in compose or systemd: its NATS credentials, in clear."""
    return {
        **os.environ,
        "LIFELINE_NATS_URL": f"nats://{NATS_USER}:{NATS_PASSWORD}@127.0.0.1:{server.port}",
        "LIFELINE_NATS_USER": NATS_USER,
        "LIFELINE_NATS_PASSWORD": NATS_PASSWORD,
        "LIFELINE_SETTINGS": str(settings),
    }


SHELL_OWN = {"PWD", "OLDPWD", "SHLVL", "_"}
"""What ``sh`` itself puts in the environment it prints."""
ALLOWED = {"PATH", "LANG", "LANGUAGE", "TZ", "HOME", "USER", "LOGNAME", "SHELL"}


def assert_clean_env(report: Report, home: str, *, events: bool = False) -> None:
    """Only the allow-list (and ``LIFELINE_*`` event variables of a notify script), the user's identity."""
    leaked = [name for name in report.env if name.startswith(("LIFELINE_NATS", "LIFELINE_SETTINGS"))]
    assert not leaked, f"leaked to a script: {leaked}"
    others = {
        name
        for name in report.env
        if name not in ALLOWED | SHELL_OWN
        and not name.startswith("LC_")
        and not (events and name.startswith("LIFELINE_"))
    }
    assert not others, f"not on the allow-list: {sorted(others)}"
    assert NATS_PASSWORD not in "".join(report.env.values())
    assert (report.env["USER"], report.env["LOGNAME"], report.env["HOME"]) == (report.user, report.user, home)
    assert report.cwd == "/"


ROOT = Path(__file__).resolve().parents[2]


class ServiceProcess:
    """A service as a real process (``argv`` may wrap it: a user database, a PID namespace).

    stdout is read for the ready line; stderr (the service's log) goes to ``log``.
    """

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.argv, self.env, self.log = argv, {**env, "PYTHONPATH": str(ROOT)}, log
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self, ready: str, timeout: float = 30.0) -> None:
        """Start it and wait for ``ready``; on any failure nothing it started is left running.

        The wrappers (``unshare``, an init) fork the service, so it runs in a
        session of its own and a failed start kills the whole group: a service
        left behind would hold stdout open, and the thread reading it would
        then keep the test's event loop from ever closing.
        """
        with self.log.open("ab") as err:
            self.proc = subprocess.Popen(
                self.argv, cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=err, start_new_session=True
            )
        assert self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), timeout)
            assert ready.encode() in line, f"no {ready!r}: {line!r}\n" + self.log.read_text()[-3000:]
        except BaseException:
            self.stop(signal.SIGKILL)
            raise

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # what the wrappers forked, if it outlived them
        if self.proc.stdout is not None:
            self.proc.stdout.close()


async def provision_notifier(server: NatsServer, conf: Path, node: str) -> None:
    """What the admin does before a notifier starts (``lifeline bus provision``): the test user may."""
    from shared.config.load import load
    from shared.settings import Settings
    from tests.notifier.test_delivery_support import provision_for

    url = f"nats://{NATS_USER}:{NATS_PASSWORD}@127.0.0.1:{server.port}"
    await provision_for(url, load(conf).config, Settings(node=node), node, health=False)


def service_argv(service: str, conf: Path, node: str, *extra: str) -> list[str]:
    """``python -m services.<service>`` with its NATS URL and settings from the environment."""
    return [sys.executable, "-m", f"services.{service}", "--config", str(conf), "--node", node, *extra]


def lifeline_check(db: UserDb, conf: Path) -> tuple[int, list[str]]:
    """``lifeline config check`` in the same user database: exit status and output lines."""
    lifeline = str(Path(sys.executable).with_name("lifeline"))
    argv = in_user_db(db, [lifeline, "config", "check", str(conf)])
    proc = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=60, cwd=ROOT)
    return proc.returncode, (proc.stderr + proc.stdout).splitlines()
