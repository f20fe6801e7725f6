"""``lifeline up``'s embedded nats-server runs the generated per-service users, from a private store.

The supervisor's own start-up against the real binary: the config it writes
is the deployment's (users, permissions), each service's environment logs it
in as its own user, the operator's ``admin.toml`` works as ``LIFELINE_SETTINGS``,
and the passwords survive a restart of ``lifeline up``.  The store directory
holds every password: it is created 0700 and its secrets 0600; another user's
or a group-writable store, a planted symlink, a secret that was readable by
others, an example password are each refused before nats-server starts, with
one line naming the problem (and ``lifeline up`` exits 1).
"""

from __future__ import annotations

import argparse
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import nats
import nats.errors
import pytest

from shared.bus.connect import connect, connect_options
from shared.cli.up import ADMIN_SETTINGS, CONF_FILE, USERS_FILE, Supervisor, service_env
from shared.lab.nats import free_port
from shared.nats_passwords import generate_password
from shared.secret_files import parse_env
from shared.settings import Settings, load_settings

REPO = Path(__file__).parents[2]
NOBODY = 65534

pytestmark = pytest.mark.nats


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[Supervisor]:
    args = argparse.Namespace(node="up-node", nats_port=free_port(), store_dir=str(tmp_path / "store"))
    sup = Supervisor(args, Settings(node="up-node"))
    try:
        yield sup
    finally:
        sup.shutdown()


