"""What a reload does to the sinks: the pure diff and the definitions it compares."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.notifier.core.sink_changes import SinkChanges, diff
from services.notifier.wiring import SinkPlan, build_sinks, config_sinks, discard
from shared.config.load import load
from shared.settings import Settings, SinkSettings

# --------------------------------------------------------------------------- the diff


def test_diff_sorts_names_into_added_changed_removed_kept() -> None:
    running = {"script": ("a",), "smtp": ("mail", 1), "notify_fifo": ("fifo", "/x"), "hook": ("h",)}
    wanted = {"hook": ("h",), "script": ("b",), "vrrp_notify_fifo": ("fifo", "/y"), "smtp": ("mail", 1)}
    changes = diff(running, wanted)
    assert changes == SinkChanges(
        added=("vrrp_notify_fifo",), changed=("script",), removed=("notify_fifo",), kept=("hook", "smtp")
    )
    assert changes.summary() == "sinks: 1 added, 1 changed, 1 removed, 2 kept"
    assert changes.details() == (
        "added vrrp_notify_fifo; changed script; removed notify_fifo; kept hook, smtp"
    )
    assert not changes.noop


def test_the_same_definitions_are_a_noop_and_nothing_is_nothing() -> None:
    same = {"script": {"VI_1": ("a", None)}, "smtp": None}
    changes = diff(same, {"script": {"VI_1": ("a", None)}, "smtp": None})
    assert changes.noop and changes.kept == ("script", "smtp")
    assert changes.summary() == "sinks: 0 added, 0 changed, 0 removed, 2 kept"
    empty = diff({}, {})
    assert empty.noop and empty.details() == "no sinks"


# --------------------------------------------------------------------------- definitions from keepalived.conf

MAIL = "  notification_email {\n    ops@example.net\n  }\n  smtp_server 127.0.0.1 2525\n"


def instance(name: str, vrid: int, extra: str = "") -> str:
    return (
        f"vrrp_instance {name} {{\n  interface lo\n  virtual_router_id {vrid}\n"
        f"  virtual_ipaddress {{\n    10.1.1.{vrid}\n  }}\n{extra}}}\n"
    )


class Conf:
    """Writes keepalived.conf variants and builds their sinks (FIFOs land in the test's directory)."""

    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path
        self.n = 0
        self.built: list[SinkPlan] = []

    def definitions(self, global_defs: str = "", body: str = "") -> dict[str, object]:
        self.n += 1
        path = self.dir / f"k{self.n}.conf"
        path.write_text(f"global_defs {{\n  router_id lab1\n{global_defs}}}\n{body}")
        plans = config_sinks(load(path).config, Settings())
        self.built += plans
        return {p.sink.name: p.definition for p in plans}


@pytest.fixture
async def conf(tmp_path: Path) -> AsyncIterator[Conf]:
    c = Conf(tmp_path)
    yield c
    await discard(c.built)


async def test_moving_blocks_and_comments_change_no_sink(conf: Conf) -> None:
    a = instance("VI_1", 1, '  notify "/bin/echo one"\n') + instance("VI_2", 2, "  notify_master /bin/true\n")
    b = (
        "# a comment\n\n"
        + instance("VI_2", 2, "  notify_master /bin/true\n")
        + instance("VI_1", 1, '  notify "/bin/echo one"\n')
    )
    fifo = f"  vrrp_notify_fifo {conf.dir}/v.fifo\n"
    changes = diff(conf.definitions(MAIL + fifo, a), conf.definitions(fifo + MAIL, b))
    assert changes.noop and set(changes.kept) == {"script", "smtp", "vrrp_notify_fifo"}


async def test_a_script_path_or_a_new_notify_master_changes_the_script_sink(conf: Conf) -> None:
    before = conf.definitions(body=instance("VI_1", 1, '  notify "/bin/echo one"\n'))
    path = conf.definitions(body=instance("VI_1", 1, '  notify "/bin/echo two"\n'))
    added = conf.definitions(
        body=instance("VI_1", 1, '  notify "/bin/echo one"\n  notify_master /bin/true\n')
    )
    user = conf.definitions(body=instance("VI_1", 1, '  notify "/bin/echo one" nobody\n'))
    for after in (path, added, user):
        assert diff(before, after) == SinkChanges(changed=("script",))


async def test_mail_settings_and_smtp_alert_change_the_smtp_sink(conf: Conf) -> None:
    body = instance("VI_1", 1)
    before = conf.definitions(MAIL, body)
    assert diff(before, conf.definitions(MAIL.replace("2525", "2526"), body)).changed == ("smtp",)
    assert diff(before, conf.definitions(MAIL, instance("VI_1", 1, "  smtp_alert\n"))).changed == ("smtp",)
    assert diff(before, conf.definitions(MAIL + "  no_email_faults\n", body)).changed == ("smtp",)
    assert diff(before, conf.definitions("", body)) == SinkChanges(removed=("smtp",))


async def test_fifos_come_and_go_by_keyword_and_change_by_path(conf: Conf) -> None:
    d = conf.dir
    before = conf.definitions(f"  notify_fifo {d}/a.fifo\n")
    after = conf.definitions(f"  notify_fifo {d}/b.fifo\n  vrrp_notify_fifo {d}/v.fifo\n")
    assert diff(before, after) == SinkChanges(added=("vrrp_notify_fifo",), changed=("notify_fifo",))
    assert diff(after, before) == SinkChanges(changed=("notify_fifo",), removed=("vrrp_notify_fifo",))


async def test_a_lifeline_toml_sink_named_like_a_conf_sink_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "k.conf"
    path.write_text(f"global_defs {{\n  router_id lab1\n{MAIL}}}\n")
    hook = SinkSettings(name="smtp", kind="webhook", options={"url": "http://127.0.0.1:9/x"})
    settings = Settings(sinks=[hook])
    with pytest.raises(ValueError, match="share a name"):
        build_sinks(load(path).config, settings)
