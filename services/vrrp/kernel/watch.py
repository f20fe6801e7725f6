"""One loop for every netlink watcher of the vrrp service: links, addresses, deleted routes and rules.

Why one: each watcher reads an endless stream of kernel events and hands
each to the service; if the stream breaks (a netlink buffer overrun, a
socket error) the service must say so once, loudly, and keep electing:
adverts never depend on a watcher.  Cancellation (stop, reload) passes
through untouched.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

log = logging.getLogger("lifeline.vrrp.watch")

T = TypeVar("T")


async def follow(events: AsyncIterator[T], handle: Callable[[T], Awaitable[None]], lost: str) -> None:
    """Await ``handle`` for each event; on failure log ``lost`` (what is no longer seen), traceback too."""
    try:
        async for event in events:
            await handle(event)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception(lost)


__all__ = ["follow"]
