"""``net_namespace``: a service started in the root namespace runs inside the named one, as keepalived does.

Host ``a``'s namespace is named in the file; our vrrp service is started from
the root namespace (no ``ip netns exec``) with the bus in the root namespace
too.  It must elect inside ``a`` (its adverts leave ``a``'s eth0: keepalived
2.2.7 in ``b``, with a lower priority, yields to them), put the VIP on ``a``'s
eth0 and nowhere else, and still publish its state on the root namespace's
nats-server, because the bus connection is made where the service started.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import nats
import pytest

from shared.events import STATE_BUCKET, instance_subject, kv_key_for_subject
from shared.lab.daemon import Daemon
from shared.lab.nats import NatsServer
from shared.lab.netns import NETNS_RUN
from shared.lab.segment import Host
from shared.lab.wait import wait_until

pytestmark = pytest.mark.root

INSTANCE = """vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 61
    priority {priority}
    advert_int 1
    virtual_ipaddress {{
        {vip}/24
    }}
}}
"""


async def _state(url: str, node: str) -> dict[str, object] | None:
    nc = await nats.connect(url)
    try:
        kv = await nc.jetstream().key_value(STATE_BUCKET)
        entry = await kv.get(kv_key_for_subject(instance_subject(node, "VI_1")))
        return json.loads(entry.value or b"{}")  # type: ignore[no-any-return]
    except Exception:
        return None
    finally:
        await nc.close()


def published_state(url: str, node: str) -> object:
    found = asyncio.run(_state(url, node))
    return None if found is None else found.get("state")


def root_addresses() -> str:
    with os.popen("ip -o addr") as out:
        return out.read()


def test_vrrp_started_in_the_root_namespace_elects_inside_net_namespace(
    pair: list[Host], tmp_path: Path, nats_server: NatsServer
) -> None:
    a, b = pair
    vip = a.segment.address(100)
    b.start("keepalived", INSTANCE.format(priority=100, vip=vip))
    conf = tmp_path / "keepalived.conf"
    conf.write_text(f"net_namespace {a.name}\n" + INSTANCE.format(priority=150, vip=vip))
    node = f"netns-{tmp_path.name}"
    argv = [sys.executable, "-m", "services.vrrp", "--config", str(conf), "--node", node]
    ours = Daemon([*argv, "--nats", nats_server.url], tmp_path / "vrrp.log").start()  # no `ip netns exec`
    try:
        wait_until("our vrrp to be MASTER", lambda: "Entering MASTER STATE" in ours.output(), 30, 0.1,
                   explain=ours.tail)  # fmt: skip
        wait_until("the VIP on a's eth0", lambda: a.segment.holders(vip) == ["a"], 10, 0.1)
        assert vip not in root_addresses(), "the VIP went to a's namespace, not the root one"
        assert b.daemon is not None
        peer = b.daemon
        heard = f"advert from {a.ipv4} with higher priority 150"  # b started first and was MASTER
        wait_until("keepalived in b to yield to our adverts", lambda: heard in peer.output(), 10, 0.1,
                   explain=peer.tail)  # fmt: skip
        backup = lambda: peer.output().rsplit("Entering ", 1)[-1].startswith("BACKUP")  # noqa: E731
        wait_until("keepalived in b BACKUP again", backup, 10, 0.1, explain=peer.tail)
        inside = os.stat(NETNS_RUN / a.name).st_ino
        assert os.stat(f"/proc/{ours.pid}/ns/net").st_ino == inside, (
            "the service's main thread is in a's namespace"
        )
        master = lambda: published_state(nats_server.url, node) == "MASTER"  # noqa: E731
        wait_until("MASTER on the root namespace's bus", master, 10, 0.2)
    finally:
        ours.stop(signal.SIGTERM)
        b.stop()


def test_a_namespace_that_does_not_exist_stops_the_start_with_one_line(tmp_path: Path) -> None:
    conf = tmp_path / "keepalived.conf"
    conf.write_text("net_namespace llt-no-such-namespace\n")
    argv = [sys.executable, "-m", "services.vrrp", "--config", str(conf), "--node", "x"]
    daemon = Daemon([*argv, "--nats", "nats://127.0.0.1:1"], tmp_path / "vrrp.log").start()
    assert daemon.wait(30) == 1
    assert (
        "lifeline-vrrp: net_namespace: network namespace 'llt-no-such-namespace': cannot open"
        in daemon.output()
    )
    assert "Traceback" not in daemon.output()
