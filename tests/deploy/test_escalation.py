"""A stolen service credential cannot move a VIP: every attack, against a node started by ``lifeline up``.

Node a runs ``lifeline up`` in its network namespace (the generated users,
the admin's provisioning, real vrrp, checker and notifier; VI_1 MASTER at
priority 150 with a tracker worth -100 and a notify script); node b runs our
vrrp alone at priority 100.  Logged in with nothing but one service's
password (read from the store, as a thief would), every user tries:

- every JetStream API verb on every stream and bucket: create, update with a
  ``republish`` onto a control subject, ``sealed``, ``deny_delete``, delete,
  purge, message delete, consumers (push onto a control or tracker subject,
  durable, ephemeral), deleting the notifier's consumer;
- reading replies: ``_INBOX.>`` and every other user's inbox prefix;
- publishing on control, tracker and state subjects of its own node and another;
- hearing itself (subscribing to what it may publish, for ``allow_responses``);
- making the server carry a message for it: a publish acknowledgement, a direct
  get (with ``no_hdr``) of a value it stored, a consumer's delivery, each aimed
  at vrrp's control or tracker subject.

The server refuses the first four (a permissions violation for each; stream
configurations and consumers unchanged afterwards); the services drop the
last (vrrp counts the refused tracker messages and logs the control ones).
Then the node still works: VI_1 is still a's with no control change, a notify
script still runs, and cutting a's cable hands the VIP to b.  That the lvs
user's rights still let lvs program IPVS is shown in the kernel VM
(``tests/kernel``: lvs runs there as user ``lvs`` on the generated config).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import nats
import nats.errors
import pytest
from nats.aio.client import Client

from shared.cli.up import USERS_FILE
from shared.events import (
    DEAD_LETTER_STREAM,
    EVENT_STREAM,
    LEASE_BUCKET,
    MSG_ID_HEADER,
    REPLICA_STREAM,
    STATE_BUCKET,
    InstanceControl,
    TrackerKind,
    TrackerResult,
    encode,
    status_subject,
)
from shared.lab.daemon import Daemon
from shared.lab.netns import in_namespace
from shared.lab.segment import Host, Segment
from shared.lab.wait import wait_until
from shared.nats_users import ADMIN, PASSWORD_ENV, SERVICE_USERS
from tests.support.netns import netns_session

__all__ = ["netns_session"]

pytestmark = [pytest.mark.root, pytest.mark.nats, pytest.mark.timeout(300)]

VIP = "192.168.200.50"
PORT = 4222
STREAMS = (EVENT_STREAM, f"KV_{STATE_BUCKET}", DEAD_LETTER_STREAM, f"KV_{LEASE_BUCKET}", REPLICA_STREAM)
API = "$JS.API"


def conf(priority: int, state: str, script: str = "", notify: Path | None = None) -> str:
    tracker = f'vrrp_script chk {{\n    script "{script}"\n    interval 1\n}}\n' if script else ""
    track = "    track_script {\n        chk weight -100\n    }\n" if script else ""
    note = f'    notify "{notify}"\n' if notify else ""
    return (
        f"{tracker}vrrp_instance VI_1 {{\n    state {state}\n    interface eth0\n    virtual_router_id 77\n"
        f"    priority {priority}\n    version 3\n    advert_int 0.2\n{track}{note}"
        f"    virtual_ipaddress {{\n        {VIP}/24\n    }}\n}}\n"
    )


@dataclass
class Node:
    host: Host
    up: Daemon
    store: Path
    notes: Path
    passwords: dict[str, str] = field(default_factory=dict)

    def log(self) -> str:
        return self.up.log.read_text(errors="replace")

    def run(self, coro: Any) -> Any:
        """A coroutine on a's loopback: in a thread that joined a's namespace."""
        return in_namespace(self.host.name, lambda: asyncio.run(coro), timeout=240)


@pytest.fixture
def segment(netns_session: None) -> Iterator[Segment]:
    with Segment(["a", "b"], observer=False) as seg:
        yield seg


@pytest.fixture
def node(segment: Segment, tmp_path: Path) -> Iterator[Node]:
    a, b = segment.hosts
    notes = tmp_path / "notes"
    note = tmp_path / "note.sh"
    note.write_text(f'#!/bin/sh\necho "$@" >> {notes}\n')
    note.chmod(0o755)
    conf_a = tmp_path / "a.conf"
    conf_a.write_text(conf(150, "MASTER", "/bin/true", note))
    store = tmp_path / "store"
    argv = [sys.executable, "-m", "shared.cli.main", "up", "--config", str(conf_a), "--node", "a"]
    argv += ["--nats-port", str(PORT), "--store-dir", str(store)]
    up = Daemon(argv, tmp_path / "up.log", a.name).start()
    b.start("lifeline", conf(100, "BACKUP"))
    n = Node(a, up, store, notes)
    try:
        ready = ("lifeline-vrrp ready", "lifeline-checker ready", "lifeline-notifier ready")
        wait_until(
            "every service of a ready", lambda: all(r in n.log() for r in ready), 90, 0.2, explain=n.log
        )
        wait_until("a holding the VIP", lambda: a.holds(VIP), 30, 0.1, explain=n.log)
        for line in (store / USERS_FILE).read_text().splitlines():
            var, _, value = line.partition("=")
            for user in (*SERVICE_USERS, ADMIN):
                if var == PASSWORD_ENV.format(user=user.upper()):
                    n.passwords[user] = value
        yield n
    finally:
        up.stop(timeout=15)
        b.stop()


# --------------------------------------------------------------------------- the attacker's side


class Thief:
    """A connection with one service's password, and every permission violation the server reported."""

    def __init__(self, user: str) -> None:
        self.user = user
        self.errors: list[str] = []
        self.nc: Client | None = None

    async def login(self, password: str) -> Thief:
        async def on_error(exc: Exception) -> None:
            self.errors.append(str(exc).lower())

        self.nc = await nats.connect(
            f"nats://127.0.0.1:{PORT}",
            user=self.user,
            password=password,
            error_cb=on_error,
            allow_reconnect=False,
            inbox_prefix=f"_INBOX_{self.user}",
        )
        return self

    def refused(self, subject: str) -> bool:
        return any("permissions violation" in e and subject.lower() in e for e in self.errors)

    async def until_refused(self, subject: str) -> bool:
        for _ in range(100):
            if self.refused(subject):
                return True
            await asyncio.sleep(0.02)
        return False

    async def request(self, subject: str, body: dict[str, Any] | bytes) -> None:
        """The request as a client sends it (a reply inbox of its own), without waiting for an answer."""
        assert self.nc is not None
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        await self.nc.publish(subject, data, reply=self.nc.new_inbox())
        await self.nc.flush()


