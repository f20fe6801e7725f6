"""keepalived's notifier rules from a real keepalived.conf: which sinks, smtp_alert, last-mailed state."""

from __future__ import annotations

from pathlib import Path

from services.notifier.consumers import feed_subjects
from services.notifier.sinks.base import DeliveryContext
from services.notifier.sinks.fifo import FifoSink
from services.notifier.sinks.script import ScriptSink
from services.notifier.wiring import MailStateGate, alert_filter, build_sinks, build_targets
from shared.config.load import load
from shared.events import (
    InstanceState,
    PoolEvent,
    PoolEventKind,
    RealServerHealth,
    VrrpState,
    event_stream_subjects,
)
from shared.scripts import ScriptPolicy
from shared.settings import Settings

MAIL = """  notification_email {
    ops@example.net
  }
  smtp_server 127.0.0.1 2525
"""


def conf(tmp_path: Path, global_defs: str = "", body: str = "") -> Path:
    path = tmp_path / "k.conf"
    path.write_text(f"global_defs {{\n  router_id lab1\n{global_defs}}}\n{body}")
    return path


def instance(name: str, extra: str = "") -> str:
    return (
        f"vrrp_instance {name} {{\n  interface lo\n  virtual_router_id 51\n"
        f"  virtual_ipaddress {{\n    10.1.1.1\n  }}\n{extra}}}\n"
    )


VS = """virtual_server 10.0.0.1 80 {
  protocol TCP
  quorum_up /bin/true
  real_server 10.0.1.1 80 {
    notify_down "/bin/echo down"
    TCP_CHECK {
      connect_timeout 1
    }
  }
}
"""


def ev(name: str, state: VrrpState = VrrpState.MASTER) -> InstanceState:
    return InstanceState(
        instance=name,
        vrid=51,
        interface="lo",
        state=state,
        base_priority=100,
        effective_priority=100,
        node="n",
    )


def test_no_mail_without_notification_email_and_smtp_server(tmp_path: Path) -> None:
    config = load(conf(tmp_path, "  smtp_alert\n  smtp_server 127.0.0.1\n", instance("VI_1"))).config
    assert [p.sink.name for p in build_sinks(config, Settings())] == []
    config = load(conf(tmp_path, MAIL, instance("VI_1"))).config
    assert [p.sink.name for p in build_sinks(config, Settings())] == ["smtp"]


def test_smtp_alert_defaults_and_per_object_overrides(tmp_path: Path) -> None:
    body = instance("VI_1") + instance("VI_2", "  smtp_alert\n") + VS
    config = load(conf(tmp_path, MAIL + "  smtp_alert_checker\n", body)).config
    wants = alert_filter(config)
    assert not wants(ev("VI_1")) and wants(ev("VI_2"))
    rs = RealServerHealth(virtual="10.0.0.1:80/tcp", real="10.0.1.1:80", up=False, checker="TCP_CHECK")  # type: ignore[arg-type]
    assert wants(rs) and wants(PoolEvent(virtual="10.0.0.1:80/tcp", kind=PoolEventKind.QUORUM_UP))
    config = load(conf(tmp_path, MAIL + "  smtp_alert\n  smtp_alert_vrrp off\n", body)).config
    wants = alert_filter(config)
    assert not wants(ev("VI_1")) and wants(ev("VI_2")) and wants(rs)


async def test_mail_only_when_the_state_differs_from_the_last_mailed() -> None:
    sent: list[VrrpState] = []

    class Fake:
        name = "smtp"

        def message_for(self, event: InstanceState) -> bytes | None:
            return None if event.state is VrrpState.FAULT else b"x"  # no_email_faults

        async def deliver(self, event: InstanceState, context: DeliveryContext) -> None:
            sent.append(event.state)

    gate = MailStateGate(Fake())  # type: ignore[arg-type]
    for state in ("MASTER", "MASTER", "FAULT", "MASTER", "BACKUP", "BACKUP", "MASTER"):
        await gate.deliver(ev("VI_1", VrrpState(state)), DeliveryContext())
    assert sent == [VrrpState.MASTER, VrrpState.BACKUP, VrrpState.MASTER]


