"""The ``http`` NATS user against a real nats-server: it reads everything it serves, and writes nothing.

Its job, through the http service's own code (``services.http.feed.Feed``):
the state bucket by batched direct get, every event live, discovery and the
status of the other services.  Its refusals, by the server: no event, no KV
write, no control request (not even its own status endpoint, which it would
hear), no consumer (a KV watch creates one), no JetStream administration, no
plain ``$SRV.INFO`` (its own micro service listens there).  The server is
the one of ``test_nats_permissions`` (every user, provisioned as ``lifeline up`` does).
"""

from __future__ import annotations

import contextlib
import time

import pytest
from nats.js.errors import Error as JetStreamError

from services.http.core.model import Model
from services.http.feed import Feed
from shared.bus.micro import register_service
from shared.cli.fleet import StateEntry
from shared.cli.status import Replica
from shared.events import (
    EVENT_STREAM,
    STATE_BUCKET,
    InstanceState,
    VrrpState,
    kv_key_for_subject,
    status_subject,
    subject_for,
)
from shared.lab.nats import NatsServer
from shared.lab.wait import await_until
from shared.nats_users import ADMIN
from tests.deploy.test_nats_permissions import (
    NODE,
    N,
    _stamped,
    _status,
    _stored_value,
    login,
    publish_all,
    server,
)
from tests.nats.events_sample import instance

__all__ = ["server"]

pytestmark = pytest.mark.nats


def stamped(state: VrrpState, name: str = "VI_9") -> InstanceState:
    event = _stamped(instance(name=name, state=state))
    assert isinstance(event, InstanceState)
    return event.__class__(**{f: getattr(event, f) for f in event.__struct_fields__} | {"ts": time.time_ns()})


async def test_http_reads_the_bucket_follows_events_and_asks_status(server: NatsServer) -> None:
    async with login(server, "vrrp") as vrrp, login(server, "http") as http:
        first = await publish_all(vrrp, [stamped(VrrpState.BACKUP)])
        assert await first.flush(10)
        kept: list[StateEntry] = []
        feed = Feed(Model(), kept.append)
        await feed.follow(http.nc)
        await feed.snapshot(http.nc)  # the batched direct get of the bucket
        key = kv_key_for_subject(subject_for(stamped(VrrpState.BACKUP)))
        assert feed.model.entries[key].event.state == VrrpState.BACKUP  # type: ignore[union-attr]
        second = await publish_all(vrrp, [stamped(VrrpState.MASTER)])  # live, on its subject
        assert await second.flush(10)
        await await_until("the live MASTER", lambda: bool(kept) and kept[-1].key == key, 3.0)
        svc = await register_service(vrrp.nc, node=NODE, service="vrrp", version="0.1.0", status=_status)
        own = Replica(node=NODE, service="http", id="h1", version="0.1.0")
        await await_until("discovery to find vrrp", lambda: feed.discover(http.nc, own), 3.0)
        assert feed.live(NODE, "vrrp")
        reply = await http.nc.request(status_subject(NODE, "vrrp"), b"", timeout=2)
        assert b'"service":"vrrp"' in reply.data
        await svc.stop()
        for pub in (first, second):
            await pub.close()
        assert not http.errors and feed.dropped == 0


REFUSED_PUBLISH = [
    f"lifeline.{N}.vrrp.state.VI_1",  # forge a transition
    f"$KV.{STATE_BUCKET}.{N}.vrrp.state.VI_1",  # or the state behind /health
    f"lifeline.{N}.track.chk",  # move a priority
    f"lifeline.{N}.ctl.vrrp.set_priority",  # control requests are for admins
    f"lifeline.{N}.ctl.vrrp.maintenance",
    f"lifeline.{N}.ctl.vrrp.reload",
    f"lifeline.{N}.ctl.http.status",  # its own endpoint: it would hear itself
    "$SRV.INFO",  # its own micro service listens there too
    f"lifeline.{N}.notify.dead.x",
    f"$JS.API.CONSUMER.CREATE.KV_{STATE_BUCKET}",  # a KV watch: a consumer, which could deliver anywhere
    f"$JS.API.CONSUMER.CREATE.{EVENT_STREAM}",
    f"$JS.API.CONSUMER.DURABLE.CREATE.{EVENT_STREAM}.mine",
    f"$JS.API.STREAM.PURGE.KV_{STATE_BUCKET}",
    f"$JS.API.STREAM.DELETE.{EVENT_STREAM}",
    "$JS.API.INFO",
]


@pytest.mark.parametrize("subject", REFUSED_PUBLISH)
async def test_http_may_publish_nothing_that_acts(server: NatsServer, subject: str) -> None:
    async with login(server, "http") as http:
        await http.nc.publish(subject, b"{}")
        await http.nc.flush()
        await http.violation(subject)


@pytest.mark.parametrize("subject", [f"lifeline.{N}.ctl.vrrp.>", "_INBOX_admin.>", "_INBOX.>"])
async def test_http_may_not_listen_to_control_or_replies(server: NatsServer, subject: str) -> None:
    async with login(server, "http") as http:
        await http.nc.subscribe(subject)
        await http.nc.flush()
        await http.violation(subject)


async def test_http_cannot_forge_a_master(server: NatsServer) -> None:
    """Through the real Publisher: refused, and neither the bucket nor /health ever sees it."""
    forged = stamped(VrrpState.MASTER, name="VI_FORGED")
    forged = forged.__class__(
        **{f: getattr(forged, f) for f in forged.__struct_fields__} | {"detail": "forged"}
    )
    async with login(server, "http") as http, login(server, ADMIN) as admin:
        pub = await publish_all(http, [forged])
        assert not await pub.flush(2)
        assert pub.counters.published == 0
        await http.violation(subject_for(forged))
        await pub.close(flush_timeout=0.1)
        assert not await _stored_value(admin.nc, subject_for(forged), "forged")


async def test_http_cannot_watch_the_bucket(server: NatsServer) -> None:
    """A KV watch creates a consumer: refused (the feed reads by direct get instead)."""
    async with login(server, "http") as http:
        kv = await http.nc.jetstream(timeout=2).key_value(STATE_BUCKET)
        with pytest.raises((JetStreamError, TimeoutError)):
            watcher = await kv.watchall()
            with contextlib.suppress(Exception):
                await watcher.stop()  # type: ignore[no-untyped-call]
