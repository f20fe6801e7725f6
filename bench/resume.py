"""The VIP gap of a restarted MASTER: lifeline before and after the hitless restart, and keepalived.

Two nodes, ``a`` (priority 200, MASTER) and ``b`` (priority 100), the same
implementation on both; ``a``'s VRRP process is killed just after one of its
adverts and started again at once:

* ``lifeline-kill9-before``: the old behaviour (no resume records: the state
  directory unusable), so the restarted process removes its VIP and waits;
* ``lifeline-kill9``: with resume records;
* ``lifeline-sigterm-restart``: the old deliberate restart (SIGTERM hands over, then start);
* ``lifeline-sigquit-restart``: the hitless one (SIGQUIT, exit 75, start);
* ``keepalived-kill9``: ``kill -9`` of keepalived's VRRP child; its parent
  starts a new one (the keepalived counterpart of a crash restart).

Per case, over the window from the kill to the backups' down interval plus
two adverts after the restart: ``vip_unheld_s`` (no host held the VIP, from
the kernel's address events), ``vip_on_both_s`` (the longest time both held
it: a stale VIP next to the new master's), ``advert_silence_s`` (longest time with no
MASTER advert on the wire), ``both_advertising_s`` (two masters),
``transitions`` (``Entering MASTER STATE`` lines in both logs since the kill)
and ``restart_s`` (the restart's own time, to the resume or the first log
line).  Prints one JSON object.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Sequence
from functools import partial

from bench._configs import one_instance
from services.vrrp.core.timers import CS, master_down_interval
from shared.lab.advert_gaps import advert_times, both_advertising, just_after_an_advert, longest_silence
from shared.lab.report import measure_impl, write_report
from shared.lab.segment import Host, Impl, Segment
from shared.lab.vip_watch import VipWatch
from shared.lab.wait import wait_until

CASES = (
    "lifeline-kill9-before",
    "lifeline-kill9",
    "lifeline-sigterm-restart",
    "lifeline-sigquit-restart",
    "keepalived-kill9",
)
STARTUP = 30.0
ENTERING = "Entering MASTER STATE"


def _output(host: Host) -> str:
    return host.daemon.output() if host.daemon is not None else ""


def _keepalived_child(host: Host) -> int | None:
    """The VRRP child's pid (``-r`` pid file of ``Host.start``); None while the file is being rewritten."""
    try:
        return int((host.workdir / "v.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def run_case(case: str, interval: float) -> dict[str, object]:
    """One kill (or stop) and restart of the MASTER's VRRP process, measured."""
    impl: Impl = "keepalived" if case.startswith("keepalived") else "lifeline"
    mdi = master_down_interval(2, 100, round(interval * CS), 3)
    with Segment(["a", "b"]) as seg:
        a, b = seg.hosts
        vip = seg.address(100)
        if case.endswith("-before"):
            (a.workdir / "state").write_text("")  # a file where the records go: none, today's behaviour
        a.start(impl, one_instance("a", 200, [vip], version=2, advert_int=f"{interval:g}"))
        wait_until("a to hold the VIP", lambda: a.holds(vip), STARTUP)
        b.start(impl, one_instance("b", 100, [vip], version=2, advert_int=f"{interval:g}"))
        wait_until("b to be BACKUP", lambda: "BACKUP" in _output(b), STARTUP)
        time.sleep(interval)
        with VipWatch(seg.hosts, vip) as watch, seg.capture() as capture:
            marks = {h.role: len(_output(h)) for h in seg.hosts}
            just_after_an_advert(capture, a, 2 * interval)
            t0 = time.time()
            restart_s = _fire(case, a)
            time.sleep(mdi + 2 * interval)
            end = time.time()
            held = watch.holding(t0, end)
            seen = advert_times(capture, seg)
        logs = {h.role: _output(h)[marks[h.role] :] for h in seg.hosts}
    return {
        "vip_unheld_s": round(held.total_none, 3),
        "vip_on_both_s": round(held.longest_shared, 3),
        "advert_silence_s": round(longest_silence(seen["a"] + seen["b"], t0, end), 3),
        "both_advertising_s": round(both_advertising(seen["a"], seen["b"], interval), 3),
        "transitions": sum(log.count(ENTERING) for log in logs.values()),
        "resumed": ") resuming MASTER" in logs["a"],
        "not_resumed_why": next(
            (line.split(": ", 2)[-1] for line in logs["a"].splitlines() if "not resuming" in line), None
        ),
        "restart_s": round(restart_s, 3),
    }


def _fire(case: str, a: Host) -> float:
    """Kill or stop ``a``'s VRRP process and start it again at once; seconds until it is back."""
    assert a.daemon is not None
    start = time.monotonic()
    if case == "keepalived-kill9":
        old = _keepalived_child(a)
        assert old is not None, "keepalived wrote no VRRP child pid"
        os.kill(old, signal.SIGKILL)
        wait_until("a new VRRP child", lambda: _keepalived_child(a) not in (None, old), STARTUP)
        return time.monotonic() - start
    mark = len(a.daemon.output())
    if case == "lifeline-sigterm-restart":
        a.daemon.stop(signal.SIGTERM)
    elif case == "lifeline-sigquit-restart":
        a.daemon.stop(signal.SIGQUIT)
    else:
        a.kill()
    a.daemon.start()
    wait_until("a to be running again", lambda: "lifeline-vrrp ready" in _output(a)[mark:], STARTUP)
    return time.monotonic() - start


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--interval", type=float, default=1.0, help="advert interval, s (default 1, v2)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per case (default 1)")
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=CASES)
    parser.add_argument("--out", help="also write the JSON report here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("bench/resume.py: needs root (network namespaces)", file=sys.stderr)
        return 1
    results: dict[str, object] = {}
    for case in args.cases:
        results[case] = [
            measure_impl(case, partial(run_case, case, args.interval), progress=f"{case} #{i + 1}")
            for i in range(args.repeat)
        ]
    write_report("resume", results, args.out, interval_s=args.interval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
