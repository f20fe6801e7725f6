"""A restarted vrrp MASTER resumes without a gap, or starts as before: two nodes, wire and kernel watched.

Host a is MASTER (priority 200), host b its BACKUP (100): lifeline, or the
real keepalived 2.2.7.  Adverts every 3 s (v2), so a backup's
Master_Down_Interval is 9 s + skew and a resume window 8.25 s
(``core/resume.py``): room for a Python process to come back on a machine
so loaded that importing the service takes seconds (with the default 1 s
adverts the window is 2.75 s).  a is killed just after one of its adverts,
so the gap is the restart's own time.  The observer captures every advert;
``VipWatch`` rebuilds who held the VIP from each host's address events.
Verdicts:

* kill -9 and a restart at once: the VIP never leaves a, b never becomes
  MASTER (no advert from b on the wire, no MASTER line in its log), and a's
  second run logs no transition, only the resume;
* kill -9 and a restart after b took over: a starts as before (its stale VIP
  removed, BACKUP, then it preempts); the two never advertise together for
  longer than one interval;
* a deliberate hitless restart (SIGQUIT, exit 75, started again): as the
  first, with the process gone for a while on purpose.

The gaps are printed (``pytest -s``) for the report; ``bench/resume.py``
measures the same against the old behaviour and keepalived's own restart.
"""

from __future__ import annotations

import shutil
import signal
import time
from collections.abc import Iterator

import pytest

from services.vrrp.core.timers import CS, master_down_interval
from shared.exit_codes import Exit
from shared.lab.advert_gaps import advert_times, both_advertising, just_after_an_advert, longest_silence
from shared.lab.segment import Host, Impl, Segment
from shared.lab.vip_watch import VipWatch
from shared.lab.wait import wait_until

pytestmark = [pytest.mark.root, pytest.mark.timeout(180)]

ADVERT = 3.0
HIGH, LOW = 200, 100
STARTUP = 20.0
"""Bound for a daemon to start and take its role (Python imports, a host nats-server) on a busy machine."""
MDI_LOW = master_down_interval(2, LOW, round(ADVERT * CS), 3)
"""The backup's Master_Down_Interval: 3 intervals + (256 - 100) / 256 s."""
RESUMED = ") resuming MASTER"
ENTERING = {"lifeline": "Entering MASTER STATE", "keepalived": "Entering MASTER STATE"}


def config(priority: int, vip: str) -> str:
    """One instance, the same text for lifeline and keepalived."""
    return f"""
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority {priority}
    advert_int {ADVERT:g}
    virtual_ipaddress {{
        {vip}/24
    }}
}}
"""


@pytest.fixture
def segment(netns_session: None) -> Iterator[Segment]:
    """Hosts a and b with an observer (a lifeline host keeps its resume records in its own work dir)."""
    with Segment(["a", "b"]) as seg:
        yield seg


def roles(seg: Segment, backup: Impl) -> tuple[Host, Host, str]:
    """a (lifeline) MASTER, then b (``backup``) BACKUP; returns a, b and the VIP."""
    a, b = seg.hosts
    vip = seg.address(100)
    a.start("lifeline", config(HIGH, vip))
    wait_until("a to hold the VIP", lambda: a.holds(vip), STARTUP)
    b.start(backup, config(LOW, vip))
    wait_until(
        "b to come up as BACKUP", lambda: "BACKUP" in b.daemon.output() if b.daemon else False, STARTUP
    )
    return a, b, vip


def restarted(host: Host) -> int:
    """Start ``host``'s daemon again (same argv, same file); returns where its new log begins."""
    assert host.daemon is not None
    mark = len(host.daemon.output())
    host.daemon.start()
    return mark


def since(host: Host, mark: int) -> str:
    assert host.daemon is not None
    return host.daemon.output()[mark:]


