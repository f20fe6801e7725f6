"""The Prometheus text exposition and the metric builders, without a bus."""

from __future__ import annotations

import time

from shared.cli.metrics_collect import build
from shared.cli.metrics_text import Family, render
from shared.cli.status import StateEntry
from shared.events import (
    BusCounters,
    InstanceState,
    ServiceStatus,
    TrackerKind,
    TrackerResult,
    VrrpState,
)


def test_render_escapes_labels_and_help_and_skips_empty_families() -> None:
    fam = Family("x_total", "counter", "line one\nline \\ two")
    fam.add(3, name='a "quoted"\\path\n', b="1")
    text = render([fam, Family("empty", "gauge", "never shown")])
    assert text == (
        "# HELP x_total line one\\nline \\\\ two\n"
        "# TYPE x_total counter\n"
        'x_total{b="1",name="a \\"quoted\\"\\\\path\\n"} 3\n'
    )


def test_render_numbers() -> None:
    fam = Family("g", "gauge", "h")
    for v in (1.0, 0.25, float("inf"), float("nan")):
        fam.add(v)
    assert render([fam]).splitlines()[2:] == ["g 1", "g 0.25", "g +Inf", "g NaN"]


def test_build_without_bus_says_so() -> None:
    text = build([], {}, time.time(), bus_up=False)
    assert "lifeline_bus_up 0" in text.splitlines()
    assert "keepalived_up" not in text


def test_build_from_state_and_status() -> None:
    now = time.time()
    inst = InstanceState(
        node="n1",
        ts=int((now - 5) * 1e9),
        instance="VI_1",
        vrid=7,
        interface="eth1",
        state=VrrpState.BACKUP,
        base_priority=100,
        effective_priority=80,
    )
    track = TrackerResult(node="n1", ts=int(now * 1e9), tracker="t", kind=TrackerKind.FILE, ok=True)
    entries = [
        StateEntry(key="n1.vrrp.state.VI_1", node="n1", kind="vrrp.state", names=("VI_1",), event=inst),
        StateEntry(key="n1.track.t", node="n1", kind="track", names=("t",), event=track),
    ]
    notifier = ServiceStatus(
        node="n1",
        service="notifier",
        boot_id="b",
        bus=BusCounters(published=9, queued=1, stored=2, failing=True, errors=3, last_error="TimeoutError"),
        detail={
            "sinks": {
                "script": {"backlog": {"LIFELINE_EVENTS": {"pending": 4, "unacked": 1}}, "delivered": 12}
            }
        },
    )
    lines = build(entries, {"vrrp": None, "notifier": notifier}, now).splitlines()
    assert 'keepalived_vrrp_state{iname="VI_1",intf="eth1",ip_address="",vrid="7"} 1' in lines
    assert 'keepalived_vrrp_effective_priority{iname="VI_1",intf="eth1",vrid="7"} 80' in lines
    assert 'keepalived_script_status{kind="file",name="t"} 1' in lines
    assert "keepalived_up 0" in lines
    assert 'lifeline_notifier_backlog{sink="script",stream="LIFELINE_EVENTS"} 5' in lines
    assert 'lifeline_notifier_delivered_total{sink="script"} 12' in lines
    assert 'lifeline_bus_queued{service="notifier"} 1' in lines
    assert 'lifeline_bus_stored{service="notifier"} 2' in lines
    assert 'lifeline_bus_failing{service="notifier"} 1' in lines
    assert 'lifeline_bus_errors_total{service="notifier"} 3' in lines
    age = next(ln for ln in lines if ln.startswith('lifeline_state_age_seconds{kind="vrrp.state"}'))
    assert 4.5 < float(age.split()[-1]) < 10
