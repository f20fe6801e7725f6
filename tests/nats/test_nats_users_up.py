"""``lifeline up``'s embedded nats-server runs the generated per-service users.

The supervisor's own start-up against the real binary: the config it writes
is the deployment's (users, permissions), each service's environment logs it
in as its own user, the operator's ``admin.toml`` works as ``LIFELINE_SETTINGS``,
and the passwords survive a restart of ``lifeline up``.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import nats
import nats.errors
import pytest

from shared.bus.connect import connect, connect_options
from shared.cli.up import ADMIN_SETTINGS, USERS_FILE, Supervisor, service_env
from shared.lab.nats import free_port
from shared.settings import Settings, load_settings

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
        await nc.publish("lifeline.up-node.vrrp.state.X", b"{}")  # admin may publish anything
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
    again = Supervisor(supervisor.args, Settings(node="up-node", nats_user="admin", nats_password="mine"))
    try:
        assert again.start_nats()
        assert {k: v for k, v in again.passwords.items() if k != "admin"} == {
            k: v for k, v in first.items() if k != "admin"
        }
        assert again.passwords["admin"] == "mine"  # the operator's lifeline.toml password is the admin's
    finally:
        again.shutdown()