async def test_services_and_operator_log_in_as_their_own_users(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    (tmp_path / "store").mkdir()
    assert supervisor.start_nats()
    url = f"nats://127.0.0.1:{supervisor.args.nats_port}"
    store = tmp_path / "store"
    assert (store / USERS_FILE).stat().st_mode & 0o077 == 0

    # the operator: admin.toml as LIFELINE_SETTINGS, nothing else
    admin = load_settings(store / ADMIN_SETTINGS, env={})
    nc = await connect(admin.nats_url, "pytest-admin", settings=admin)
    try:
        await nc.publish("lifeline.up-node.vrrp.state.X", b"{}")  # admin may publish its node's subjects
        await nc.flush()
    finally:
        await nc.close()

    # a service: its environment as lifeline up gives it
    env = service_env("vrrp", supervisor.passwords["vrrp"])
    vrrp = load_settings(tmp_path / "absent.toml", env=env)
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    nc = await nats.connect(url, error_cb=on_error, allow_reconnect=False, **connect_options(vrrp, [url]))
    try:
        await nc.publish("lifeline.up-node.lvs.pool.X", b"{}")  # the lvs service's subject
        await nc.flush()
        for _ in range(100):
            if errors:
                break
            await nc.flush()
        assert any("permissions violation" in e.lower() for e in errors)
    finally:
        await nc.close()

    # without credentials: refused
    with pytest.raises((nats.errors.Error, OSError)):
        await nats.connect(url, allow_reconnect=False, connect_timeout=2)


def test_passwords_survive_a_restart(supervisor: Supervisor, tmp_path: Path) -> None:
    (tmp_path / "store").mkdir()
    assert supervisor.start_nats()
    first = dict(supervisor.passwords)
    supervisor.shutdown()
    mine = generate_password()
    again = Supervisor(supervisor.args, Settings(node="up-node", nats_user="admin", nats_password=mine))
    try:
        assert again.start_nats()
        assert {k: v for k, v in again.passwords.items() if k != "admin"} == {
            k: v for k, v in first.items() if k != "admin"
        }
        assert again.passwords["admin"] == mine  # the operator's lifeline.toml password is the admin's
    finally:
        again.shutdown()


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_store_is_created_private_with_0600_secrets(supervisor: Supervisor, tmp_path: Path) -> None:
    store = tmp_path / "store"  # not there yet: lifeline up creates it
    assert supervisor.start_nats()
    assert mode(store) == 0o700
    for name in (USERS_FILE, ADMIN_SETTINGS, CONF_FILE):
        assert mode(store / name) == 0o600, name
    saved = parse_env((store / USERS_FILE).read_text())
    assert saved["LIFELINE_NATS_PASSWORD_ADMIN"] == supervisor.passwords["admin"]
    assert not [p.name for p in store.iterdir() if p.name.endswith(".tmp")]


def refused(sup: Supervisor, capsys: pytest.CaptureFixture[str]) -> str:
    """Start-up refused before any nats-server: the one line it printed."""
    capsys.readouterr()
    assert not sup.start_nats()
    assert sup.nats is None
    err = capsys.readouterr().err
    assert err.startswith("lifeline up: ") and "Traceback" not in err, err
    return err


def private_store(tmp_path: Path) -> Path:
    store = tmp_path / "store"
    store.mkdir(mode=0o700, parents=True)
    return store


def test_a_planted_symlink_is_not_followed(
    supervisor: Supervisor, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = private_store(tmp_path)
    victim = tmp_path / "victim"
    victim.write_text("root:x:0:0\n")
    victim.chmod(0o600)
    for name in (USERS_FILE, CONF_FILE, ADMIN_SETTINGS):
        (store / name).symlink_to(victim)
        assert "symbolic link" in refused(supervisor, capsys), name
        assert victim.read_text() == "root:x:0:0\n"
        (store / name).unlink()


def test_a_secret_readable_by_others_is_refused_until_the_operator_decides(
    supervisor: Supervisor, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = private_store(tmp_path)
    kept = generate_password()
    (store / USERS_FILE).write_text(f"LIFELINE_NATS_PASSWORD_VRRP={kept}\n")
    (store / USERS_FILE).chmod(0o644)
    err = refused(supervisor, capsys)
    assert "users.env: readable or writable by others (mode 0644)" in err and "chmod 600" in err
    assert mode(store / USERS_FILE) == 0o644  # not silently "fixed"
    (store / USERS_FILE).chmod(0o600)  # the operator knows nobody read it
    assert supervisor.start_nats()
    assert supervisor.passwords["vrrp"] == kept


@pytest.mark.parametrize("problem", ["owned by another user", "group-writable", "world-writable"])
def test_an_unsafe_store_directory_is_refused(
    supervisor: Supervisor, tmp_path: Path, capsys: pytest.CaptureFixture[str], problem: str
) -> None:
    store = private_store(tmp_path)
    if problem == "owned by another user":
        if os.geteuid() != 0:
            pytest.skip("chown needs root")
        os.chown(store, NOBODY, NOBODY)
        expected = f"owned by uid {NOBODY}"
    else:
        store.chmod(0o770 if problem == "group-writable" else 0o707)
        expected = "writable by group or others"
    assert expected in refused(supervisor, capsys)
    assert not (store / USERS_FILE).exists()


@pytest.mark.parametrize(
    ("value", "why"), [("change-me-admin", "example placeholder"), ("short", "too short")]
)
def test_example_or_short_passwords_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str, why: str
) -> None:
    args = argparse.Namespace(node="up-node", nats_port=free_port(), store_dir=str(tmp_path / "store"))
    sup = Supervisor(args, Settings(node="up-node", nats_user="admin", nats_password=value))
    assert why in refused(sup, capsys)
    store = private_store(tmp_path / "again")
    (store / USERS_FILE).write_text("LIFELINE_NATS_PASSWORD_LVS=change-me-lvs\n")
    (store / USERS_FILE).chmod(0o600)
    sup = Supervisor(argparse.Namespace(node="n", nats_port=free_port(), store_dir=str(store)), Settings())
    assert "users.env: LIFELINE_NATS_PASSWORD_LVS is the example placeholder" in refused(sup, capsys)


def test_lifeline_up_exits_1_on_routes_without_credentials(tmp_path: Path) -> None:
    """The whole command: one clear line, exit status 1, no nats-server and no service started."""
    settings = tmp_path / "lifeline.toml"
    settings.write_text(
        '[nats_server]\ncluster_name = "lifeline"\ncluster_listen = "127.0.0.1:6222"\n'
        'cluster_routes = ["nats-route://127.0.0.1:6223"]\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIFELINE_") or k == "LIFELINE_STATE_DIR"}
    env["LIFELINE_SETTINGS"] = str(settings)
    argv = [str(Path(sys.executable).parent / "lifeline"), "up", "--node", "up-node"]
    argv += ["--config", str(REPO / "docs" / "examples" / "archwiki-1-host-a.conf")]
    argv += ["--store-dir", str(tmp_path / "store"), "--nats-port", str(free_port())]
    done = subprocess.run(argv, check=False, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines() == [
        "lifeline up: cluster routes need nats_server.cluster_user and cluster_password "
        "(LIFELINE_NATS_CLUSTER_USER, LIFELINE_NATS_CLUSTER_PASSWORD; the same on every node): "
        "without them any server that reaches the route port joins the bus and can command this node"
    ]
    assert not (tmp_path / "store" / CONF_FILE).exists()
