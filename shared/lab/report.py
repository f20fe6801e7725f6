"""A benchmark's JSON report: the numbers, and where, when and against what they were measured.

Why it matters: a latency or a CPU figure only means something next to the
machine it came from and how busy that machine was (the reference machines
are shared), so every report carries them; quantiles are nearest-rank, so
every reported number was really measured.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from shared.lab.daemon import keepalived_binary


def print_json(result: dict[str, Any], out: str | None) -> None:
    """A benchmark's report: JSON on stdout, and the same text in ``out`` when given."""
    text = json.dumps(result, indent=2)
    print(text)
    if out:
        Path(out).write_text(text + "\n")


def quantile(values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile (no interpolation: every reported number was really measured)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, int(-(-q * len(ordered) // 1)) - 1))
    return ordered[rank]


def machine() -> dict[str, object]:
    """Where a number was measured: it only means something next to the machine it came from."""
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "kernel": os.uname().release,
        "cpu": model,
        "python": sys.version.split()[0],
    }


def loadavg() -> list[float]:
    """1/5/15-minute load: benchmarks on a shared machine must say how busy it was."""
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


def keepalived_version() -> str:
    """keepalived's first ``-v`` line (``Keepalived v2.2.7 (...)``), "?" if it says nothing."""
    proc = subprocess.run([keepalived_binary(), "-v"], capture_output=True, text=True, check=False)
    return (proc.stdout + proc.stderr).splitlines()[0] if (proc.stdout + proc.stderr) else "?"


def measure_impl(
    impl: str, run: Callable[[], dict[str, object]], progress: str | None = None
) -> dict[str, object]:
    """``run()`` for implementation ``impl``, with the load before it.

    ``progress`` set: the result is also printed to stderr after that label.
    """
    load = loadavg()
    result = run() | {"loadavg_before": load}
    if progress is not None:
        print(f"{progress}: {result}", file=sys.stderr)
    return result


def write_report(benchmark: str, results: dict[str, object], out: str | None, **fields: object) -> None:
    """Print a benchmark's JSON report (where, when and against which keepalived) and save it to ``out``."""
    report = {
        "benchmark": benchmark,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "keepalived": keepalived_version(),
        **fields,
        "results": results,
    }
    print_json(report, out)
