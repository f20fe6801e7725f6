"""vrrp_script and MISC_CHECK through the real checker: who runs them, what they get, unsafe ones disabled.

The checker runs as root (as in compose and systemd), in a private user
database, with its NATS credentials in its environment (a nats-server that
requires them).  Each script writes ``id``, its working directory and ``env``;
the expected identities are keepalived 2.2.7's (docs/keepalived.md "Script
users and script security"), the supplementary groups the user's own.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.lab.nats import NatsServer
from shared.lab.wait import await_until
from tests.scripts.support import (
    DEFAULT,
    DEFAULT_UID,
    EXTRA_GID,
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
    service_argv,
    service_env,
    user_db,
)

pytestmark = [pytest.mark.root, pytest.mark.nats]


def config(tree: ScriptTree, global_defs: str, vrrp: dict[str, str], misc: dict[str, str]) -> str:
    """``vrrp_script``s and one real server per MISC_CHECK; values are extra block lines (``user ...``)."""
    text = f"global_defs {{\n{global_defs}}}\n"
    for label, extra in vrrp.items():
        command = tree.command(label, unsafe="unsafe" in label)
        text += f"vrrp_script {label.replace('-', '_')} {{\n  script {command}\n  interval 0.3\n{extra}}}\n"
    text += "virtual_server 192.0.2.1 80 {\n  delay_loop 1\n  lb_algo rr\n  lb_kind NAT\n  protocol TCP\n"
    for n, (label, extra) in enumerate(misc.items(), start=2):
        command = tree.command(label, unsafe="unsafe" in label)
        check = f"    MISC_CHECK {{\n      misc_path {command}\n{extra}    }}\n"
        text += f"  real_server 192.0.2.{n} 80 {{\n{check}  }}\n"
    return text + "}\n"


async def run_checker(tmp_path: Path, server: NatsServer, conf: str, *, with_default: bool) -> ServiceProcess:
    path = tmp_path / "keepalived.conf"
    path.write_text(conf)
    (tmp_path / "lifeline.toml").write_text("")
    db = user_db(tmp_path / "db", with_default=with_default)
    argv = in_user_db(db, service_argv("checker", path, f"scripts-{tmp_path.name}"))
    proc = ServiceProcess(argv, service_env(server, tmp_path / "lifeline.toml"), tmp_path / "checker.log")
    await proc.start("lifeline-checker ready")
    return proc


async def reports(tree: ScriptTree, *labels: str, runs: int = 1) -> dict[str, Report]:
    """Each label's report once its script has run ``runs`` times."""
    await await_until(f"{labels} to run {runs}x", lambda: all(tree.runs(x) >= runs for x in labels), 30, 0.05)
    found = {label: tree.report(label) for label in labels}
    return {label: report for label, report in found.items() if report is not None}


def ids(report: Report) -> tuple[int, int, tuple[int, ...], str, str]:
    return report.uid, report.gid, report.groups, report.user, report.group


async def test_own_user_script_user_and_unsafe_paths(
    tmp_path: Path, server: NatsServer, tree: ScriptTree
) -> None:
    gd = f"  enable_script_security\n  script_user {SU}\n"
    own, root = f"  user {OWN}\n", "  user root\n"
    conf = config(
        tree,
        gd,
        {"vrrp-own": own, "vrrp-su": "", "vrrp-unsafe": root},
        {
            "misc-own": own.replace("  ", "      ", 1),
            "misc-su": "",
            "misc-unsafe": root.replace("  ", "      ", 1),
        },
    )
    checker = await run_checker(tmp_path, server, conf, with_default=False)
    try:
        seen = await reports(tree, "vrrp-own", "vrrp-su", "misc-own", "misc-su", runs=3)
    finally:
        checker.stop()
    own_ids = (OWN_UID, OWN_UID, (OWN_UID, EXTRA_GID), OWN, OWN)
    su_ids = (SU_UID, SU_UID, (SU_UID,), SU, SU)
    assert {label: ids(r) for label, r in seen.items()} == {
        "vrrp-own": own_ids,
        "vrrp-su": su_ids,
        "misc-own": own_ids,
        "misc-su": su_ids,
    }
    for label, report in seen.items():
        assert_clean_env(report, f"/home/{OWN}" if label.endswith("own") else "/nonexistent")
    # the unsafe ones (root from a world-writable directory) never ran while the others ran three times each
    assert (tree.runs("vrrp-unsafe"), tree.runs("misc-unsafe")) == (0, 0)
    log = (tmp_path / "checker.log").read_text()
    assert "vrrp_script vrrp_unsafe is disabled" in log and f"MISC_CHECK {tree.unsafe} is disabled" in log
    status, lines = lifeline_check(
        user_db(tmp_path / "db2", with_default=False), tmp_path / "keepalived.conf"
    )
    assert status == 1  # keepalived -t: "Disabling track script ... due to insecure", exit 5
    text = "\n".join(lines)
    assert "warning: unsafe permissions" in text and "vrrp_script vrrp_unsafe is disabled" in text
    assert f"note: unsafe permissions for script '{tree.unsafe}'" in text
    assert f"note: vrrp_script vrrp_own runs as {OWN}:{OWN} (its own user)" in text
    assert f"note: vrrp_script vrrp_su runs as {SU}:{SU} (script_user)" in text
    assert f"note: MISC_CHECK {tree.safe} runs as {OWN}:{OWN} (its own user)" in text
    assert f"note: MISC_CHECK {tree.safe} runs as {SU}:{SU} (script_user)" in text


@pytest.mark.parametrize("with_default", [True, False], ids=["keepalived_script", "root"])
async def test_default_user_then_root(
    tmp_path: Path, server: NatsServer, tree: ScriptTree, with_default: bool
) -> None:
    """No ``script_user``: ``keepalived_script`` if it exists, else root with keepalived's warning."""
    conf = config(tree, "", {"vrrp-default": ""}, {"misc-default": ""})
    checker = await run_checker(tmp_path, server, conf, with_default=with_default)
    try:
        seen = await reports(tree, "vrrp-default", "misc-default")
    finally:
        checker.stop()
    for report in seen.values():
        if with_default:
            assert ids(report) == (DEFAULT_UID, DEFAULT_UID, (DEFAULT_UID,), DEFAULT, DEFAULT)
            assert_clean_env(report, "/nonexistent")
        else:
            assert (report.uid, report.gid, report.user) == (0, 0, "root")
            assert_clean_env(report, "/root")
    assert len(seen) == 2
    log = (tmp_path / "checker.log").read_text()
    warned = (
        "Script user 'keepalived_script' does not exist: vrrp_script vrrp_default runs as root:root" in log
    )
    assert warned is not with_default
    db = user_db(tmp_path / "db2", with_default=with_default)
    _, lines = lifeline_check(db, tmp_path / "keepalived.conf")
    who = (
        f"{DEFAULT}:{DEFAULT} (the keepalived_script user)" if with_default else "root:root (root by fallback"
    )
    assert any(f"vrrp_script vrrp_default runs as {who}" in line for line in lines), lines