@pytest.mark.parametrize("backup", ["lifeline", "keepalived"])
def test_kill_9_and_a_restart_at_once_resumes_without_a_gap(segment: Segment, backup: Impl) -> None:
    if backup == "keepalived" and shutil.which("keepalived") is None:
        pytest.skip("keepalived is not installed")
    a, b, vip = roles(segment, backup)
    with VipWatch(segment.hosts, vip) as watch, segment.capture() as capture:
        just_after_an_advert(capture, a, 2 * ADVERT)
        killed = time.time()
        a.kill()
        mark = restarted(a)
        took = wait_until(
            "a to resume", lambda: RESUMED in since(a, mark), STARTUP, explain=lambda: since(a, mark)
        )
        time.sleep(max(0.0, killed + MDI_LOW + ADVERT - time.time()))  # b would have taken over by now
        end = time.time()
        held = watch.holding(killed, end)
        seen = advert_times(capture, segment)
    print(f"\nkill -9 + restart vs {backup}: resumed after {took:.3f} s; {since(a, mark).strip()[-300:]}")
    silence = longest_silence(seen["a"], killed, end)
    print(f"  VIP held by nobody {held.total_none:.3f} s, advert silence {silence:.3f} s")
    assert held.total_none == 0.0, "the VIP left a"
    assert watch.holders() == {"a"}
    assert not seen["b"], f"b advertised as MASTER: {seen['b']}"
    assert ENTERING[backup] not in (b.daemon.output() if b.daemon else "")
    assert "Entering" not in since(a, mark), "a's second run made a transition"
    assert silence < MDI_LOW


def test_kill_9_and_a_late_restart_starts_as_before(segment: Segment) -> None:
    a, b, vip = roles(segment, "lifeline")
    with VipWatch(segment.hosts, vip) as watch, segment.capture() as capture:
        a.kill()
        wait_until(
            "b to take over",
            lambda: "Entering MASTER STATE" in (b.daemon.output() if b.daemon else ""),
            STARTUP,
        )
        mark = restarted(a)
        wait_until("a to preempt b", lambda: watch.holders() == {"a"}, STARTUP + 2 * MDI_LOW)
        time.sleep(2 * ADVERT)
        seen = advert_times(capture, segment)
    log = since(a, mark)
    print(f"\nlate restart: a's second run:\n{log.strip()[-600:]}")
    assert RESUMED not in log and "not resuming MASTER" in log
    assert "removed 1 stale VIP" in log
    assert "Entering BACKUP STATE" in log and "Entering MASTER STATE" in log
    overlap = both_advertising(seen["a"], seen["b"], ADVERT)
    print(f"  both advertising for {overlap:.3f} s")
    assert overlap <= ADVERT + 0.1


def test_a_deliberate_hitless_restart_keeps_the_vip(segment: Segment) -> None:
    a, b, vip = roles(segment, "lifeline")
    assert a.daemon is not None
    with VipWatch(segment.hosts, vip) as watch, segment.capture() as capture:
        just_after_an_advert(capture, a, 2 * ADVERT)
        asked = time.time()
        a.daemon.send(signal.SIGQUIT)
        assert a.daemon.wait(10) == Exit.RESTART
        exited = time.time()
        mark = restarted(a)
        took = wait_until(
            "a to resume", lambda: RESUMED in since(a, mark), STARTUP, explain=lambda: since(a, mark)
        )
        time.sleep(max(0.0, exited + MDI_LOW + ADVERT - time.time()))
        end = time.time()
        held = watch.holding(asked, end)
        seen = advert_times(capture, segment)
    print(
        f"\nhitless restart: resumed {took:.3f} s after the exit; advert silence "
        f"{longest_silence(seen['a'], asked, end):.3f} s; VIP held by nobody {held.total_none:.3f} s"
    )
    assert held.total_none == 0.0 and watch.holders() == {"a"}
    assert not seen["b"]
    assert "Entering" not in since(a, mark)
    assert "Entering MASTER STATE" not in (b.daemon.output() if b.daemon else "")