def jetstream_attacks(node: str) -> list[tuple[str, dict[str, Any]]]:
    """Every administration verb on every stream, with the payload that would hurt most."""
    ctl = f"lifeline.{node}.ctl.vrrp.maintenance"
    track = f"lifeline.{node}.track.chk"
    out: list[tuple[str, dict[str, Any]]] = [
        (f"{API}.STREAM.CREATE.EVIL", {"name": "EVIL", "subjects": ["evil.>"]}),
    ]
    for stream in STREAMS:
        base = {"name": stream, "subjects": [f"lifeline.{node}.vrrp.>"]}
        out += [
            (f"{API}.STREAM.UPDATE.{stream}", {**base, "republish": {"src": ">", "dest": ctl}}),
            (f"{API}.STREAM.UPDATE.{stream}", {**base, "sealed": True}),
            (f"{API}.STREAM.UPDATE.{stream}", {**base, "deny_delete": True, "deny_purge": True}),
            (f"{API}.STREAM.DELETE.{stream}", {}),
            (f"{API}.STREAM.PURGE.{stream}", {}),
            (f"{API}.STREAM.MSG.DELETE.{stream}", {"seq": 1}),
            (
                f"{API}.CONSUMER.CREATE.{stream}",
                {"stream_name": stream, "config": {"deliver_subject": ctl, "ack_policy": "none"}},
            ),
            (
                f"{API}.CONSUMER.CREATE.{stream}.evil",
                {"stream_name": stream, "config": {"name": "evil", "deliver_subject": track}},
            ),
            (
                f"{API}.CONSUMER.DURABLE.CREATE.{stream}.evil",
                {"stream_name": stream, "config": {"durable_name": "evil", "deliver_subject": track}},
            ),
        ]
    out.append((f"{API}.CONSUMER.DELETE.{EVENT_STREAM}.notifier_script", {}))
    return out


