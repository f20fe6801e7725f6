"""Identical probes are grouped by probe_key, and concurrent demands share one run."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from services.checker.dedupe import SingleFlight, group_checks
from shared.config.model_lvs import HttpGetCheck, HttpUrl, LvsConfig, RealServer, TcpCheck, VirtualServer

IP = ipaddress.ip_address


def tcp(port: int, **kw: object) -> TcpCheck:
    fields: dict[str, object] = {"connect_ip": IP("10.0.0.2"), "connect_port": port, "connect_timeout": 3.0}
    return TcpCheck(**(fields | kw))  # type: ignore[arg-type]


def config() -> LvsConfig:
    rs_a = RealServer(address=IP("10.0.0.2"), port=80, checkers=[tcp(80, delay_loop=6.0), tcp(81)])
    rs_b = RealServer(
        address=IP("10.0.0.2"),
        port=8080,
        checkers=[
            tcp(80, delay_loop=10.0, retry=4),  # same probe as rs_a's first, other timing
            HttpGetCheck(connect_ip=IP("10.0.0.2"), connect_port=80, urls=[HttpUrl(path="/")]),
        ],
    )
    return LvsConfig(
        virtual_servers=[
            VirtualServer(address=IP("10.0.0.1"), port=80, protocol="TCP", real_servers=[rs_a]),
            VirtualServer(address=IP("10.0.0.1"), port=8080, protocol="TCP", real_servers=[rs_b]),
        ]
    )


def test_same_probe_key_grouped_across_virtual_servers() -> None:
    groups = group_checks(config().checks())
    shapes = [
        (g.checker.__struct_config__.tag, g.key[2], [(s.real_id, s.index) for s in g.subscribers])
        for g in groups
    ]
    assert shapes == [
        (
            "TCP_CHECK",
            80,
            [(("[10.0.0.1]:tcp:80", "10.0.0.2:80"), 0), (("[10.0.0.1]:tcp:8080", "10.0.0.2:8080"), 0)],
        ),
        ("TCP_CHECK", 81, [(("[10.0.0.1]:tcp:80", "10.0.0.2:80"), 1)]),
        ("HTTP_GET", 80, [(("[10.0.0.1]:tcp:8080", "10.0.0.2:8080"), 1)]),
    ]
    # each subscriber keeps its own checker, so its own timing
    assert [s.checker.delay_loop for s in groups[0].subscribers] == [6.0, 10.0]


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (tcp(80), tcp(80), True),
        (tcp(80), tcp(80, retry=9, delay_loop=1.0, alpha=True), True),  # timing is not part of the probe
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
