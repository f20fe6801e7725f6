"""``follow``: every event handled in order; a broken stream is logged once and ends the watcher only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from services.vrrp.kernel.watch import follow


async def events(n: int, fail: bool) -> AsyncIterator[int]:
    for i in range(n):
        yield i
    if fail:
        raise OSError("ENOBUFS")


async def test_events_reach_the_handler_and_a_broken_stream_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[int] = []

    async def handle(i: int) -> None:
        seen.append(i)

    await follow(events(3, fail=True), handle, "link watcher failed; link changes are no longer seen")
    assert seen == [0, 1, 2]
    assert [r.getMessage() for r in caplog.records] == [
        "link watcher failed; link changes are no longer seen"
    ]


async def test_cancellation_passes_through() -> None:
    async def forever() -> AsyncIterator[int]:
        while True:
            await asyncio.sleep(3600)
            yield 0

    async def handle(_: int) -> None:
        return None

    task = asyncio.create_task(follow(forever(), handle, "never logged"))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
