"""The vrrp service's loop: long sleeps are cut so kernel slack cannot make a deadline late."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import socket
import threading

import pytest

from services.vrrp.kernel.precise_loop import (
    SHORT_SLEEP_S,
    PreciseSelector,
    direct_readers,
    early_timeout,
    precise_loop,
    set_timer_slack,
)

PR_GET_TIMERSLACK = 30


def worst_slack(timeout: float) -> float:
    """The kernel's allowance for a select() of ``timeout`` by a niced task (t / 200)."""
    return timeout / 200


@pytest.mark.parametrize("timeout", [None, 0.0, 0.001, SHORT_SLEEP_S])
def test_short_or_no_timeouts_are_slept_whole(timeout: float | None) -> None:
    assert early_timeout(timeout) == timeout


@pytest.mark.parametrize("timeout", [0.0021, 0.0609, 0.3609, 3.609, 3600.0])
def test_each_step_ends_before_the_deadline_even_with_worst_slack(timeout: float) -> None:
    remaining, steps = timeout, 0
    while remaining > SHORT_SLEEP_S:
        step = early_timeout(remaining)
        assert step is not None and 0 < step < remaining
        assert step + worst_slack(step) < remaining
        remaining -= step
        steps += 1
    assert steps <= 4, "a deadline costs only a few wake-ups"
    assert remaining <= SHORT_SLEEP_S


def test_timer_slack_is_lowered_for_this_thread() -> None:
    def probe(out: list[int]) -> None:
        assert set_timer_slack(1_000)
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        out.append(int(libc.prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0)))

    out: list[int] = []
    thread = threading.Thread(target=probe, args=(out,))  # its own slack: the test runner's is untouched
    thread.start()
    thread.join()
    assert out == [1_000]


def test_loop_runs_timers_and_io_with_the_early_waking_selector() -> None:
    loop = precise_loop()
    try:
        assert isinstance(loop._selector, PreciseSelector)  # type: ignore[attr-defined]

        async def main() -> list[str]:
            seen: list[str] = []
            r, w = await asyncio.open_connection(*await _server())
            asyncio.get_running_loop().call_later(0.05, seen.append, "timer")
            w.write(b"ping\n")
            seen.append((await r.readline()).decode().strip())
            await asyncio.sleep(0.1)
            w.close()
            return seen

        assert loop.run_until_complete(main()) == ["pong", "timer"]
    finally:
        loop.close()


async def _server() -> tuple[str, int]:
    async def echo(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        if await r.readline() == b"ping\n":
            w.write(b"pong\n")
            await w.drain()
        w.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    return host, port


def test_direct_readers_run_beside_asyncio_readers_and_survive_a_failing_callback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = precise_loop()
    direct_rx, direct_tx = socket.socketpair()
    plain_rx, plain_tx = socket.socketpair()
    selector = direct_readers(loop)
    assert selector is not None
    seen: list[str] = []

    def on_direct() -> None:
        data = direct_rx.recv(16)
        seen.append(f"direct {data.decode()}")
        if data == b"boom":
            raise RuntimeError("reader bug")

    def on_plain() -> None:
        seen.append(f"plain {plain_rx.recv(16).decode()}")

    async def main() -> None:
        selector.add_direct_reader(direct_rx.fileno(), on_direct)
        asyncio.get_running_loop().add_reader(plain_rx.fileno(), on_plain)
        for payload in (b"a", b"boom", b"b"):
            direct_tx.send(payload)
            await asyncio.sleep(0.02)
        plain_tx.send(b"c")
        await asyncio.sleep(0.02)
        selector.remove_direct_reader(direct_rx.fileno())
        direct_tx.send(b"ignored")
        await asyncio.sleep(0.02)
        asyncio.get_running_loop().remove_reader(plain_rx.fileno())

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
        for s in (direct_rx, direct_tx, plain_rx, plain_tx):
            s.close()
    assert seen == ["direct a", "direct boom", "direct b", "plain c"]
    assert "reader bug" in caplog.text
