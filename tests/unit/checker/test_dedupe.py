"""Identical probes have one probe_key, and concurrent demands share one run."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from services.checker.dedupe import SingleFlight
from shared.config.model_lvs import TcpCheck

IP = ipaddress.ip_address


def tcp(port: int, **kw: object) -> TcpCheck:
    fields: dict[str, object] = {"connect_ip": IP("10.0.0.2"), "connect_port": port, "connect_timeout": 3.0}
    return TcpCheck(**(fields | kw))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (tcp(80), tcp(80), True),
        (tcp(80), tcp(80, retry=9, delay_loop=1.0, alpha=True), True),  # timing is not part of the probe
        (tcp(80), tcp(81), False),
        (tcp(80), tcp(80, connect_timeout=1.0), False),
        (tcp(80), tcp(80, bind_if="eth1"), False),
        (tcp(80), tcp(80, bindto=IP("10.0.0.9")), False),
    ],
)
def test_probe_key_equality(a: TcpCheck, b: TcpCheck, same: bool) -> None:
    assert (a.probe_key() == b.probe_key()) is same


async def test_concurrent_demands_share_one_run() -> None:
    flight: SingleFlight[int] = SingleFlight()
    gate = asyncio.Event()

    async def work() -> int:
        await gate.wait()
        return 42

    waiters = [asyncio.create_task(flight.run("k", work)) for _ in range(5)]
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*waiters) == [42] * 5
    assert flight.runs == 1
    assert await flight.run("k", work) == 42  # finished: a later demand runs again (max_age 0)
    assert flight.runs == 2


async def test_cancelled_waiter_does_not_cancel_shared_run() -> None:
    flight: SingleFlight[str] = SingleFlight()
    gate = asyncio.Event()

    async def work() -> str:
        await gate.wait()
        return "done"

    first = asyncio.create_task(flight.run("k", work))
    second = asyncio.create_task(flight.run("k", work))
    await asyncio.sleep(0)
    first.cancel()
    gate.set()
    assert await second == "done"
    assert flight.runs == 1


async def test_max_age_reuses_recent_result_by_injected_clock() -> None:
    now = [100.0]
    flight: SingleFlight[float] = SingleFlight(max_age=2.0, clock=lambda: now[0])

    async def work() -> float:
        return now[0]

    assert await flight.run("k", work) == 100.0
    now[0] = 102.0
    assert await flight.run("k", work) == 100.0  # 2 s old: reused
    now[0] = 102.5
    assert await flight.run("k", work) == 102.5
    assert flight.runs == 2
    flight.forget(["k"])
    assert await flight.run("k", work) == 102.5
    assert flight.runs == 3
