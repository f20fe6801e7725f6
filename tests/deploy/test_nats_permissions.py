"""The generated per-service NATS users against a real nats-server.

Each service user does its job through the code the services use (the
``Publisher`` into JetStream and the KV bucket, direct gets of the state
bucket, micro endpoints answered to the admin, replica traffic through
``LIFELINE_REPLICAS``, the notifier's provisioned consumer, lease bucket and
dead letters), everything provisioned first by the admin as ``lifeline up``
does, and is refused, by the server, on what belongs to another service or
another node, on JetStream administration and on control subjects: the
refusal is the ``permissions violation`` nats-py reports to the error
callback, and the admin sees nothing of the refused event in the stream or
the bucket.  The whole attack surface, against real services, is
``test_escalation.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import msgspec
import nats
import nats.errors
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.errors import NotFoundError

from services.checker.publish import StateCache
from services.notifier.delivery.lease import Lease, open_lease_bucket
from shared.bus.direct_get import last_messages
from shared.bus.micro import register_service
from shared.bus.provision import ConsumerPlan, node_plan
from shared.bus.publisher import Publisher
from shared.bus.replica_reload import ReloadFanout
from shared.bus.replicas import Membership
from shared.events import (
    DEAD_LETTER_STREAM,
    EVENT_STREAM,
    MSG_ID_HEADER,
    STATE_BUCKET,
    DeadLetter,
    Event,
    ReloadReply,
    ReloadTrigger,
    TrackerKind,
    TrackerResult,
    durable_transition,
    encode,
    encode_token,
    kv_key_for_subject,
    status_subject,
    subject_for,
)
from shared.lab.nats import NatsServer, free_port
from shared.lab.wait import await_until
from shared.nats_users import ADMIN, SERVICE_USERS, generate_passwords, render_config, service_permissions
from tests.nats.events_sample import every_event, instance

pytestmark = pytest.mark.nats

NODE = "lb-1.test"  # a dot: the node name is token-encoded in every permission
OTHER = "lb-2"
N = encode_token(NODE)
PASSWORDS = generate_passwords()
MAIL = ConsumerPlan("notifier_mail", (f"lifeline.{N}.vrrp.>", f"lifeline.{N}.lvs.>"))
PLAN = node_plan(NODE, [MAIL])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """A nats-server on the generated config: one user per service, as ``lifeline up`` runs it."""
    workdir = tmp_path_factory.mktemp("nats-perms")
    port = free_port()
    conf = render_config(NODE, PASSWORDS, port=port, store_dir=str(workdir / "js"), host="127.0.0.1")
    srv = NatsServer(workdir, port=port, name=NODE, config=conf)
    srv.start()
    srv.provision_now(PLAN, user=ADMIN, password=PASSWORDS[ADMIN])  # what lifeline up does first
    try:
        yield srv
    finally:
        srv.stop(timeout=5)


class User:
    """A connection as one user, with every asynchronous error the server sent it."""

    def __init__(self, nc: Client, errors: list[str]) -> None:
        self.nc = nc
        self.errors = errors

    def violated(self, subject: str) -> bool:
        """Has the server reported a permissions violation naming ``subject``?"""
        return any("permissions violation" in e.lower() and subject.lower() in e.lower() for e in self.errors)

    async def violation(self, subject: str) -> None:
        """Until the server reports a permissions violation naming ``subject`` (2 s at most)."""
        await await_until(
            f"a violation on {subject}", lambda: self.violated(subject), 2.0, explain=self.report
        )

    def report(self) -> str:
        return f"errors: {self.errors}"


@contextlib.asynccontextmanager
async def login(server: NatsServer, user: str) -> AsyncIterator[User]:
    errors: list[str] = []

    async def error_cb(exc: Exception) -> None:
        errors.append(str(exc))

    nc = await nats.connect(
        server.url,
        user=user,
        password=PASSWORDS[user],
        error_cb=error_cb,
        allow_reconnect=False,
        inbox_prefix=f"_INBOX_{user}",  # as shared.bus.connect sets it
    )
    try:
        yield User(nc, errors)
    finally:
        await nc.close()


async def publish_all(user: User, events: list[Event]) -> Publisher:
    pub = Publisher(NODE, ack_timeout=1.0)
    for event in events:
        pub.publish(event)
    await pub.start(user.nc)
    return pub


async def stored(admin: Client, subject: str) -> bool:
    """Is there a state-bucket entry for ``subject`` (what every published event leaves)?"""
    kv = await admin.jetstream().key_value(STATE_BUCKET)
    try:
        await kv.get(kv_key_for_subject(subject))
    except Exception:
        return False
    return True


def by_kind(kind: str) -> list[Event]:
    return [e for e in every_event() if subject_for(e.__class__(**_fields(e, NODE))).split(".")[2] == kind]


def _fields(event: Event, node: str) -> dict[str, object]:
    return {f: getattr(event, f) for f in event.__struct_fields__} | {"node": node}


# --------------------------------------------------------------------------- each does its job


async def test_config_lists_every_service_user() -> None:
    text = render_config(NODE, PASSWORDS)
    for user in (*SERVICE_USERS, ADMIN):
        assert f'user: "{user}"' in text
    assert "jetstream: enabled" in text
    assert f"lifeline.{N}.vrrp.>" in service_permissions(NODE, "vrrp").publish


def test_checked_in_config_is_the_generated_one() -> None:
    checked_in = Path(__file__).parents[2] / "deploy" / "nats-server.conf"
    assert checked_in.read_text() == render_config("lb1")


async def _request_retrying(nc: Client, subject: str, attempts: int = 5) -> Msg:
    """A request, asked again on "no responders" (as the healthcheck's retries would).

    Seen once in CI-like load (1 in ~25 runs): the server answered "no
    responders" to a request sent after the responder's SUB was flushed; the
    permission under test is the same either way, so this only absorbs timing.
    """
    for _ in range(attempts - 1):
        try:
            return await nc.request(subject, b"", timeout=2)
        except nats.errors.NoRespondersError:
            await asyncio.sleep(0.2)
    return await nc.request(subject, b"", timeout=2)


async def test_vrrp_publishes_state_reads_trackers_answers_status(server: NatsServer) -> None:
    async with login(server, "vrrp") as vrrp, login(server, ADMIN) as admin, login(server, "checker") as chk:
        events = [instance(), *by_kind("vrrp")]
        got: list[str] = []
        await vrrp.nc.subscribe(f"lifeline.{N}.track.>", cb=_collect(got))
        pub = await publish_all(vrrp, events)
        assert await pub.flush(10)
        assert pub.counters.published == len(events) and pub.counters.rejected == 0
        info = await admin.nc.jetstream().stream_info(EVENT_STREAM, subjects_filter=f"lifeline.{N}.vrrp.>")
        assert info.state.subjects and len(info.state.subjects) >= 2
        # the vrrp service's start-up read of its trackers' last results (services/vrrp/service.py)
        tracker = next(e for e in by_kind("track") if isinstance(e, TrackerResult))
        checker_pub = await publish_all(chk, [tracker])
        assert await checker_pub.flush(10)
        key = f"$KV.{STATE_BUCKET}.{kv_key_for_subject(subject_for(_stamped(tracker)))}"
        read = await last_messages(vrrp.nc, f"KV_{STATE_BUCKET}", [key])
        assert read[key].data and not read[key].deleted
        await admin.nc.publish(f"lifeline.{N}.track.chk", b"{}")
        svc = await register_service(
            vrrp.nc, node=NODE, service="vrrp", version="0.1.0", status=_status, publisher=pub
        )
        reply = await _request_retrying(admin.nc, status_subject(NODE, "vrrp"))  # only admins ask
        assert b'"service":"vrrp"' in reply.data
        assert (await admin.nc.request("$SRV.PING.lifeline-vrrp", b"", timeout=2)).data
        await await_until("the tracker result to reach vrrp", lambda: bool(got), 3.0)
        await svc.stop()
        await pub.close()
        await checker_pub.close()
        assert not vrrp.errors and not chk.errors


async def test_checker_publishes_results_and_transitions(server: NatsServer) -> None:
    async with login(server, "checker") as checker, login(server, ADMIN) as admin:
        events = by_kind("track") + by_kind("check")
        events.append(durable_transition(by_kind("check")[0]))  # type: ignore[arg-type]
        pub = await publish_all(checker, events)
        assert await pub.flush(10)
        assert pub.counters.published == len(events) and pub.counters.rejected == 0
        assert await stored(admin.nc, subject_for(_stamped(events[-1])))
        # the snapshot a replica reads before it takes units over (services/checker/publish.py)
        cache = StateCache(NODE)
        tracker = next(e for e in events if isinstance(e, TrackerResult))
        await cache.refresh(checker.nc, [cache.tracker_key(tracker.tracker)])
        assert cache.tracker(tracker.tracker) is not None
        # replica beats, heard back through the replicas' stream (shared/bus/replicas.py)
        members = Membership(checker.nc, NODE, "checker", "r1", beat=0.1, ttl=0.3)
        await members.start()
        await await_until("its own beat back", lambda: members.echoed, 3.0)
        await members.stop()
        await pub.close()
        assert not checker.errors


async def test_bfd_publishes_its_sessions_as_tracker_results(server: NatsServer) -> None:
    """The bfd service's one right: its sessions' tracker results (what track_bfd follows), stored.

    Only of kind ``bfd`` (their own subjects): a vrrp_script's result is
    refused to it, which test_escalation.py proves with every user.
    """
    async with login(server, "bfd") as bfd, login(server, ADMIN) as admin:
        sample = next(e for e in by_kind("track") if isinstance(e, TrackerResult))
        tracker = msgspec.structs.replace(sample, kind=TrackerKind.BFD)
        pub = await publish_all(bfd, [tracker])
        assert await pub.flush(10) and pub.counters.rejected == 0
        assert await stored(admin.nc, subject_for(_stamped(tracker)))
        await pub.close()
        assert not bfd.errors


async def test_checker_replicas_fan_out_a_bus_reload_and_withdraw_removed_state(server: NatsServer) -> None:
    """Beats and a bus reload between replicas through the stream; deleting its KV keys."""
    async with (
        login(server, "checker") as one,
        login(server, "checker") as two,
        login(server, ADMIN) as admin,
    ):
        summary = "1 added, 0 removed, 0 changed, 2 kept"
        reply, reloaded = await reload_two_replicas("checker", one, two, summary)
        assert reply.ok and reply.detail == f"{summary} (replicas r1, r2)", reply
        assert reloaded == ["r1:request", "r2:request"]

        tracker = next(e for e in by_kind("track") if isinstance(e, TrackerResult))
        subject = subject_for(_stamped(tracker))
        pub = await publish_all(one, [tracker])
        assert await pub.flush(10) and await stored(admin.nc, subject)
        pub.withdraw(subject)
        assert await pub.flush(10) and pub.counters.rejected == 0
        assert not await stored(admin.nc, subject)
        await pub.close()
        assert not one.errors and not two.errors


async def test_lvs_publishes_pool_events_and_follows_checks(server: NatsServer) -> None:
    async with login(server, "lvs") as lvs, login(server, ADMIN) as admin:
        seen: list[str] = []
        await lvs.nc.subscribe(f"lifeline.{N}.check.>", cb=_collect(seen))
        await lvs.nc.subscribe(f"lifeline.{N}.vrrp.state.*", cb=_collect(seen))
        events = by_kind("lvs")
        pub = await publish_all(lvs, events)
        assert await pub.flush(10)
        assert pub.counters.published == len(events) and pub.counters.rejected == 0
        await admin.nc.publish(f"lifeline.{N}.check.a.b", b"{}")
        await admin.nc.publish(f"lifeline.{N}.vrrp.state.VI_1", b"{}")
        await await_until("both messages", lambda: len(seen) == 2, 3.0)
        await pub.close()
        assert not lvs.errors


async def test_notifier_consumes_leases_and_dead_letters(server: NatsServer) -> None:
    async with login(server, "vrrp") as vrrp, login(server, "notifier") as notifier:
        pub = await publish_all(vrrp, [instance("VI_NOTIFY")])
        assert await pub.flush(10)
        await pub.close()
        js = notifier.nc.jetstream(timeout=5.0)
        kv, ttl = await open_lease_bucket(js)
        lease = Lease(kv, "mail", "t:1", ttl)
        assert await lease.try_acquire()
        assert (await js.consumer_info(EVENT_STREAM, MAIL.durable)).config.durable_name == MAIL.durable
        sub = await js.pull_subscribe_bind(durable=MAIL.durable, stream=EVENT_STREAM)
        msgs = await sub.fetch(100, timeout=3)
        assert any(m.subject.endswith("VI_NOTIFY") for m in msgs)
        for m in msgs:
            await m.ack()
        letter = DeadLetter(
            node=NODE,
            ts=1,
            sink="mail",
            reason="SMTP 550",
            retryable=False,
            attempts=1,
            subject=msgs[0].subject,
            stream=EVENT_STREAM,
            stream_seq=msgs[0].metadata.sequence.stream,
            event_id="x:1",
            event=instance(),
        )
        ack = await js.publish(
            f"lifeline.{N}.notify.dead.mail",
            encode(letter),
            headers={MSG_ID_HEADER: "mail:x:1"},
            stream=DEAD_LETTER_STREAM,
        )
        assert ack.stream == DEAD_LETTER_STREAM
        await notifier.nc.publish("mirror.lifeline.x", b"{}")  # the republish sink's default target
        await notifier.nc.flush()
        await lease.release()
        assert not notifier.errors


async def test_notifier_replicas_pass_a_reload_on(server: NatsServer) -> None:
    """Beats and a bus reload between replicas through the stream."""
    async with login(server, "notifier") as a, login(server, "notifier") as b:
        summary = "sinks: 0 added, 0 changed, 0 removed, 1 kept"
        reply, reloaded = await reload_two_replicas("notifier", a, b, summary)
        assert reply.ok and reply.detail == f"{summary} (replicas r1, r2)", reply
        assert reloaded == ["r1:request", "r2:request"]
        assert not a.errors and not b.errors


# --------------------------------------------------------------------------- and is refused the rest

REFUSED_PUBLISH = [
    ("notifier", f"lifeline.{N}.track.chk"),
    ("notifier", f"lifeline.{N}.vrrp.state.VI_1"),
    ("notifier", f"$KV.{STATE_BUCKET}.{N}.track.chk"),
    ("notifier", f"lifeline.{N}.ctl.vrrp.reload"),
    ("checker", f"lifeline.{N}.vrrp.state.VI_1"),
    ("checker", f"$KV.{STATE_BUCKET}.{N}.vrrp.state.VI_1"),
    ("checker", f"lifeline.{N}.lvs.x"),
    ("checker", f"lifeline.{OTHER}.track.chk"),
    ("vrrp", f"lifeline.{N}.track.chk"),
    ("vrrp", f"lifeline.{N}.health.a.b"),
    ("vrrp", f"lifeline.{OTHER}.vrrp.state.VI_1"),
    ("vrrp", f"$KV.{STATE_BUCKET}.{OTHER}.vrrp.state.VI_1"),
    ("vrrp", f"$JS.API.STREAM.DELETE.{EVENT_STREAM}"),
    ("vrrp", f"$JS.API.STREAM.PURGE.{EVENT_STREAM}"),
    ("vrrp", f"$JS.API.STREAM.UPDATE.{EVENT_STREAM}"),
    ("vrrp", f"$JS.API.STREAM.CREATE.{EVENT_STREAM}"),
    ("vrrp", f"$JS.API.CONSUMER.CREATE.KV_{STATE_BUCKET}"),
    ("vrrp", "$JS.API.INFO"),
    ("vrrp", f"lifeline.{N}.ctl.checker.reload"),
    ("vrrp", f"lifeline.{N}.ctl.vrrp.status"),  # not even its own: control is for admins
    ("checker", f"lifeline.{N}.ctl.checker.status"),
    ("lvs", f"lifeline.{N}.vrrp.state.VI_1"),
    ("lvs", f"lifeline.{N}.check.a.b"),
    ("lvs", "mirror.lifeline.x"),
    ("vrrp", f"lifeline.{N}.replicas.notifier.say.beat"),
    ("notifier", f"lifeline.{OTHER}.replicas.notifier.say.beat"),
    ("notifier", f"lifeline.{N}.replicas.notifier.heard.reload"),  # only the stream speaks there
    ("notifier", f"lifeline.{N}.replicas.checker.say.reload"),  # nothing into another's replicas
    ("checker", f"lifeline.{N}.replicas.notifier.say.beat"),
    ("lvs", f"lifeline.{N}.replicas.lvs.say.beat"),  # a service without replicas has no such subject
    ("notifier", "$JS.API.CONSUMER.CREATE.KV_lifeline_notifier_leases"),  # leases are never listed
    ("notifier", f"$JS.API.CONSUMER.DURABLE.CREATE.{EVENT_STREAM}.notifier_new"),
    ("notifier", f"$JS.API.CONSUMER.CREATE.{EVENT_STREAM}.notifier_new"),
    ("notifier", f"$JS.API.CONSUMER.DELETE.{EVENT_STREAM}.notifier_mail"),
    ("notifier", f"$JS.API.STREAM.DELETE.{EVENT_STREAM}"),
    ("notifier", f"$JS.API.STREAM.UPDATE.{DEAD_LETTER_STREAM}"),
]


@pytest.mark.parametrize(("user", "subject"), REFUSED_PUBLISH)
async def test_refused_publish(server: NatsServer, user: str, subject: str) -> None:
    async with login(server, user) as u:
        await u.nc.publish(subject, b"{}")
        await u.nc.flush()
        await u.violation(subject)


REFUSED_SUBSCRIBE = [
    ("notifier", f"lifeline.{N}.ctl.vrrp.>"),  # cannot impersonate another service's endpoints
    ("checker", f"lifeline.{N}.ctl.vrrp.reload"),
    ("vrrp", f"lifeline.{N}.ctl.lvs.status"),
    ("lvs", f"lifeline.{OTHER}.check.>"),
    ("bfd", f"lifeline.{N}.track.>"),  # it publishes tracker results, never hears them
    ("vrrp", "_INBOX.>"),  # nobody reads another user's replies
    ("lvs", "_INBOX_admin.>"),
    ("checker", "_INBOX_vrrp.>"),
    ("notifier", f"lifeline.{N}.replicas.checker.heard.*"),
    ("checker", f"lifeline.{N}.replicas.checker.say.*"),  # it would hear itself
]


@pytest.mark.parametrize(("user", "subject"), REFUSED_SUBSCRIBE)
async def test_refused_subscribe(server: NatsServer, user: str, subject: str) -> None:
    async with login(server, user) as u:
        await u.nc.subscribe(subject)
        await u.nc.flush()
        await u.violation(subject)


@pytest.mark.parametrize(
    ("user", "kind"),
    [("notifier", "track"), ("notifier", "vrrp"), ("checker", "vrrp"), ("lvs", "health"), ("bfd", "vrrp")],
)
async def test_publisher_of_a_foreign_event_is_refused(server: NatsServer, user: str, kind: str) -> None:
    """Through the real Publisher: the server refuses, nothing reaches the stream or the bucket."""
    event = _stamped(by_kind(kind)[0] if kind != "health" else durable_transition(by_kind("check")[0]))
    event = event.__class__(**(_fields(event, NODE) | {"detail": f"forged by {user}"}))
    subject = subject_for(event)
    async with login(server, user) as u, login(server, ADMIN) as admin:
        with contextlib.suppress(Exception):  # the KV key may exist from a legitimate test
            kv = await admin.nc.jetstream().key_value(STATE_BUCKET)
            await kv.delete(kv_key_for_subject(subject))
        pub = await publish_all(u, [event])
        assert not await pub.flush(2)  # never acknowledged: the publisher keeps it and retries
        assert pub.counters.published == 0
        await u.violation(subject)
        await pub.close(flush_timeout=0.1)
        assert not await _stored_value(admin.nc, subject, f"forged by {user}")


# --------------------------------------------------------------------------- helpers


async def reload_two_replicas(
    service: str, one: User, two: User, summary: str
) -> tuple[ReloadReply, list[str]]:
    """Two replicas as the service runs them (membership beats, the fan-out): a bus reload on the first.

    Returns the combined reply and who reloaded, sorted.  One connection
    each, as in the service: calls and answers go through ``LIFELINE_REPLICAS``.
    """
    reloaded: list[str] = []

    def here(name: str) -> Callable[[ReloadTrigger], Awaitable[ReloadReply]]:
        async def reload(trigger: ReloadTrigger) -> ReloadReply:
            reloaded.append(f"{name}:{trigger.value}")
            return ReloadReply(ok=True, detail=summary)

        return reload

    replicas: list[tuple[Membership, ReloadFanout]] = []
    try:
        for user, name in ((one, "r1"), (two, "r2")):
            members = Membership(user.nc, NODE, service, name, beat=0.1, ttl=0.5)
            fan_out = ReloadFanout(
                user.nc,
                NODE,
                service,
                replica_id=name,
                reload=here(name),
                peers=members.members,
                timeout=5.0,
            )
            replicas.append((members, fan_out))
            await members.start()
            await fan_out.start()
        await await_until("both live", lambda: all(m.live == {"r1", "r2"} for m, _ in replicas), 5.0)
        reply = await replicas[0][1].request(b"")
    finally:
        for members, fan_out in replicas:
            await fan_out.stop()
            await members.stop()
    return reply, sorted(reloaded)


async def _status() -> dict[str, object]:
    return {"ok": True}


def _collect(into: list[str]) -> Callable[[Msg], Awaitable[None]]:
    async def cb(msg: Msg) -> None:
        into.append(msg.subject)

    return cb


def _stamped(event: Event) -> Event:
    return event.__class__(**_fields(event, NODE))


async def _stored_value(admin: Client, subject: str, needle: str) -> bool:
    kv = await admin.jetstream().key_value(STATE_BUCKET)
    try:
        entry = await kv.get(kv_key_for_subject(subject))
    except (NotFoundError, Exception):
        return False
    return entry.value is not None and needle.encode() in entry.value
