"""Reload through ``lifeline up``: every service applies a valid file, refuses a broken one, none restarts.

A real ``lifeline up`` (embedded nats-server with the generated per-service
users, real service processes).  SIGHUP to the supervisor reaches every
service; a changed valid file is applied as a difference by each (the
checker's summary says what it added), a broken file is refused by each with
its ``file:line`` errors on the bus, and no service process is replaced.  The
supervisor provisions the bus before it passes the SIGHUP on: the notifier
sink the new file adds (a ``notify_fifo``) finds its consumer.  A SIGHUP sent
while the services are still starting must not kill any of them.
"""

from __future__ import annotations

import asyncio
import re
import signal
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from shared.bus import connect
from shared.cli.up import ADMIN_SETTINGS
from shared.events import ServiceReload, decode
from shared.lab.wait import await_until, wait_until
from shared.settings import load_settings
from tests.support.up import SERVICES, Up

pytestmark = [pytest.mark.nats, pytest.mark.timeout(120)]
NODE = "up-reload"

CONFIG = """
vrrp_script chk_one {
    script "/bin/true"
    interval 1
}
"""
CHANGED = (
    CONFIG
    + """
vrrp_script chk_two {
    script "/bin/true"
    interval 1
}
global_defs {
    notify_fifo FIFO
}
"""
)
BROKEN = (
    CHANGED
    + """
vrrp_script chk_three {
    interval 1
    weight 300
}
"""
)


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    path = tmp_path / "keepalived.conf"
    path.write_text(CONFIG)
    return path


def changed(conf: Path) -> str:
    return CHANGED.replace("FIFO", str(conf.parent / "notify.fifo"))


@pytest.fixture
def up(tmp_path: Path, conf: Path) -> Iterator[Up]:
    node = Up(tmp_path, conf, NODE)
    yield node
    node.close()


def ready(up: Up) -> bool:
    return all(up.count(rf"^lifeline-{s} ready$") >= 1 for s in SERVICES)


async def test_sighup_to_lifeline_up_reloads_every_service_and_restarts_none(up: Up, conf: Path) -> None:
    await asyncio.to_thread(wait_until, "every service ready", partial(ready, up), 60, 0.1, explain=up.text)
    before = up.pids()
    assert set(before) == set(SERVICES)
    settings = load_settings(up.store / ADMIN_SETTINGS, env={})
    nc = await connect(settings.nats_url, "test-up-reload", settings=settings, connect_timeout=5)
    try:
        sub = await nc.subscribe(f"lifeline.{NODE}.service.reload.>")
        conf.write_text(changed(conf))
        up.proc.send_signal(signal.SIGHUP)
        applied = [decode((await sub.next_msg(timeout=30)).data, ServiceReload) for _ in SERVICES]
        conf.write_text(BROKEN.replace(CHANGED, changed(conf)))
        up.proc.send_signal(signal.SIGHUP)
        refused = [decode((await sub.next_msg(timeout=30)).data, ServiceReload) for _ in SERVICES]
        await await_until(
            "every refusal printed",
            lambda: all(up.count(rf"^lifeline-{s} reload refused: \d+ error") == 1 for s in SERVICES),
            15,
            0.1,
            explain=up.text,
        )
    finally:
        await nc.close()
    assert sorted(e.service for e in applied) == sorted(SERVICES) and all(e.ok for e in applied)
    assert up.count(r"^lifeline-checker reloaded: 1 added, 0 removed, 0 changed, 1 kept") == 1, up.text()
    assert up.count(r"^lifeline up: bus: consumer notifier_notify_fifo: created$") == 1, up.text()
    (notifier,) = [e for e in applied if e.service == "notifier"]
    assert notifier.detail == "sinks: 1 added, 0 changed, 0 removed, 0 kept", notifier  # nothing waits
    assert sorted(e.service for e in refused) == sorted(SERVICES)
    for event in refused:
        assert not event.ok and event.config == str(conf)
        assert any(re.match(rf"{re.escape(str(conf))}:\d+: error: ", e) for e in event.errors), event
    assert up.pids() == before, "a reload must never restart a service"
    assert "exited with" not in up.text()
    up.proc.send_signal(signal.SIGTERM)
    assert up.proc.wait(30) == 0


def test_sighup_while_the_services_start_kills_none(up: Up) -> None:
    """The supervisor forwards SIGHUP at once; services still importing or starting must survive it."""
    wait_until("the services to be spawned", lambda: len(up.pids()) == len(SERVICES), 20, 0.005)
    for _ in range(5):
        up.proc.send_signal(signal.SIGHUP)
    wait_until("every service ready", partial(ready, up), 60, 0.1, explain=up.text)
    wait_until(
        "one reload each after start-up",
        lambda: all(up.count(rf"^lifeline-{s} reloaded: ") >= 1 for s in SERVICES),
        30,
        0.1,
        explain=up.text,
    )
    assert "exited with" not in up.text(), up.text()
    up.proc.send_signal(signal.SIGTERM)
    assert up.proc.wait(30) == 0
