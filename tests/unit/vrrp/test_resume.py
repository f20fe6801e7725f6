"""A restarted process resuming its mastership: the decision (``core/resume.py``), the resumed start."""

from __future__ import annotations

from ipaddress import IPv4Address

import msgspec
import pytest

from services.vrrp.core.machine import VrrpMachine
from services.vrrp.core.machine_events import (
    AddVips,
    AdvertReceived,
    LinkChanged,
    RemoveVips,
    Resumed,
    SendAdvert,
    Start,
    StateChanged,
    Tick,
    TrackerChanged,
)
from services.vrrp.core.machine_types import InstanceParams, State, TrackerSpec
from services.vrrp.core.resume import (
    Fresh,
    Resume,
    ResumeFacts,
    ResumeRecord,
    Why,
    decide,
    resume_window,
)

BOOT, OTHER_BOOT = b"b" * 16, b"c" * 16
PRINT = b"f" * 16
S = 1_000_000_000
T0 = 1_000 * S
"""CLOCK_BOOTTIME of the dead process's last advert."""

RECORD = ResumeRecord(boot_id=BOOT, fingerprint=PRINT, master=True, last_advert_ns=T0)


def facts(after: float, **changes: object) -> ResumeFacts:
    """The new process's facts ``after`` s past the last advert (1 s adverts, 3 per down timer)."""
    base = ResumeFacts(
        now_ns=T0 + round(after * S),
        boot_id=BOOT,
        fingerprint=PRINT,
        advert_int_cs=100,
        down_timer_adverts=3,
        vips_present=True,
    )
    return msgspec.structs.replace(base, **changes)


# --------------------------------------------------------------------------- the decision


def test_a_quick_restart_of_a_master_resumes() -> None:
    got = decide(RECORD, facts(0.65))
    assert isinstance(got, Resume)
    assert got.gap == pytest.approx(0.65) and got.left == pytest.approx(2.75 - 0.65)


def test_the_window_is_three_intervals_less_a_margin() -> None:
    """A quarter of an interval, at least 50 ms; never more adverts than a keepalived backup waits (3)."""
    assert resume_window(100, 3) == pytest.approx(2.75)
    assert resume_window(100, 5) == pytest.approx(2.75)  # a keepalived peer still waits only 3
    assert resume_window(100, 1) == pytest.approx(0.75)  # our own backups may wait just one
    assert resume_window(10, 3) == pytest.approx(0.25)  # 0.1 s adverts: the 50 ms floor
    assert resume_window(2, 1) < 0  # 20 ms adverts, one per down timer: no window at all


@pytest.mark.parametrize(
    ("after", "expected"),
    [(2.74, Resume), (2.75, Fresh), (2.76, Fresh), (60.0, Fresh)],
)
def test_the_window_edge(after: float, expected: type) -> None:
    """Resume strictly inside the window; at its edge a backup may already be due: start as today."""
    got = decide(RECORD, facts(after))
    assert isinstance(got, expected)
    if isinstance(got, Fresh):
        assert got.why is Why.TOO_LATE


@pytest.mark.parametrize(
    ("record", "changes", "why"),
    [
        (None, {}, Why.NO_RECORD),
        (msgspec.structs.replace(RECORD, master=False), {}, Why.NOT_MASTER),
        (RECORD, {"boot_id": OTHER_BOOT}, Why.OTHER_BOOT),
        (RECORD, {"fingerprint": b"g" * 16}, Why.CONFIG_CHANGED),
        (RECORD, {"in_sync_group": True}, Why.SYNC_GROUP),
        (RECORD, {"uses_ah": True}, Why.AH),
        (RECORD, {"own_interfaces": True}, Why.OWN_INTERFACES),
        (RECORD, {"vips_present": False}, Why.VIPS_GONE),
        (RECORD, {"now_ns": T0 - 1}, Why.CLOCK),
    ],
)
def test_every_doubt_starts_as_today(
    record: ResumeRecord | None, changes: dict[str, object], why: Why
) -> None:
    assert decide(record, facts(0.5, **changes)) == Fresh(why=why)


def test_a_record_of_another_boot_is_refused_even_if_its_clock_looks_recent() -> None:
    """BOOTTIME starts from zero at each boot: a small gap across a reboot means nothing."""
    assert decide(RECORD, facts(0.1, boot_id=OTHER_BOOT)) == Fresh(why=Why.OTHER_BOOT)


def test_a_record_at_the_same_instant_resumes() -> None:
    assert isinstance(decide(RECORD, facts(0.0)), Resume)


# --------------------------------------------------------------------------- the machine's resumed start

OWN, PEER, LOWER = IPv4Address("10.0.0.1"), IPv4Address("10.0.0.9"), IPv4Address("10.0.0.0")
VIPS = ("vip-a", "vip-b")


def machine(**changes: object) -> VrrpMachine:
    params = InstanceParams(name="VI_1", vrid=1, address=OWN, priority=150, vips=VIPS)
    return VrrpMachine(msgspec.structs.replace(params, **changes))


def test_a_resumed_start_is_master_at_once_with_no_vip_change_and_no_transition() -> None:
    m = machine()
    out = m.handle(10.0, Start(resume=True))
    assert out == [SendAdvert(150), Resumed(effective_priority=150)]
    assert m.state is State.MASTER and m.master_address == OWN
    assert m.next_deadline() == pytest.approx(11.0)  # the next advert, one interval on
    assert m.handle(11.0, Tick()) == [SendAdvert(150)]


def test_an_ordinary_start_still_removes_stale_vips_and_waits_as_backup() -> None:
    m = machine()
    out = m.handle(10.0, Start())
    assert out[0] == RemoveVips(VIPS) and m.state is State.BACKUP
    assert not any(isinstance(a, Resumed) for a in out)


def test_a_resumed_master_hearing_a_better_master_yields_by_the_ordinary_rules() -> None:
    m = machine()
    m.handle(10.0, Start(resume=True))
    out = m.handle(10.5, AdvertReceived(src=PEER, priority=200))
    assert RemoveVips(VIPS) in out and m.state is State.BACKUP
    assert next(a for a in out if isinstance(a, StateChanged)).old is State.MASTER


def test_a_resumed_master_answers_a_lower_one() -> None:
    m = machine()
    m.handle(10.0, Start(resume=True))
    assert m.handle(10.2, AdvertReceived(src=LOWER, priority=100))[0] == SendAdvert(150)
    assert m.state is State.MASTER


def test_a_resume_is_refused_when_the_instance_must_be_in_fault() -> None:
    """Its interface went down meanwhile: FAULT as an ordinary start would (stale VIPs removed)."""
    m = machine(interface="eth0")
    m.handle(9.0, LinkChanged(interface="eth0", up=False))
    out = m.handle(10.0, Start(resume=True))
    assert out[0] == RemoveVips(VIPS) and m.state is State.FAULT


def test_a_resume_is_refused_to_a_sync_group_member() -> None:
    m = VrrpMachine(InstanceParams(name="VI_1", vrid=1, address=OWN, priority=150, vips=VIPS), gated=True)
    out = m.handle(10.0, Start(resume=True))
    assert out[0] == RemoveVips(VIPS) and m.state is State.BACKUP


def test_a_resumed_master_with_a_failing_weighted_tracker_advertises_its_lower_priority() -> None:
    m = machine(trackers=(TrackerSpec(name="chk", weight=-60),))
    m.handle(9.0, TrackerChanged(name="chk", ok=False))
    out = m.handle(10.0, Start(resume=True))
    assert out == [SendAdvert(90), Resumed(effective_priority=90)]
    assert AddVips(VIPS) not in out
