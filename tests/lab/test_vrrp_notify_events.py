"""keepalived 2.2.7's notifications beyond transitions, end to end: vrrp → NATS → the notifier.

* A reload that removes an instance notifies what 2.2.7's ``clear_diff_vrrp``
  does: ``DELETED`` (``notify_deleted`` runs) when the instance has the
  ``notify_deleted`` keyword, else ``FAULT`` (``notify_fault`` runs); never
  STOP.  Both services are reloaded, as ``lifeline up`` does on SIGHUP, so the
  notifier may run the removed instance's script from its new configuration.
* With ``vrrp_notify_priority_changes`` an effective priority change writes
  keepalived's ``INSTANCE "VI_1" MASTER_PRIORITY 50`` line to the FIFO.

Real processes in a lab namespace (``ip netns exec``), the real nats-server,
real notify scripts and a real FIFO; the tracker result that lowers the
priority is published on the bus as the checker would.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.notifier.consumers import sink_consumers
from shared.bus.provision import node_plan
from shared.config.load import load
from shared.events import TrackerKind, TrackerResult
from shared.lab.nats import NatsProxy, NatsServer
from shared.lab.segment import Host
from shared.lab.wait import wait_until
from shared.settings import Settings
from tests.lab.test_vrrp_service import Lab

pytestmark = [pytest.mark.root, pytest.mark.timeout(120)]

REPO = Path(__file__).resolve().parents[2]


def instance(name: str, vrid: int, vip: str, extra: str) -> str:
    return f"""
vrrp_instance {name} {{
    state BACKUP
    interface eth0
    virtual_router_id {vrid}
    priority 100
    advert_int 0.1
    version 3
    garp_master_delay 0
{extra}
    virtual_ipaddress {{
        {vip}
    }}
}}
"""


def config(workdir: Path, *, removed: bool) -> str:
    log = workdir / "notify.sh"
    head = f"""
global_defs {{
    vrrp_notify_fifo {workdir / "fifo"}
    vrrp_notify_priority_changes
}}
vrrp_script chk_down {{
    script "/bin/true"
    weight -50
}}
"""
    kept = instance("VI_3", 53, "192.0.2.103", f'    notify_stop "{log} stop VI_3"')
    if removed:
        return head + kept
    vi1 = f"""    notify_deleted "{log} deleted VI_1"
    notify_stop "{log} stop VI_1"
    notify_fault "{log} fault VI_1"
    track_script {{
        chk_down
    }}"""
    vi2 = f"""    notify_stop "{log} stop VI_2"
    notify_fault "{log} fault VI_2\""""
    return head + instance("VI_1", 51, "192.0.2.101", vi1) + instance("VI_2", 52, "192.0.2.102", vi2) + kept


class Service:
    def __init__(self, host: Host, module: str, conf: Path, node: str, *, url: str, log: Path) -> None:
        self.log_path = log
        argv = [
            sys.executable,
            "-m",
            f"services.{module}",
            "--config",
            str(conf),
            "--node",
            node,
            "--nats",
            url,
        ]
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", host.name, *argv], cwd=REPO, stdout=out, stderr=subprocess.STDOUT
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[int]:
    os.mkfifo(tmp_path / "fifo", 0o644)
    fd = os.open(tmp_path / "fifo", os.O_RDONLY | os.O_NONBLOCK)
    try:
        yield fd
    finally:
        os.close(fd)


def test_removed_instances_and_priority_changes_notify_as_keepalived(
    lab: Lab, tmp_path: Path, nats_server: NatsServer, fifo: int
) -> None:
    a = lab.hosts[0]
    notified = tmp_path / "notified"
    script = tmp_path / "notify.sh"
    script.write_text(f'#!/bin/sh\necho "$*" >> {notified}\n')
    script.chmod(stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    conf = tmp_path / "keepalived.conf"
    conf.write_text(config(tmp_path, removed=False))
    proxy = NatsProxy(a.name, nats_server.port)
    node = lab.node(a)
    consumers = sink_consumers(load(conf).config, Settings(node=node), node, health=True)
    nats_server.provision_now(node_plan(node, consumers))  # as the admin does before the notifier starts
    notifier = Service(a, "notifier", conf, node, url=proxy.url, log=tmp_path / "notifier.log")
    vrrp: Service | None = None
    lines: list[str] = []

    def read_fifo() -> list[str]:
        with contextlib.suppress(BlockingIOError):
            lines.extend(os.read(fifo, 65536).decode().splitlines())
        return lines

    try:
        wait_until("the notifier", lambda: "notifier ready" in notifier.log(), 20)
        vrrp = Service(a, "vrrp", conf, node, url=proxy.url, log=tmp_path / "vrrp.log")
        for vip in ("192.0.2.101", "192.0.2.102"):
            wait_until(f"{vip} on a", lambda v=vip: a.holds(v), 20)
        wait_until("MASTER lines", lambda: 'INSTANCE "VI_2" MASTER 100' in read_fifo(), 10)

        lab.publish_tracker(
            node, TrackerResult(tracker="chk_down", kind=TrackerKind.SCRIPT, ok=False, weight=-50)
        )
        wait_until("the priority line", lambda: 'INSTANCE "VI_1" MASTER_PRIORITY 50' in read_fifo(), 10)

        conf.write_text(config(tmp_path, removed=True))
        notifier.proc.send_signal(signal.SIGHUP)
        vrrp.proc.send_signal(signal.SIGHUP)
        wait_until(
            "VI_1 and VI_2 gone", lambda: not a.holds("192.0.2.101") and not a.holds("192.0.2.102"), 10
        )
        wait_until("the DELETED and FAULT lines", lambda: 'INSTANCE "VI_2" FAULT 100' in read_fifo(), 10)
        assert 'INSTANCE "VI_1" DELETED 50' in lines
        wait_until(
            "both scripts", lambda: notified.exists() and len(notified.read_text().splitlines()) >= 2, 10
        )
        assert sorted(notified.read_text().splitlines()) == ["deleted VI_1", "fault VI_2"]
        assert not any(" STOP " in line or "BACKUP_PRIORITY" in line for line in lines), lines
    except BaseException:
        print(notifier.log()[-4000:], vrrp.log()[-4000:] if vrrp else "", lines)
        raise
    finally:
        for svc in (vrrp, notifier):
            if svc is not None:
                svc.stop()
        proxy.close()
