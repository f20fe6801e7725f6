"""Notify scripts within the bound whatever the bus and the notifier do, exactly once, in order.

Real parts: lifeline's vrrp service in a namespace (one instance tracking the
dummy link ``dum0``), its nats-server (stopped and started again on the same
store), the notifier as a process, ``/bin/sh`` recorder scripts.  A link
flap is three transitions (FAULT, BACKUP, MASTER) and three scripts.  Checked:
which side ran each event (its claim's ``owner``), that each event ran once
(even after the notifier has caught up on the stream), in order, and how long
after the link change the first script started: the fallback's bound plus a
generous second when the notifier cannot run it, far less when it can.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.lab.notify_rig import NotifyRig, Run
from shared.lab.wait import wait_until
from shared.notify_claims import FALLBACK_BOUND

pytestmark = [pytest.mark.root, pytest.mark.nats, pytest.mark.timeout(120)]

SLACK = 1.5
"""Beyond the bound: fork/exec, netlink, a loaded CI machine (keepalived itself takes ~10 ms)."""
FLAP = ["fault", "backup", "master"]


@pytest.fixture
def rig(netns_session: None, tmp_path: Path) -> Iterator[NotifyRig]:
    with NotifyRig(tmp_path) as rig:
        try:
            wait_until("the start-up MASTER script", lambda: "master" in words(rig.runs()), 30)
            wait_until("the notifier to catch up", lambda: rig.caught_up(ids(rig.runs())), 30)
            yield rig
        except BaseException:
            for name in ("vrrp.log", "notifier.log"):
                print(f"--- {name}\n{(tmp_path / name).read_text(errors='replace')}")
            raise


def words(runs: list[Run]) -> list[str]:
    return [r.word for r in runs]


def ids(runs: list[Run]) -> set[str]:
    return {r.event_id for r in runs}


def flap(rig: NotifyRig) -> tuple[list[Run], float]:
    """dum0 down then up: the three new runs and how long after "down" the FAULT script started."""
    before = len(rig.runs())
    down = rig.link(False)
    wait_until("the FAULT script", lambda: "fault" in words(rig.runs()[before:]), 10)
    rig.link(True)
    wait_until("the MASTER script", lambda: words(rig.runs()[before:]) == FLAP, 15)
    new = rig.runs()[before:]
    return new, new[0].started - down


def once_in_order(runs: list[Run]) -> None:
    counts = Counter(r.event_id for r in runs)
    assert all(n == 1 for n in counts.values()), f"ran twice: {counts}"
    seqs = [
        int(r.event_id.rpartition(":")[2])
        for r in runs
        if r.event_id.startswith(runs[-1].event_id.partition(":")[0])
    ]
    assert seqs == sorted(seqs), runs


def test_normally_the_notifier_runs_the_scripts_and_vrrp_does_not(rig: NotifyRig) -> None:
    new, latency = flap(rig)
    claims = rig.claims()
    assert {claims[r.event_id].owner for r in new} == {"notifier"}, claims
    assert latency < FALLBACK_BOUND, latency  # the notifier was first by far
    assert rig.fallback_status()["ran"] == 0
    once_in_order(rig.runs())


def test_with_nats_stopped_vrrp_runs_them_once_and_the_notifier_catching_up_does_not(rig: NotifyRig) -> None:
    rig.nats.stop()
    new, latency = flap(rig)
    claims = rig.claims()
    assert {claims[r.event_id].owner for r in new} == {"vrrp"}, claims
    assert latency <= FALLBACK_BOUND + SLACK, latency
    rig.start_nats()
    wait_until("the notifier to catch up", lambda: rig.caught_up(ids(rig.runs())), 30)
    assert rig.runs()[-3:] == new  # nothing ran again
    once_in_order(rig.runs())


def test_with_the_notifier_dead_vrrp_runs_them_once_and_the_restarted_one_does_not(rig: NotifyRig) -> None:
    assert rig.notifier is not None
    rig.notifier.kill()
    new, latency = flap(rig)
    claims = rig.claims()
    assert {claims[r.event_id].owner for r in new} == {"vrrp"}, claims
    assert latency <= FALLBACK_BOUND + SLACK, latency
    assert rig.fallback_status()["ran"] == 3
    rig.notifier.start()
    wait_until("the notifier to catch up", lambda: rig.caught_up(ids(rig.runs())), 30)
    assert rig.runs()[-3:] == new
    once_in_order(rig.runs())


def test_the_notifier_killed_mid_script_is_taken_over_by_vrrp_and_order_holds(rig: NotifyRig) -> None:
    """The notifier dies in FAULT's script: its claim goes stale, vrrp runs FAULT again, then the rest.

    The killed run got the parent-death signal; the re-run says ``LIFELINE_ATTEMPT=2``.
    """
    assert rig.notifier is not None
    before = len(rig.runs())
    rig.hold.touch()
    rig.link(False)
    wait_until("FAULT's script, held", lambda: "fault" in words(rig.runs()[before:]), 10)
    rig.link(True)  # BACKUP and MASTER now wait behind FAULT, on both sides
    rig.notifier.kill()
    rig.hold.unlink()
    want = ["fault", "fault", "backup", "master"]
    wait_until("FAULT again, then the rest", lambda: words(rig.runs()[before:]) == want, 20)
    new = rig.runs()[before:]
    assert [r.attempt for r in new] == [1, 2, 1, 1] and new[0].event_id == new[1].event_id, new
    claims = rig.claims()
    assert [claims[r.event_id].owner for r in new[1:]] == ["vrrp", "vrrp", "vrrp"], claims
    assert new[1].started - new[0].started >= 4.0  # only once the claim went stale (5 s untouched)
    rig.notifier.start()
    wait_until("the notifier to catch up", lambda: rig.caught_up(ids(rig.runs())), 30)
    assert rig.runs()[before:] == new
