"""keepalived's per-process keywords on real service processes: what the kernel says about them.

The runner applies ``<family>_priority``, ``_rt_priority``, ``_rlimit_rttime``,
``_no_swap`` and ``_cpu_affinity`` (``shared/runner/priorities.py``); these
tests start the real checker and vrrp services and read the result back from
``/proc/<pid>``, ``sched_getscheduler`` and ``sched_getaffinity``, as an
operator would.  A script the service runs gets the original nice value back.
Without ``CAP_SYS_NICE`` (``setpriv`` drops it, as a container would) the
service says so once and runs on.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from shared.lab.daemon import Daemon
from shared.lab.nats import NatsServer
from shared.lab.segment import Host
from shared.lab.wait import wait_until

pytestmark = pytest.mark.root

LIMIT = 20.0


def stat_nice(pid: int) -> int:
    """Field 19 of ``/proc/<pid>/stat`` (the nice value); the name in parentheses may hold spaces."""
    after = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(after[16])


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def rttime_limits(pid: int) -> tuple[str, str]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max realtime timeout"):
            soft, hard = line.split()[3:5]
            return soft, hard
    raise AssertionError("no realtime timeout line")


def checker(tmp_path: Path, conf: str, nats: NatsServer, *prefix: str) -> Daemon:
    path = tmp_path / "keepalived.conf"
    path.write_text(conf)
    argv = [*prefix, sys.executable, "-m", "services.checker", "--config", str(path), "--node", tmp_path.name]
    daemon = Daemon([*argv, "--nats", nats.url], tmp_path / "checker.log").start()
    wait_until("the checker to be ready", lambda: "lifeline-checker ready" in daemon.output(), LIMIT, 0.1,
               explain=daemon.tail)  # fmt: skip
    return daemon


def service_pid(daemon: Daemon) -> int:
    """The Python process itself (``setpriv`` execs it, so the pid is the daemon's)."""
    return daemon.pid


def test_checker_gets_its_nice_value_memory_lock_and_cpu_and_its_scripts_do_not(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    out = tmp_path / "script.out"
    script = tmp_path / "report.sh"
    script.write_text(
        "#!/bin/sh\n"
        f'awk \'{{sub(/.*\\) /, ""); split($0, f, " "); print f[17]}}\' /proc/self/stat > {out}.tmp\n'
        f"grep Cpus_allowed_list /proc/self/status >> {out}.tmp\n"
        f"mv {out}.tmp {out}\n"
    )
    script.chmod(0o755)
    conf = (
        "global_defs {\n  checker_priority -7\n  checker_no_swap\n  checker_cpu_affinity 0\n"
        "  vrrp_priority 5\n}\n"  # the vrrp process's: not the checker's
        f"vrrp_script report {{\n  script {script}\n  interval 1\n}}\n"
    )
    daemon = checker(tmp_path, conf, nats_server)
    try:
        pid = service_pid(daemon)
        assert stat_nice(pid) == -7
        assert os.sched_getaffinity(pid) == {0}
        assert status_kb(pid, "VmLck") > 0, "mlockall: the process's memory is locked"
        assert os.sched_getscheduler(pid) == os.SCHED_OTHER
        wait_until("the script to report", out.exists, LIMIT, 0.1, explain=daemon.tail)
        nice, cpus = out.read_text().splitlines()
        assert nice == "0", "a script gets the nice value the service had before (keepalived's reset)"
        assert cpus.split()[-1] == "0", "CPU affinity is inherited, as keepalived's scripts inherit it"
    finally:
        daemon.stop()


def test_vrrp_runs_round_robin_with_its_rttime_limit_and_a_reload_changes_it(pair: list[Host]) -> None:
    host = pair[0]
    instance = (
        "vrrp_instance VI_1 {\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  priority 100\n"
        f"  advert_int 1\n  virtual_ipaddress {{\n    {host.segment.address(100)}/24\n  }}\n}}\n"
    )
    conf = host.workdir / "rt.conf"
    conf.write_text("global_defs {\n  vrrp_rt_priority 10\n  vrrp_rlimit_rttime 400000\n}\n" + instance)
    daemon = host.start("lifeline", conf)
    try:
        wait_until("vrrp to be ready", lambda: "lifeline-vrrp ready" in daemon.output(), LIMIT, 0.1,
                   explain=daemon.tail)  # fmt: skip
        pid = daemon.pid
        assert os.sched_getscheduler(pid) == os.SCHED_RR | os.SCHED_RESET_ON_FORK
        assert os.sched_getparam(pid).sched_priority == 10
        assert rttime_limits(pid) == ("200000", "400000"), "soft = half, hard = vrrp_rlimit_rttime"
        conf.write_text("global_defs {\n  vrrp_priority 3\n}\n" + instance)
        daemon.send(signal.SIGHUP)
        wait_until("the reload", lambda: "lifeline-vrrp reloaded" in daemon.output(), LIMIT, 0.1,
                   explain=daemon.tail)  # fmt: skip
        assert os.sched_getscheduler(pid) == os.SCHED_OTHER, "no vrrp_rt_priority any more"
        assert stat_nice(pid) == 3
    finally:
        host.stop()


def test_without_cap_sys_nice_the_refusal_is_logged_once_and_the_service_runs(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    conf = "global_defs {\n  checker_rt_priority 10\n  checker_cpu_affinity 0\n}\n"
    drop = ("setpriv", "--bounding-set", "-sys_nice", "--inh-caps", "-sys_nice", "--")
    daemon = checker(tmp_path, conf, nats_server, *drop)
    try:
        pid = service_pid(daemon)
        assert os.sched_getscheduler(pid) == os.SCHED_OTHER
        assert os.sched_getaffinity(pid) == {0}, "what the platform allows is still applied"
        refusal = "checker_rt_priority 10: not applied (EPERM"
        assert daemon.output().count(refusal) == 1, daemon.tail()
        assert "CAP_SYS_NICE" in daemon.output()
        daemon.send(signal.SIGHUP)
        wait_until("the reload", lambda: "lifeline-checker reloaded" in daemon.output(), LIMIT, 0.1,
                   explain=daemon.tail)  # fmt: skip
        assert daemon.output().count(refusal) == 1, "said once, not at every reload"
        assert daemon.running
    finally:
        daemon.stop()
