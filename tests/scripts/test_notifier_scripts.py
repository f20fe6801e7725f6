"""Notify scripts through the real notifier: who runs them, what they get, unsafe ones disabled.

As in ``test_checker_scripts``: the notifier runs as root in a private user
database, with its NATS credentials in its environment; events are published
on the bus and each ``notify_master`` writes ``id``, its directory and ``env``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.bus import connect
from shared.events import VrrpState
from shared.lab.nats import NatsServer
from shared.lab.wait import await_until
from tests.notifier.test_delivery_support import instance_block, publisher, transition
from tests.scripts.support import (
    DEFAULT,
    DEFAULT_UID,
    EXTRA_GID,
    NATS_PASSWORD,
    NATS_USER,
    OWN,
    OWN_UID,
    SU,
    SU_UID,
    Report,
    ScriptTree,
    ServiceProcess,
    assert_clean_env,
    in_user_db,
    lifeline_check,
    provision_notifier,
    service_argv,
    service_env,
    user_db,
)

pytestmark = [pytest.mark.root, pytest.mark.nats]


def config(tree: ScriptTree, global_defs: str, scripts: dict[str, str]) -> str:
    """One instance per label; its ``notify_master`` writes that label's report as ``USER [GROUP]``."""
    text = f"global_defs {{\n  router_id scripts\n{global_defs}}}\n"
    for n, (label, user) in enumerate(scripts.items()):
        notify = f"  notify_master {tree.command(label, unsafe='unsafe' in label)} {user}\n"
        text += instance_block(instance(label), 60 + n, extra=notify)
    return text


def instance(label: str) -> str:
    return "VI_" + label.replace("-", "_")


async def notify(
    tmp_path: Path, server: NatsServer, tree: ScriptTree, conf: str, labels: list[str], *, with_default: bool
) -> tuple[dict[str, Report], str]:
    """Run the notifier on ``conf``, make every instance MASTER: the reports of ``labels``, the log."""
    path = tmp_path / "keepalived.conf"
    path.write_text(conf)
    (tmp_path / "lifeline.toml").write_text("")
    node = f"scripts-{tmp_path.name}"[-40:]
    db = user_db(tmp_path / "db", with_default=with_default)
    argv = in_user_db(db, [*service_argv("notifier", path, node), "--no-health"])
    await provision_notifier(server, path, node)
    proc = ServiceProcess(argv, service_env(server, tmp_path / "lifeline.toml"), tmp_path / "notifier.log")
    await proc.start("lifeline-notifier ready")
    nc = await connect(server.url, "test", user=NATS_USER, password=NATS_PASSWORD)
    try:
        pub = await publisher(nc, node)
        for label in ("notify-unsafe", *labels):  # the unsafe one first: it would have run by the end
            pub.publish(transition(instance(label), VrrpState.MASTER))
        await await_until("the notify scripts", lambda: all(tree.runs(x) for x in labels), 30, 0.05)
        await pub.close()
    finally:
        await nc.close()
        proc.stop()
    found = {label: tree.report(label) for label in labels}
    return {k: v for k, v in found.items() if v is not None}, (tmp_path / "notifier.log").read_text()


def ids(report: Report) -> tuple[int, int, tuple[int, ...], str, str]:
    return report.uid, report.gid, report.groups, report.user, report.group


async def test_own_user_script_user_and_an_unsafe_path(
    tmp_path: Path, server: NatsServer, tree: ScriptTree
) -> None:
    gd = f"  enable_script_security\n  script_user {SU}\n"
    conf = config(
        tree, gd, {"notify-unsafe": "root", "notify-own": OWN, "notify-su": "", "notify-group": f"{OWN} {SU}"}
    )
    seen, log = await notify(
        tmp_path, server, tree, conf, ["notify-own", "notify-su", "notify-group"], with_default=False
    )
    assert {label: ids(r) for label, r in seen.items()} == {
        "notify-own": (OWN_UID, OWN_UID, (OWN_UID, EXTRA_GID), OWN, OWN),
        "notify-su": (SU_UID, SU_UID, (SU_UID,), SU, SU),
        "notify-group": (OWN_UID, SU_UID, (SU_UID, EXTRA_GID), OWN, SU),
    }
    for label, report in seen.items():
        assert_clean_env(report, "/nonexistent" if label == "notify-su" else f"/home/{OWN}", events=True)
        assert report.env["LIFELINE_INSTANCE"] == instance(label) and report.env["LIFELINE_STATE"] == "MASTER"
    assert tree.runs("notify-unsafe") == 0
    assert f"notify_master {tree.unsafe} is disabled" in log
    status, lines = lifeline_check(
        user_db(tmp_path / "db2", with_default=False), tmp_path / "keepalived.conf"
    )
    text = "\n".join(lines)
    assert status == 0  # keepalived -t: exit 0, the script is disabled at run time
    assert f"note: unsafe permissions for script '{tree.unsafe}'" in text
    assert f"note: notify_master {tree.safe} runs as {OWN}:{OWN} (its own user)" in text
    assert f"note: notify_master {tree.safe} runs as {SU}:{SU} (script_user)" in text
    assert f"note: notify_master {tree.safe} runs as {OWN}:{SU} (its own user)" in text


@pytest.mark.parametrize("with_default", [True, False], ids=["keepalived_script", "root"])
async def test_default_user_then_root(
    tmp_path: Path, server: NatsServer, tree: ScriptTree, with_default: bool
) -> None:
    conf = config(tree, "", {"notify-unsafe": "", "notify-default": ""})
    seen, log = await notify(tmp_path, server, tree, conf, ["notify-default"], with_default=with_default)
    report = seen["notify-default"]
    if with_default:
        assert ids(report) == (DEFAULT_UID, DEFAULT_UID, (DEFAULT_UID,), DEFAULT, DEFAULT)
        assert_clean_env(report, "/nonexistent", events=True)
    else:
        assert (report.uid, report.gid, report.user) == (0, 0, "root")
        assert_clean_env(report, "/root", events=True)
    warned = "Script user 'keepalived_script' does not exist: notify_master" in log
    assert warned is not with_default
