"""The bus contract without a server: Structs, codec, subjects and the token encoder."""

from __future__ import annotations

import asyncio
import re

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.bus.outbox import Outbox
from shared.events import (
    CONTRACT_VERSION,
    DEAD_LETTER_SUBJECTS,
    EVENT_STREAM_SUBJECTS,
    EVENT_TYPES,
    CheckerKind,
    DeadLetter,
    GroupState,
    InstanceControl,
    InstanceEvent,
    InstanceState,
    OutboxOverflow,
    PoolEvent,
    RealServerHealth,
    RealServerTransition,
    ServiceReload,
    SplitBrain,
    TrackerResult,
    check_subject,
    control_subject,
    dead_letter_subject,
    decode,
    decode_dead_letter,
    decode_for_subject,
    decode_token,
    durable_transition,
    encode,
    encode_token,
    event_stream_subjects,
    group_subject,
    health_subject,
    instance_subject,
    is_durable,
    is_token,
    kv_key_for_subject,
    msg_id,
    parse_subject,
    pool_subject,
    real_server_key,
    reload_subject,
    split_brain_subject,
    status_subject,
    subject_for,
    tracker_subject,
    virtual_server_key,
)
from tests.nats.events_sample import every_event

NATS_TOKEN = re.compile(r"^[^.\s*>]+$")
KV_KEY = re.compile(r"^[-/_=.a-zA-Z0-9]+$")
names = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=40)


@given(names)
def test_token_round_trips_and_is_one_valid_token(name: str) -> None:
    token = encode_token(name)
    assert decode_token(token) == name
    assert NATS_TOKEN.match(token) and KV_KEY.match(token) and is_token(token)
    assert token.isascii()


@given(names)
def test_token_is_canonical(name: str) -> None:
    token = encode_token(name)
    assert encode_token(decode_token(token)) == token


def test_token_examples_stay_readable() -> None:
    assert encode_token("VI_1") == "VI_1"
    assert encode_token("172.16.0.100:80/tcp") == "172=2E16=2E0=2E100=3A80=2Ftcp"
    assert encode_token("a b*>=") == "a=20b=2A=3E=3D"
    assert encode_token("é") == "=C3=A9"


@pytest.mark.parametrize("bad", ["", "a.b", "=2e", "=4", "a b", "=41", "=FF"])
def test_decode_token_rejects_what_encode_never_makes(bad: str) -> None:
    with pytest.raises(ValueError):
        decode_token(bad)


def test_encode_token_rejects_empty() -> None:
    with pytest.raises(ValueError):
        encode_token("")


def test_subject_builders() -> None:
    vs, rs = virtual_server_key("172.16.0.100", 80, "TCP"), real_server_key("2001:db8::2", 80)
    assert vs == "172.16.0.100:80/tcp" and rs == "[2001:db8::2]:80"
    assert instance_subject("n1", "VI_1") == "lifeline.n1.vrrp.state.VI_1"
    assert group_subject("n1", "G1") == "lifeline.n1.vrrp.group.G1"
    assert control_subject("n1", "VI_1") == "lifeline.n1.vrrp.control.VI_1"
    assert split_brain_subject("n1", "VI 1") == "lifeline.n1.vrrp.split_brain.VI=201"
    assert not any(_matches(p, status_subject("n1", "vrrp")) for p in event_stream_subjects("n1"))
    assert tracker_subject("n1", "chk") == "lifeline.n1.track.chk"
    assert (
        check_subject("n1", vs, rs)
        == "lifeline.n1.check.172=2E16=2E0=2E100=3A80=2Ftcp.=5B2001=3Adb8=3A=3A2=5D=3A80"
    )
    assert health_subject("n1", vs, rs) == check_subject("n1", vs, rs).replace(".check.", ".health.")
    assert pool_subject("n1.x", vs) == "lifeline.n1=2Ex.lvs.172=2E16=2E0=2E100=3A80=2Ftcp"
    assert dead_letter_subject("n1", "smtp") == "lifeline.n1.notify.dead.smtp"
    assert status_subject("n1", "vrrp") == "lifeline.n1.ctl.vrrp.status"
    assert reload_subject("n1", "lvs") == "lifeline.n1.ctl.lvs.reload"


def _matches(pattern: str, subject: str) -> bool:
    p, s = pattern.split("."), subject.split(".")
    for i, tok in enumerate(p):
        if tok == ">":
            return len(s) > i
        if i >= len(s) or (tok != "*" and tok != s[i]):
            return False
    return len(p) == len(s)


@pytest.mark.parametrize("event", every_event(), ids=lambda e: type(e).__name__)
def test_stream_captures_exactly_the_durable_events(event: msgspec.Struct) -> None:
    stamped = msgspec.structs.replace(event, node="n1")
    subject = subject_for(stamped)  # type: ignore[arg-type]
    captured = any(_matches(p, subject) for p in EVENT_STREAM_SUBJECTS)
    durable = (
        InstanceState
        | GroupState
        | InstanceControl
        | SplitBrain
        | InstanceEvent
        | PoolEvent
        | ServiceReload
        | OutboxOverflow
    )
    assert captured == isinstance(event, durable)
    assert captured == is_durable(event)