def foreign_subjects(user: str) -> list[str]:
    """Control, tracker and state subjects of node a and of node b that ``user`` has no business on."""
    subjects = [
        "lifeline.a.ctl.vrrp.maintenance",
        "lifeline.a.ctl.vrrp.set_priority",
        "lifeline.a.ctl.checker.reload",
        f"lifeline.a.ctl.{user}.status",
        "lifeline.b.ctl.vrrp.maintenance",
        "lifeline.b.track.chk",
        "lifeline.b.vrrp.state.VI_1",
        f"$KV.{STATE_BUCKET}.b.track.chk",
    ]
    if user != "checker":  # the checker's own job: it may say how its trackers are
        subjects += ["lifeline.a.track.chk", f"$KV.{STATE_BUCKET}.a.track.chk"]
    if user != "vrrp":
        subjects += ["lifeline.a.vrrp.state.VI_1", f"$KV.{STATE_BUCKET}.a.vrrp.state.VI_1"]
    return subjects


def forged_failure() -> bytes:
    """A failing tracker result for chk: what would take a's priority from 150 to 50."""
    forged = TrackerResult(node="a", ts=time.time_ns(), seq=1, boot_id="thief", tracker="chk",
                           kind=TrackerKind.SCRIPT, ok=False, weight=-100, contribution=-100)  # fmt: skip
    return encode(forged)


async def attack(user: str, password: str) -> dict[str, list[str]]:
    """Everything ``user``'s password allows trying; what was not refused, by kind (empty: all refused)."""
    thief = await Thief(user).login(password)
    assert thief.nc is not None
    missed: dict[str, list[str]] = {"jetstream": [], "subscribe": [], "publish": []}
    try:
        for subject, body in jetstream_attacks("a"):
            await thief.request(subject, body)
            if not await thief.until_refused(subject):
                missed["jetstream"].append(subject)
        others = [u for u in (*SERVICE_USERS, ADMIN) if u != user]
        hear_self = f"lifeline.a.replicas.{user}.say.*"  # where a replica publishes, if it has replicas
        for subject in ["_INBOX.>", *(f"_INBOX_{u}.>" for u in others), hear_self]:
            await thief.nc.subscribe(subject)
            await thief.nc.flush()
            if not await thief.until_refused(subject):
                missed["subscribe"].append(subject)
        for subject in foreign_subjects(user):
            await thief.nc.publish(subject, forged_failure())
            await thief.nc.flush()
            if not await thief.until_refused(subject):
                missed["publish"].append(subject)
        await carried_by_the_server(thief)
    finally:
        await thief.nc.close()
    return missed


async def carried_by_the_server(thief: Thief) -> None:
    """Aim what the server sends on this user's behalf at vrrp's control and tracker subjects.

    Not refused by the server (it may publish where the request says): vrrp
    must drop each one.  The forged tracker result is stored first where this
    user may store something, then fetched by direct get with ``no_hdr``.
    """
    nc = thief.nc
    assert nc is not None
    ctl, track = "lifeline.a.ctl.vrrp.maintenance", "lifeline.a.track.chk"
    maintenance = json.dumps({"instance": "VI_1", "duration": 600, "requested_by": "thief"}).encode()
    own = {
        "vrrp": (
            "lifeline.a.vrrp.split_brain.VI_1",
            f"$KV.{STATE_BUCKET}.a.vrrp.split_brain.VI_1",
            STATE_BUCKET,
        ),
        "checker": ("lifeline.a.health.x.y", f"$KV.{STATE_BUCKET}.a.check.x.y", STATE_BUCKET),
        "lvs": ("lifeline.a.lvs.x", f"$KV.{STATE_BUCKET}.a.lvs.x", STATE_BUCKET),
        "notifier": ("lifeline.a.notify.dead.x", f"$KV.{LEASE_BUCKET}.sink.x", LEASE_BUCKET),
        "http": (  # all it may store: its own reload event
            "lifeline.a.service.reload.http",
            f"$KV.{STATE_BUCKET}.a.service.reload.http",
            STATE_BUCKET,
        ),
        "bfd": ("lifeline.a.track.x", f"$KV.{STATE_BUCKET}.a.track.x", STATE_BUCKET),  # a session's state
    }[thief.user]
    event_subject, key_subject, bucket = own
    js_headers = {MSG_ID_HEADER: f"thief:{time.monotonic_ns()}"}
    # a JetStream publish whose acknowledgement goes to the control subject, with a maintenance body
    await nc.publish(event_subject, maintenance, reply=ctl, headers=js_headers)
    # a value it may store, fetched by direct get onto vrrp's tracker subject, bare and with headers
    await nc.publish(key_subject, forged_failure(), headers=js_headers)
    await nc.flush()
    await asyncio.sleep(0.2)
    direct = f"{API}.DIRECT.GET.KV_{bucket}"
    for body in ({"last_by_subj": key_subject, "no_hdr": True}, {"last_by_subj": key_subject}):
        await nc.publish(direct, json.dumps(body).encode(), reply=track)
        await nc.publish(direct, json.dumps(body).encode(), reply=ctl)
    if thief.user == "notifier":  # its consumer's deliveries (events, with a $JS.ACK reply), aimed at both;
        # no_wait: a pull left waiting would take the next events from the real notifier for an ack_wait
        for reply in (ctl, track):
            await nc.publish(
                f"{API}.CONSUMER.MSG.NEXT.{EVENT_STREAM}.notifier_script",
                b'{"batch": 5, "no_wait": true}',
                reply=reply,
            )
    await nc.flush()


