"""``preempt_delay`` end to end: a higher-priority node waits before it takes the VIP back.

keepalived's semantics (reference §2.6): a BACKUP with ``preempt_delay N``
accepts lower-priority adverts (so its down timer keeps being reset) until N
seconds after the first such advert; then it discards them and preempts when
its down timer runs out.  The delay is armed again every time the instance
comes back as BACKUP (start-up, link back), which is what operators use it
for: a node that just rebooted or got its link back does not grab the VIP
before its own services are ready.  ``nopreempt`` switches the delay off.
(``state MASTER`` does too in keepalived, but ``keepalived -t`` rejects that
file, exit 5, and so does lifeline: there is nothing to run.)

How long the node waited is measured between its own BACKUP and MASTER
events on the bus (the publisher stamps ``ts`` at the transition, so bus
latency does not count); while it waits, every host's ``ip addr`` is
sampled to show the lower master keeps the VIP alone.
"""

from __future__ import annotations

import time
from functools import partial

import pytest

from shared.events import InstanceState
from shared.lab.wait import wait_until
from tests.lab.test_vrrp_service import VIP4, Lab, has_vip, instance, mdi, only_holder, states
from tests.lab.test_vrrp_three_node import (
    KERNEL,
    STARTUP,
    reported,
    sole_holder_throughout,
    state_events,
)

pytestmark = [pytest.mark.root, pytest.mark.timeout(90)]

ADVERT = 0.1
HIGH, LOW = 150, 100
DELAY = 2.0
SLACK = 1.0
"""Generous upper bound beyond delay + Master_Down_Interval (process scheduling on a busy machine)."""


def seconds_between(earlier: InstanceState, later: InstanceState) -> float:
    return (later.ts - earlier.ts) / 1e9


def delayed(prio: int, extra: str = "") -> str:
    return instance(prio, advert=ADVERT, extra=f"    preempt_delay {DELAY:g}\n{extra}")


def hold_off_then_preempt(lab: Lab, node: str, backup_at: int) -> tuple[InstanceState, InstanceState]:
    """From ``node``'s BACKUP event number ``backup_at``: b alone keeps the VIP during the delay, then a.

    Returns that BACKUP event and the MASTER event after it.
    """
    a, b = lab.hosts
    backup = state_events(lab, node, backup_at + 1)[backup_at]
    assert (backup.state.value, backup.reason.value) in {("BACKUP", "startup"), ("BACKUP", "interface_up")}
    hold = backup.ts / 1e9 + DELAY - 0.5 - time.time()  # sample until shortly before the delay ends
    samples = sole_holder_throughout(lab.hosts, VIP4, b, hold)
    wait_until(
        "a to preempt after the delay", lambda: only_holder(lab.hosts, VIP4) == [a.name], DELAY + KERNEL
    )
    master = state_events(lab, node, backup_at + 2)[backup_at + 1]
    assert (master.state.value, master.reason.value) == ("MASTER", "preempt")
    waited = seconds_between(backup, master)
    print(f"preempt after {waited:.3f} s (delay {DELAY} s, MDI {mdi(ADVERT, HIGH):.3f} s), {samples} samples")
    assert DELAY <= waited < DELAY + mdi(ADVERT, HIGH) + SLACK
    return backup, master


def test_preempt_delay_holds_off_then_preempts_at_startup_and_after_link_back(lab: Lab) -> None:
    """b (100) is master; a (150, preempt_delay 2) starts, waits 2 s, preempts; again after link back."""
    a, b = lab.hosts
    lab.service(b, instance(LOW, advert=ADVERT))
    wait_until("b to hold the VIP", lambda: has_vip(b, VIP4), STARTUP)
    pa = lab.service(a, delayed(HIGH))
    wait_until(f"{pa.node} to report BACKUP", partial(reported, lab, pa), STARTUP)
    print()
    hold_off_then_preempt(lab, pa.node, 0)

    a.ip("link", "set", "eth0", "down")
    wait_until("b to take over from the FAULT a", lambda: only_holder(lab.hosts, VIP4) == [b.name], KERNEL)
    a.ip("link", "set", "eth0", "up")
    hold_off_then_preempt(lab, pa.node, 3)
    assert states(state_events(lab, pa.node, 6, timeout=1.0)) == [
        ("BACKUP", "startup"),
        ("MASTER", "preempt"),
        ("FAULT", "interface_down"),
        ("BACKUP", "interface_up"),
        ("MASTER", "preempt"),
    ]


def test_preempt_delay_is_ignored_with_nopreempt(lab: Lab) -> None:
    """nopreempt wins: a (150, nopreempt, preempt_delay 2) never takes the VIP from b."""
    a, b = lab.hosts
    lab.service(b, instance(LOW, advert=ADVERT))
    wait_until("b to hold the VIP", lambda: has_vip(b, VIP4), STARTUP)
    pa = lab.service(a, delayed(HIGH, "    nopreempt"))
    wait_until(f"{pa.node} to report BACKUP", partial(reported, lab, pa), STARTUP)
    sole_holder_throughout(lab.hosts, VIP4, b, DELAY + 4 * mdi(ADVERT, HIGH))
    assert states(state_events(lab, pa.node, 2, timeout=0.5)) == [("BACKUP", "startup")]