async def test_a_reloaded_mail_gate_remembers_what_was_mailed() -> None:
    sent: list[tuple[str, VrrpState]] = []

    class Fake:
        name = "smtp"

        def __init__(self, tag: str) -> None:
            self.tag = tag

        def message_for(self, event: InstanceState) -> bytes | None:
            return b"x"

        async def deliver(self, event: InstanceState, context: DeliveryContext) -> None:
            sent.append((self.tag, event.state))

    old = MailStateGate(Fake("old"))  # type: ignore[arg-type]
    await old.deliver(ev("VI_1", VrrpState.MASTER), DeliveryContext())
    new = MailStateGate(Fake("new"))  # type: ignore[arg-type]
    new.take_over(old)  # what the dispatcher does when a reload changes the mail settings
    for state in (VrrpState.MASTER, VrrpState.BACKUP):
        await new.deliver(ev("VI_1", state), DeliveryContext())
    assert sent == [("old", VrrpState.MASTER), ("new", VrrpState.BACKUP)]  # no second MASTER mail


def test_targets_cover_instances_virtual_and_real_servers(tmp_path: Path) -> None:
    body = instance("VI_1", '  notify_master "/bin/echo m"\n  notify /bin/true\n') + VS
    config = load(conf(tmp_path, "", body)).config
    targets = build_targets(config, ScriptPolicy())
    assert targets.instances["VI_1"].scripts["MASTER"].argv == ["/bin/echo", "m"]
    assert targets.virtual_servers["10.0.0.1:80/tcp"].scripts["UP"].argv == ["/bin/true"]
    assert targets.real_servers[("10.0.0.1:80/tcp", "10.0.1.1:80")].scripts["DOWN"].argv == [
        "/bin/echo",
        "down",
    ]


def test_scripts_the_launcher_refuses_are_left_out(tmp_path: Path) -> None:
    """The same resolution as the launcher's: a script whose user does not exist never becomes a target."""
    body = instance("VI_1", '  notify "/bin/true" no-such-user-lifeline\n')
    body += instance("VI_2", '  notify "/bin/true" root\n').replace("51", "52")
    config = load(conf(tmp_path, "", body)).config  # the loader reports the error; the model is still there
    assert set(build_targets(config, ScriptPolicy()).instances) == {"VI_2"}
    unknown_default = ScriptPolicy(script_user="no-such-user-lifeline")
    config = load(conf(tmp_path, "", instance("VI_1", "  notify /bin/true\n"))).config
    assert build_targets(config, unknown_default).instances == {}
    assert "VI_1" in build_targets(config, ScriptPolicy()).instances


def test_fifos_by_scope_in_one_global_order(tmp_path: Path) -> None:
    gd = f"  notify_fifo {tmp_path}/all\n  vrrp_notify_fifo {tmp_path}/v\n  lvs_notify_fifo {tmp_path}/l\n"
    config = load(conf(tmp_path, gd, instance("VI_1", "  notify /bin/true\n"))).config
    plans = build_sinks(config, Settings())
    assert isinstance(plans[0].sink, ScriptSink)
    fifos = {p.sink.name: p for p in plans[1:]}
    assert {
        n: (p.sink.scope, p.options.ordering, p.feeds)
        for n, p in fifos.items()
        if isinstance(p.sink, FifoSink)
    } == {
        "notify_fifo": ("all", "global", ("events", "health")),
        "vrrp_notify_fifo": ("vrrp", "global", ("events",)),
        "lvs_notify_fifo": ("lvs", "global", ("events", "health")),
    }
    assert (tmp_path / "all").is_fifo()


def test_feeds_cover_exactly_the_nodes_event_stream() -> None:
    """The notifier reads only its own node's part of ``LIFELINE_EVENTS``: every kind but service reloads."""
    together = [s for feed in ("events", "health") for s in feed_subjects("lb-1.x", feed)]  # type: ignore[arg-type]
    notifiable = [s for s in event_stream_subjects("lb-1.x") if ".service." not in s]
    assert sorted(together) == sorted(notifiable)
    assert all(s.startswith("lifeline.lb-1=2Ex.") for s in together)


def test_rs_init_notifies_and_no_checker_emails_reach_the_sinks_and_their_definitions(tmp_path: Path) -> None:
    """The keywords change what the script and mail sinks do, so a reload that toggles them changes them."""
    plain = {p.sink.name: p for p in build_sinks(load(conf(tmp_path, MAIL, VS)).config, Settings())}
    both = MAIL + "  rs_init_notifies\n  no_checker_emails\n"
    on = {p.sink.name: p for p in build_sinks(load(conf(tmp_path, both, VS)).config, Settings())}
    assert sorted(on) == sorted(plain) == ["script", "smtp"]
    scripts, gate = on["script"].sink, on["smtp"].sink
    assert isinstance(scripts, ScriptSink) and scripts.rs_init_notifies
    assert isinstance(gate, MailStateGate) and gate.inner.no_checker_emails
    assert all(on[n].definition != plain[n].definition for n in on)
