"""Transition → notify script start, with NATS up, NATS stopped and the notifier dead; keepalived beside it.

Everything real (``shared.lab.notify_rig``): one VRRP instance in a network
namespace tracking the link ``dum0``; a transition is that link set down
(FAULT) or up (BACKUP, then MASTER); the latency is from just before the
``ip link set`` to the first command of the notify script (``date`` in the
recorder), both on the wall clock of this machine.  lifeline runs as in
production (vrrp service, notifier process, nats-server reached through the
namespace's relay); with NATS stopped or the notifier killed the vrrp service
runs the scripts itself after its bound (``FALLBACK_BOUND``).  keepalived 2.2.7
runs the same file in its own namespace in the same run.  Also checked: every
event ran once (the claims).  Needs root.  Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

from shared.lab.notify_rig import Impl, NotifyRig
from shared.lab.wait import wait_until
from shared.notify_claims import FALLBACK_BOUND

STEP = 0.005
"""Seconds between two looks at the recorder's file."""


def summary(values_ms: list[float]) -> dict[str, float]:
    ordered = sorted(values_ms)
    return {"n": len(ordered), "p50_ms": round(statistics.median(ordered), 1),
            "max_ms": round(ordered[-1], 1), "min_ms": round(ordered[0], 1)}  # fmt: skip


def ran_since(rig: NotifyRig, start: int, word: str) -> bool:
    return any(r.word == word for r in rig.runs()[start:])


def flaps(rig: NotifyRig, count: int) -> dict[str, Any]:
    """``count`` link flaps: latency of the FAULT script (link down) and the BACKUP script (link up)."""
    fault, backup = [], []
    for _ in range(count):
        before = len(rig.runs())
        down = rig.link(False)
        wait_until("the FAULT script", partial(ran_since, rig, before, "fault"), 15, STEP)
        up = rig.link(True)
        wait_until("the MASTER script", lambda: rig.runs()[-1].word == "master", 15, STEP)
        new = rig.runs()[before:]
        fault.append((next(r for r in new if r.word == "fault").started - down) * 1000)
        backup.append((next(r for r in new if r.word == "backup").started - up) * 1000)
    return {"link_down_to_notify_fault": summary(fault), "link_up_to_notify_backup": summary(backup)}


def who_ran(rig: NotifyRig, start: int) -> dict[str, Any]:
    """Events the flaps made: which ran more than once, and how many each side ran (its claims)."""
    counts = Counter(r.event_id for r in rig.runs()[start:])
    claims = rig.claims()
    return {
        "ran_twice": sorted(e for e, n in counts.items() if n > 1),
        "by": dict(Counter(claims[e].owner for e in counts if e in claims)),
    }


def scenario(workdir: Path, impl: Impl, case: str, count: int) -> dict[str, Any]:
    with NotifyRig(workdir, impl) as rig:
        wait_until("the start-up MASTER script", lambda: any(r.word == "master" for r in rig.runs()), 30)
        if impl == "lifeline":
            wait_until("the notifier", lambda: rig.caught_up({r.event_id for r in rig.runs()}), 30)
        start = len(rig.runs())
        if case == "nats_stopped":
            rig.nats.stop()
        elif case == "notifier_dead":
            assert rig.notifier is not None
            rig.notifier.kill()
        result = flaps(rig, count)
        if impl == "lifeline":
            if case == "nats_stopped":  # the catch-up must not run anything again
                rig.start_nats()
            elif case == "notifier_dead":
                assert rig.notifier is not None
                rig.notifier.start()
            wait_until("the notifier", lambda: rig.caught_up({r.event_id for r in rig.runs()}), 60)
            result["runs"] = who_ran(rig, start)
        return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--flaps", type=int, default=10, help="link flaps per case")
    args = p.parse_args()
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "fallback_bound_s": FALLBACK_BOUND,
    }
    with tempfile.TemporaryDirectory(prefix="lifeline-bench-") as top:
        cases: list[tuple[Impl, str]] = [("keepalived", "nats_up")]
        cases += [("lifeline", case) for case in ("nats_up", "nats_stopped", "notifier_dead")]
        for impl, case in cases:
            workdir = Path(top) / f"{impl}-{case}"
            workdir.mkdir()
            results[f"{impl}_{case}"] = scenario(workdir, impl, case, args.flaps)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
