"""vrrp's control endpoints act only on a request that names an inbox, and record whose inbox it was.

The real ``Control`` (services/vrrp/control.py) on a real micro service and
nats-server, with a stand-in for the instances it steers: a request from a
client with its private inbox prefix is applied and its ``InstanceControl``
names that NATS user; the same body published with no reply subject (what an
answer sent through ``allow_responses`` or a JetStream answer aimed at the
endpoint looks like) or with a ``$JS.`` reply (a consumer's delivery) changes
nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import nats
import pytest
from nats.micro import add_service
from nats.micro.service import ServiceConfig

from services.vrrp.control import Control
from shared.events import ControlReply, InstanceControl, Notice, service_subject
from shared.lab.nats import NatsServer
from shared.lab.wait import await_until

pytestmark = pytest.mark.nats


@dataclass
class Runner:
    """What ``Control`` touches of an ``InstanceRunner``."""

    fed: list[object] = field(default_factory=list)
    control: dict[str, object] = field(default_factory=dict)
    machine: Any = field(default_factory=lambda: SimpleNamespace(base_priority=100))
    plan: Any = field(default_factory=lambda: SimpleNamespace(params=SimpleNamespace(priority=100)))

    def feed(self, event: object) -> None:
        self.fed.append(event)

    def now(self) -> float:
        return 0.0


@dataclass
class Host:
    node: str
    runners: dict[str, Any]
    notices: list[Notice] = field(default_factory=list)

    def notice(self, event: Notice) -> None:
        self.notices.append(event)


async def test_only_a_request_with_an_inbox_is_applied_and_its_user_recorded(
    nats_server: NatsServer, node: str
) -> None:
    host = Host(node, {"VI_1": Runner()})
    served = await nats.connect(nats_server.url)
    admin = await nats.connect(nats_server.url, inbox_prefix="_INBOX_admin")
    shared = await nats.connect(nats_server.url)
    try:
        svc = await add_service(served, ServiceConfig(name="lifeline-vrrp", version="0.0.0-test"))
        await Control(host).register(svc)  # type: ignore[arg-type]
        await served.flush()
        subject = service_subject(node, "vrrp", "set_priority")
        body = json.dumps({"instance": "VI_1", "priority": 200, "requested_by": "alice"}).encode()

        await admin.publish(subject, body)  # no reply: an allow_responses answer, a JetStream answer
        await admin.publish(subject, body, reply="$JS.ACK.LIFELINE_EVENTS.notifier_x.1.2.3.4.5")
        await admin.publish(subject, body, reply=f"lifeline.{node}.ctl.vrrp.clear")  # not an inbox
        await admin.flush()
        reply = await admin.request(subject, body, timeout=5)
        assert json.loads(reply.data)["ok"] is True
        await shared.request(subject, body.replace(b"alice", b"bob"), timeout=5)
        await await_until("two notices", lambda: len(host.notices) == 2, 5)
    finally:
        for nc in (served, admin, shared):
            await nc.close()
    first, second = host.notices
    assert isinstance(first, InstanceControl) and isinstance(second, InstanceControl)
    assert (first.requested_by, first.nats_user) == ("alice", "admin")
    assert (second.requested_by, second.nats_user) == ("bob", "")  # the shared _INBOX. prefix: unknown


def test_the_reply_of_apply_is_unchanged_by_who_asked() -> None:
    host = Host("n", {"VI_1": Runner()})
    body = json.dumps({"instance": "VI_1", "priority": 120, "requested_by": "carol"}).encode()
    reply = Control(host).apply("set_priority", body, nats_user="admin")  # type: ignore[arg-type]
    assert reply == ControlReply(ok=True, instance="VI_1", base_priority=100, maintenance_until=None)
