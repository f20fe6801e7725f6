"""Which received messages a service acts on (``shared.bus.trust``), case by case."""

from __future__ import annotations

import pytest

from shared.bus.trust import control_caller, inbox_prefix, live_event, republished

ID = {"Nats-Msg-Id": "boot:1"}


@pytest.mark.parametrize(
    ("reply", "headers", "live"),
    [
        (None, ID, True),  # a tracker result: core publish by the checker's Publisher
        ("_INBOX_vrrp.abc.1", ID, True),  # an instance state: JetStream publish, the ack inbox as reply
        (None, None, False),  # a publish acknowledgement or API answer aimed at the subject
        (None, {}, False),  # a direct get with no_hdr: the stored payload, bare
        (None, {**ID, "Nats-Stream": "KV_lifeline_state", "Nats-Subject": "$KV.x"}, False),  # direct get
        ("$JS.ACK.LIFELINE_EVENTS.notifier_x.1.2.3.4.5", ID, False),  # a pull consumer's delivery
        (None, {**ID, "Status": "404"}, False),
    ],
)
def test_live_event(reply: str | None, headers: dict[str, str] | None, live: bool) -> None:
    assert live_event(reply, headers) is live


@pytest.mark.parametrize(
    ("reply", "user"),
    [
        ("_INBOX_admin.Xyz.1", "admin"),
        (f"{inbox_prefix('alice')}.q", "alice"),
        ("_INBOX.abc.2", ""),
        (None, None),  # an answer sent through allow_responses, or a JetStream API answer
        ("", None),
        ("$JS.ACK.LIFELINE_EVENTS.notifier_x.1.2.3.4.5", None),
        ("lifeline.n.ctl.vrrp.clear", None),
        ("_INBOX_admin", None),
        ("_INBOX_.x", None),
        ("_INBOXadmin.x", None),
    ],
)
def test_control_caller(reply: str | None, user: str | None) -> None:
    assert control_caller(reply) == user


def test_republished_needs_the_stream_and_the_say_subject() -> None:
    say = "lifeline.n.replicas.checker.say.beat"
    assert republished({"Nats-Stream": "LIFELINE_REPLICAS", "Nats-Subject": say}, "LIFELINE_REPLICAS", say)
    assert not republished(
        {"Nats-Stream": "KV_lifeline_state", "Nats-Subject": say}, "LIFELINE_REPLICAS", say
    )
    other = "lifeline.n.replicas.notifier.say.beat"
    assert not republished(
        {"Nats-Stream": "LIFELINE_REPLICAS", "Nats-Subject": other}, "LIFELINE_REPLICAS", say
    )
    assert not republished(None, "LIFELINE_REPLICAS", say)