async def snapshot(password: str) -> dict[str, Any]:
    """Every stream's configuration and consumers, as the admin sees them."""
    nc = await nats.connect(f"nats://127.0.0.1:{PORT}", user=ADMIN, password=password)
    try:
        js = nc.jetstream()
        names = sorted(await js.streams_info(), key=lambda s: s.config.name or "")
        out: dict[str, Any] = {}
        for info in names:
            name = info.config.name or ""
            consumers = sorted(c.name for c in await js.consumers_info(name))
            out[name] = {"config": info.config.as_dict(), "consumers": consumers}
        return out
    finally:
        await nc.close()


async def last_state_seq(password: str) -> int:
    """The stream sequence of a's last VI_1 state event: a transition after the attacks would raise it."""
    nc = await nats.connect(f"nats://127.0.0.1:{PORT}", user=ADMIN, password=password)
    try:
        return int((await nc.jetstream().get_last_msg(EVENT_STREAM, "lifeline.a.vrrp.state.VI_1")).seq or 0)
    finally:
        await nc.close()


async def admin_view(password: str) -> tuple[dict[str, Any], list[InstanceControl]]:
    """vrrp's status, and every InstanceControl event of node a in the stream."""
    nc = await nats.connect(
        f"nats://127.0.0.1:{PORT}", user=ADMIN, password=password, inbox_prefix="_INBOX_admin"
    )
    try:
        status = msgspec.json.decode((await nc.request(status_subject("a", "vrrp"), b"", timeout=5)).data)
        js = nc.jetstream()
        controls: list[InstanceControl] = []
        try:
            sub = await js.subscribe("lifeline.a.vrrp.control.>", ordered_consumer=True, deliver_policy="all")
            while True:
                msg = await sub.next_msg(timeout=1)
                controls.append(msgspec.json.decode(msg.data, type=InstanceControl))
        except (nats.errors.TimeoutError, nats.js.errors.NotFoundError):
            pass
        return status, controls
    finally:
        await nc.close()


# --------------------------------------------------------------------------- the test


def test_no_service_credential_moves_a_vip_and_the_node_still_works(node: Node, segment: Segment) -> None:
    a, b = segment.hosts
    admin = node.passwords[ADMIN]
    before = node.run(snapshot(admin))
    state_seq = node.run(last_state_seq(admin))
    assert "notifier_script" in before[EVENT_STREAM]["consumers"]
    for user in SERVICE_USERS:
        missed = node.run(attack(user, node.passwords[user]))
        assert missed == {"jetstream": [], "subscribe": [], "publish": []}, (user, missed)
    after = node.run(snapshot(admin))
    assert after == before, "a stream's configuration or consumers changed"

    time.sleep(2.0)  # ten adverts: a forged failure would have handed VI_1 to b by now
    assert a.holds(VIP) and not b.holds(VIP)
    assert node.run(last_state_seq(admin)) == state_seq, "VI_1 changed state on a during the attacks"
    status, controls = node.run(admin_view(admin))
    assert status["detail"]["instances"]["VI_1"]["state"] == "MASTER"
    assert status["detail"]["refused_tracker_messages"] >= 4  # the direct gets aimed at it arrived, refused
    assert controls == [], controls
    assert "vrrp: dropped lifeline.a.ctl.vrrp.maintenance: no inbox to answer" in node.log()

    wait_until("the notify script for MASTER", lambda: "MASTER" in _notes(node), 15, 0.1)
    a.cut()  # the node still fails over, and still notifies
    wait_until("b to take the VIP", lambda: b.holds(VIP), 15, 0.05)
    wait_until("a's notify script for FAULT after the cut", lambda: "VI_1 FAULT" in _notes(node), 15, 0.1)


def _notes(node: Node) -> str:
    return node.notes.read_text() if node.notes.exists() else ""
