"""The notifier's consumers from the files alone: what the admin provisions is what the notifier binds to."""

from __future__ import annotations

from pathlib import Path

from nats.js.api import DeliverPolicy

from services.notifier.consumers import sink_consumers
from services.notifier.service import NotifierService
from services.notifier.wiring import build_sinks
from shared.config.load import load
from shared.settings import Settings, SinkSettings
from tests.unit.notifier.test_wiring import MAIL, VS, conf, instance

NODE = "lb-1.x"
N = "lb-1=2Ex"


def test_every_sink_has_its_consumer_with_its_feeds(tmp_path: Path) -> None:
    fifos = f"  notify_fifo {tmp_path / 'all'}\n  vrrp_notify_fifo {tmp_path / 'v'}\n"
    body = instance("VI_1", "  notify_master /bin/true\n") + VS
    config = load(conf(tmp_path, MAIL + fifos, body)).config
    hook = SinkSettings(
        name="hook", kind="webhook", options={"url": "http://127.0.0.1:9/x", "delivery": {"ack_wait": 3}}
    )
    plans = {c.durable: c for c in sink_consumers(config, Settings(node=NODE, sinks=[hook]), NODE)}
    assert sorted(plans) == [
        "notifier_hook",
        "notifier_notify_fifo",
        "notifier_script",
        "notifier_smtp",
        "notifier_vrrp_notify_fifo",
    ]
    everything = (f"lifeline.{N}.vrrp.>", f"lifeline.{N}.lvs.>", f"lifeline.{N}.health.>")
    assert plans["notifier_script"].filter_subjects == everything
    assert plans["notifier_vrrp_notify_fifo"].filter_subjects == everything[:2]
    assert plans["notifier_hook"].ack_wait == 3 and plans["notifier_smtp"].ack_wait == 10
    assert all(p.deliver_policy is DeliverPolicy.NEW for p in plans.values())


def test_no_health_and_the_notifiers_ack_wait(tmp_path: Path) -> None:
    config = load(conf(tmp_path, "", instance("VI_1", "  notify /bin/true\n"))).config
    (plan,) = sink_consumers(config, Settings(node=NODE), NODE, health=False, delivery={"ack_wait": 4.0})
    assert plan.filter_subjects == (f"lifeline.{N}.vrrp.>", f"lifeline.{N}.lvs.>") and plan.ack_wait == 4.0


def test_a_script_refused_by_script_security_keeps_its_sink_and_consumer(tmp_path: Path) -> None:
    """Script security is the notifier's judgement at run time; the consumer depends on the file only."""
    gd = "  enable_script_security\n"
    config = load(conf(tmp_path, gd, instance("VI_1", "  notify_master /bin/true\n"))).config
    consumers = [c.durable for c in sink_consumers(config, Settings(node=NODE), NODE)]
    sinks = [p.sink.name for p in build_sinks(config, Settings(node=NODE))]
    assert consumers == ["notifier_script"] and sinks == ["script"]


def test_the_notifier_reads_the_subjects_it_provisions(tmp_path: Path) -> None:
    """The notifier's own feeds for each sink are the provisioned consumer's filters."""
    config = load(conf(tmp_path, MAIL, instance("VI_1", "  notify_master /bin/true\n") + VS)).config
    settings = Settings(node=NODE)
    svc = NotifierService(config, settings, node=NODE, nats_url="nats://127.0.0.1:1")
    consumers = {c.durable: c.filter_subjects for c in sink_consumers(config, settings, NODE)}
    for plan in build_sinks(config, settings):
        (feed,) = svc._feeds(plan)
        assert tuple(feed.filter_subjects or ()) == consumers[f"notifier_{plan.sink.name}"]
