"""Each service logs the compat lines of its own areas, once, at start and at each reload.

At start the runner prints the file's diagnostics on stderr (here the file
also has an error, so the service exits 78 right after: the same path a
service takes before it starts, without needing NATS); at a reload it logs
them (``config_policy.read``).  A compat line belongs to one area and each area
to one service (``ServiceSpec.areas``), so across the four services every line
appears once.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from shared.config.diagnostics import Severity
from shared.config.load import load
from shared.exit_codes import Exit
from shared.runner import config_policy

REPO = Path(__file__).resolve().parents[2]

CONF = """\
global_defs {
    router_id compat
    enable_snmp_checker
    rs_init_notifies
    lvs_netlink_cmd_rcv_bufs 1048576
    enable_dbus
}
vrrp_instance VI_1 {
    interface lo
    virtual_router_id 51
    priority 300
    debug 1
    virtual_ipaddress {
        192.0.2.1/32
    }
}
"""
"""Line 11 (priority 300) is an error; lines 3, 5, 6 and 12 are compat lines (4 is done: silent).

The notifier has no keyword left that is not done: it prints none, and none of the others'.
"""

OWN = {"vrrp": [6, 12], "checker": [3], "notifier": [], "lvs": [5]}


def compat_lines(text: str, conf: Path) -> list[int]:
    prefix = f"{conf}:"
    return [
        int(line[len(prefix) :].split(":", 1)[0])
        for line in text.splitlines()
        if line.startswith(prefix) and "supported by lifeline" in line
    ]


@pytest.mark.parametrize("service", sorted(OWN))
def test_a_service_prints_its_own_compat_lines_at_start(service: str, tmp_path: Path) -> None:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONF)
    settings = tmp_path / "lifeline.toml"
    settings.write_text("")
    argv = [sys.executable, "-m", f"services.{service}", "--config", str(conf), "--settings", str(settings)]
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == Exit.CONFIG, proc.stderr
    assert f"{conf}:11: error:" in proc.stderr  # every service still shows every error
    assert compat_lines(proc.stderr, conf) == OWN[service]


def test_every_compat_line_belongs_to_exactly_one_service(tmp_path: Path) -> None:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONF)
    every = [d.line for d in load(conf, config_id="t").diagnostics if d.severity is Severity.COMPAT]
    assert sorted(every) == sorted(line for lines in OWN.values() for line in lines)


def test_a_reload_logs_only_the_service_s_own_compat_lines(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from services.lvs.service import SPEC

    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONF.replace("priority 300", "priority 100"))
    caplog.set_level(logging.WARNING, logger="lifeline.config")
    checked = config_policy.read(conf, "t", areas=SPEC.areas)
    assert checked.config is not None
    logged = [r.getMessage() for r in caplog.records if "supported by lifeline" in r.getMessage()]
    expected = f"{conf}:5: warning: lvs_netlink_cmd_rcv_bufs is not supported"
    assert len(logged) == 1 and logged[0].startswith(expected)
    assert all(r.levelno == logging.WARNING for r in caplog.records)
