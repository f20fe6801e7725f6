"""The ``bfd_*`` process keywords reach the bfd service, as keepalived's reach its BFD child.

The runner applies them (``shared/runner/priorities.py``); this reads them back
from ``/proc`` of the real service running in a lab namespace, then changes
them with a reload (SCHED_RR with its RTTIME limit, then a nice value).
"""

from __future__ import annotations

import os
import signal

import pytest

from shared.lab.segment import Segment
from shared.lab.wait import wait_until
from tests.interop.bfd_peers import Timers, bfd_config, start_lifeline_bfd, wait_log
from tests.lab.test_process_settings import rttime_limits, stat_nice, status_kb

pytestmark = pytest.mark.usefixtures("netns_session")


def test_bfd_takes_its_process_settings_and_a_reload_changes_them() -> None:
    with Segment(("a", "b")) as seg:
        b = seg.host("b")
        session = bfd_config(seg, 2, 1, Timers())
        tuned = (
            "global_defs {\n  bfd_priority -7\n  bfd_no_swap\n  bfd_cpu_affinity 0\n  vrrp_priority 5\n}\n"
        )
        daemon = start_lifeline_bfd(b, tuned + session)
        wait_log(daemon, r"lifeline-bfd ready", 20.0)
        pid = daemon.pid
        assert stat_nice(pid) == -7, "bfd_priority, not vrrp_priority"
        assert os.sched_getaffinity(pid) == {0}
        assert status_kb(pid, "VmLck") > 0, "bfd_no_swap: mlockall"

        rt = "global_defs {\n  bfd_rt_priority 10\n  bfd_rlimit_rttime 400000\n}\n"
        (b.workdir / "lifeline-bfd.conf").write_text(rt + session)
        daemon.send(signal.SIGHUP)
        wait_until(
            "the reload", lambda: "lifeline-bfd reloaded" in daemon.output(), 20.0, explain=daemon.tail
        )
        assert os.sched_getscheduler(pid) == os.SCHED_RR | os.SCHED_RESET_ON_FORK
        assert os.sched_getparam(pid).sched_priority == 10
        assert rttime_limits(pid) == ("200000", "400000"), "soft = half, hard = bfd_rlimit_rttime"
