"""``ScrapeCache``: rapid and concurrent ``/metrics`` GETs share one bus scrape."""

from __future__ import annotations

import asyncio

import pytest

from shared.cli.metrics import serve
from shared.cli.metrics_cache import ScrapeCache
from shared.lab.wait import await_until


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Scraper:
    """A scrape that waits for ``release`` (so calls overlap for sure) and counts its runs."""

    def __init__(self) -> None:
        self.runs = 0
        self.release = asyncio.Event()
        self.fail = False

    async def __call__(self) -> str:
        self.runs += 1
        await self.release.wait()
        if self.fail:
            raise RuntimeError("bus away")
        return f"scrape {self.runs}\n"


async def test_concurrent_calls_share_one_scrape_and_the_result_is_kept_for_ttl() -> None:
    clock, scraper = Clock(), Scraper()
    cache = ScrapeCache(scraper, ttl=1.0, clock=clock)
    waiting = [asyncio.create_task(cache()) for _ in range(20)]
    await asyncio.sleep(0)  # every call has started and found the scrape in flight
    scraper.release.set()
    assert set(await asyncio.gather(*waiting)) == {"scrape 1\n"}
    clock.now += 0.9
    assert await cache() == "scrape 1\n"
    assert scraper.runs == 1 and cache.scrapes == 1
    clock.now += 0.2  # 1.1 s after it was taken: stale
    assert await cache() == "scrape 2\n"
    assert scraper.runs == 2


async def test_a_failed_scrape_is_not_kept() -> None:
    clock, scraper = Clock(), Scraper()
    scraper.release.set()
    scraper.fail = True
    cache = ScrapeCache(scraper, ttl=1.0, clock=clock)
    for _ in range(2):
        with pytest.raises(RuntimeError):
            await cache()
    scraper.fail = False
    assert await cache() == "scrape 3\n"


async def test_a_caller_that_gives_up_does_not_cancel_the_scrape_of_the_others() -> None:
    scraper = Scraper()
    cache = ScrapeCache(scraper, ttl=1.0, clock=Clock())
    first, second = asyncio.create_task(cache()), asyncio.create_task(cache())
    await asyncio.sleep(0)
    first.cancel()
    scraper.release.set()
    assert await second == "scrape 1\n"
    assert scraper.runs == 1


async def test_n_rapid_gets_over_http_cause_one_scrape() -> None:
    scraper = Scraper()
    cache = ScrapeCache(scraper, clock=Clock())  # time stands still: the result stays fresh
    server = await serve(cache, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]

    async def get() -> str:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        response = (await reader.read()).decode()
        writer.close()
        return response

    try:
        gets = [asyncio.create_task(get()) for _ in range(10)]
        await await_until("the first GET's scrape", lambda: scraper.runs == 1, 10)
        scraper.release.set()
        responses = await asyncio.gather(*gets, *(get() for _ in range(10)))  # ten more, just after
    finally:
        server.close()
        await server.wait_closed()
    assert all(r.startswith("HTTP/1.1 200") and r.endswith("\r\n\r\nscrape 1\n") for r in responses)
    assert scraper.runs == 1
