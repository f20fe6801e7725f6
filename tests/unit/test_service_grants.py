"""The service users' grants, as data: what no service user may ever hold (the server: tests/deploy).

The rules behind docs/security.md, "The bus: who may do what": no JetStream
administration, no control subject, only the user's own inbox, and no
subject a user may both publish and subscribe to (with ``allow_responses``
such a user sends itself a message with a reply subject of its choosing,
then may publish once on that subject, whatever it is).
"""

from __future__ import annotations

import pytest

from shared.nats_users import SERVICE_USERS, service_permissions

NODE = "lb-1.x"


def intersects(a: str, b: str) -> bool:
    """Is there a subject both patterns match (``*`` one token, ``>`` one or more)?"""
    return _meet(a.split("."), b.split("."))


def _meet(a: list[str], b: list[str]) -> bool:
    if not a or not b:
        return not a and not b
    if a[0] == ">" or b[0] == ">":
        return True
    if a[0] == "*" or b[0] == "*" or a[0] == b[0]:
        return _meet(a[1:], b[1:])
    return False


@pytest.mark.parametrize(
    ("a", "b", "meet"),
    [
        ("a.*.c", "a.b.>", True),
        ("a.b", "a.b.c", False),
        ("a.>", "a", False),
        ("$KV.x.n.track.>", "lifeline.n.track.>", False),
        ("lifeline.n.replicas.c.say.*", "lifeline.n.replicas.c.heard.*", False),
        ("_INBOX_vrrp.>", "_INBOX_vrrp.abc.1", True),
    ],
)
def test_intersects(a: str, b: str, meet: bool) -> None:
    assert intersects(a, b) is meet and intersects(b, a) is meet


@pytest.mark.parametrize("user", SERVICE_USERS)
def test_no_user_hears_itself(user: str) -> None:
    perms = service_permissions(NODE, user)
    loops = [(p, s) for p in perms.publish for s in perms.subscribe if intersects(p, s)]
    assert perms.allow_responses and not loops, loops


def test_an_old_style_replicas_subject_would_have_been_a_loop() -> None:
    """The check above bites: one subject for publishing and hearing beats is what it refuses."""
    beats = f"lifeline.{NODE}.ctl.checker.replicas"
    assert intersects(beats, beats)


FORBIDDEN = [
    "$JS.API.STREAM.CREATE.LIFELINE_EVENTS",
    "$JS.API.STREAM.UPDATE.KV_lifeline_state",
    "$JS.API.STREAM.DELETE.LIFELINE_EVENTS",
    "$JS.API.STREAM.PURGE.KV_lifeline_state",
    "$JS.API.STREAM.MSG.DELETE.LIFELINE_EVENTS",
    "$JS.API.CONSUMER.CREATE.LIFELINE_EVENTS",
    "$JS.API.CONSUMER.CREATE.LIFELINE_EVENTS.x.>",
    "$JS.API.CONSUMER.DURABLE.CREATE.LIFELINE_EVENTS.x",
    "$JS.API.CONSUMER.DELETE.LIFELINE_EVENTS.x",
    "$JS.API.CONSUMER.CREATE.KV_lifeline_state",
    "$JS.API.STREAM.CREATE.LIFELINE_REPLICAS",
    "$JS.API.STREAM.UPDATE.LIFELINE_REPLICAS",
    f"lifeline.{NODE}.ctl.vrrp.maintenance",
    f"lifeline.{NODE}.ctl.checker.status",
    "lifeline.lb2.ctl.vrrp.set_priority",
]


@pytest.mark.parametrize("user", SERVICE_USERS)
def test_no_administration_and_no_control(user: str) -> None:
    perms = service_permissions(NODE, user)
    granted = [(f, p) for f in FORBIDDEN for p in perms.publish if intersects(f, p)]
    assert not granted, granted


@pytest.mark.parametrize("user", SERVICE_USERS)
def test_only_its_own_inbox(user: str) -> None:
    subscribe = service_permissions(NODE, user).subscribe
    assert f"_INBOX_{user}.>" in subscribe
    for other in ("_INBOX.x.1", "_INBOX_admin.x.1", *(f"_INBOX_{u}.x" for u in SERVICE_USERS if u != user)):
        assert not any(intersects(other, s) for s in subscribe), other
