"""IPVS pool sizes in ``lifeline metrics``: configured, alive and in the kernel, from the lvs status.

The lvs status detail comes from a real ``Engine`` over the in-memory kernel
of the engine tests, so the metric follows what the engine reports, not a
hand-written dictionary.
"""

from __future__ import annotations

import re
import time

import msgspec

from services.lvs.engine import Engine
from shared.cli.metrics_collect import build
from shared.config.load import load
from shared.events import ServiceStatus
from tests.unit.lvs.test_engine import SCENARIO, FakeKernel

VIRTUAL = "172.16.0.101:80/tcp"


def samples(text: str, name: str) -> dict[str, float]:
    """``{labels: value}`` of one metric family."""
    found = re.findall(rf"^{name}\{{(.*)\}} (\S+)$", text, re.M)
    return {labels: float(value) for labels, value in found}


def scrape(engine: Engine) -> str:
    detail = msgspec.json.decode(msgspec.json.encode(engine.status()))  # as it crosses the bus
    status = ServiceStatus(node="a", service="lvs", boot_id="b", detail=detail)
    return build([], {"lvs": status}, time.time())


def test_pool_sizes_follow_health_and_the_kernel() -> None:
    kernel = FakeKernel()
    engine = Engine(kernel, load(str(SCENARIO)).config.lvs)
    engine.reconcile()
    pool = engine.pools[VIRTUAL]
    configured = len(pool.reals)
    before = scrape(engine)
    key = f'virtual="{VIRTUAL}"'
    assert samples(before, "keepalived_lvs_vs_real_servers")[key] == configured
    in_kernel = {
        k: v for k, v in samples(before, "keepalived_lvs_vs_kernel_real_servers").items() if key in k
    }
    assert in_kernel and all(v >= 1 for v in in_kernel.values())

    real = next(iter(pool.reals))
    engine.health(VIRTUAL, real, False)
    after = scrape(engine)
    alive_before = samples(before, "keepalived_lvs_vs_real_servers_alive")[key]
    assert samples(after, "keepalived_lvs_vs_real_servers_alive")[key] == alive_before - 1
    assert samples(after, "keepalived_lvs_vs_real_servers")[key] == configured
    kernel_after = {
        k: v for k, v in samples(after, "keepalived_lvs_vs_kernel_real_servers").items() if key in k
    }
    assert sum(kernel_after.values()) < sum(in_kernel.values())  # the kernel really lost the row