def _health(changed: bool = True) -> RealServerHealth:
    return RealServerHealth(
        virtual="10.0.0.1:80/tcp",
        real="10.0.1.1:80",
        up=False,
        checker=CheckerKind.TCP_CHECK,
        changed=changed,
    )


def test_real_server_transitions_have_a_durable_copy_on_the_health_subject() -> None:
    """Additive (contract v1): every result stays on ``check``; transitions also go to ``health``."""
    event = msgspec.structs.replace(_health(), node="n1", ts=5, seq=9, boot_id="b")
    durable = msgspec.structs.replace(durable_transition(event), node="n1", seq=10, boot_id="b")
    assert type(durable) is RealServerTransition and durable.ts == 5 and durable.up is False
    assert not is_durable(event) and is_durable(durable)
    assert subject_for(event) == check_subject("n1", event.virtual, event.real)
    subject = subject_for(durable)
    assert subject == health_subject("n1", event.virtual, event.real)
    assert any(_matches(p, subject) for p in EVENT_STREAM_SUBJECTS)
    assert not any(_matches(p, subject_for(event)) for p in EVENT_STREAM_SUBJECTS)
    data = encode(durable)
    assert msgspec.json.decode(data)["type"] == "real_server_health"  # same payload on the wire
    back = decode_for_subject(subject, data)
    assert type(back) is RealServerHealth and back == msgspec.structs.replace(event, seq=10)
    assert parse_subject(subject).kind == "health"
    assert (
        kv_key_for_subject(subject) == f"n1.health.{encode_token(event.virtual)}.{encode_token(event.real)}"
    )
    with pytest.raises(ValueError):
        durable_transition(_health(changed=False))  # heartbeats never go to the stream


def test_dead_letter_round_trips_and_stays_out_of_the_event_stream() -> None:
    event = msgspec.structs.replace(_health(), node="n1", seq=3, boot_id="b")
    letter = DeadLetter(
        node="n1", ts=1, sink="smtp", reason="550 no such user", retryable=False, attempts=1,
        subject=health_subject("n1", event.virtual, event.real), stream="LIFELINE_EVENTS", stream_seq=42,
        event_id=msg_id(event), event=event,
    )  # fmt: skip
    data = encode(letter)
    assert msgspec.json.decode(data)["type"] == "delivery_failed"
    assert decode_dead_letter(data) == letter and letter.v == CONTRACT_VERSION
    subject = dead_letter_subject("n1", "smtp")
    assert any(_matches(p, subject) for p in DEAD_LETTER_SUBJECTS)
    assert not any(_matches(p, subject) for p in EVENT_STREAM_SUBJECTS)


@pytest.mark.parametrize("service", ["vrrp", "lvs", "checker", "notifier"])
def test_control_subjects_are_outside_the_event_stream(service: str) -> None:
    for subject in (status_subject("n1", service), reload_subject("n1", service)):
        assert not any(_matches(p, subject) for p in EVENT_STREAM_SUBJECTS)


@pytest.mark.parametrize("event", every_event(), ids=lambda e: type(e).__name__)
def test_every_event_round_trips_json_and_subject(event: msgspec.Struct) -> None:
    stamped = msgspec.structs.replace(event, node="node.1", ts=1, seq=7, boot_id="b")
    data = encode(stamped)  # type: ignore[arg-type]
    wire = msgspec.json.decode(data)
    assert wire["type"] == stamped.__struct_config__.tag
    assert wire["v"] == CONTRACT_VERSION
    assert decode(data) == stamped
    subject = subject_for(stamped)  # type: ignore[arg-type]
    assert decode_for_subject(subject, data) == stamped
    info = parse_subject(subject)
    assert info.node == "node.1"
    assert KV_KEY.match(kv_key_for_subject(subject))


def test_all_event_types_have_samples_and_unique_tags() -> None:
    assert {type(e) for e in every_event()} == set(EVENT_TYPES)
    assert len({t.__struct_config__.tag for t in EVENT_TYPES}) == len(EVENT_TYPES)


def test_decoder_ignores_unknown_fields_and_checks_types() -> None:
    """Additive changes within a contract version must not break old consumers."""
    data = encode(TrackerResult(tracker="t", kind="file", ok=True, value=5))  # type: ignore[arg-type]
    extended = data[:-1] + b',"future_field":1}'
    assert decode(extended, TrackerResult).value == 5
    with pytest.raises(msgspec.ValidationError):
        decode(data, InstanceState)
    with pytest.raises(msgspec.ValidationError):
        decode_for_subject(instance_subject("n", "x"), data)


def test_outbox_drops_oldest_and_counts() -> None:
    async def run() -> None:
        box: Outbox[int] = Outbox(3)
        dropped = [box.put(i) for i in range(5)]
        assert dropped == [None, None, None, 0, 1]
        assert box.dropped == 2 and len(box) == 3
        assert [await box.get() for _ in range(3)] == [2, 3, 4]
        assert not box.idle
        box.done()
        assert box.idle

    asyncio.run(run())
