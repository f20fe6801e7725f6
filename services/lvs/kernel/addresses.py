"""The node's local addresses through rtnetlink, for ``ha_suspend`` (pyroute2's ``AsyncIPRoute``).

Why a dump then events on one socket: the socket joins the IPv4 and IPv6
address groups *before* the dump, so an address added between the two is
seen as an event rather than lost.  keepalived watches the same netlink
groups in its checker process; the decision what to do with them is
``suspend.Suspension``'s, this module only reads.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from pyroute2 import AsyncIPRoute
from pyroute2.netlink.rtnl import RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR


@dataclass(frozen=True)
class AddressEvent:
    index: int
    address: str
    present: bool


def local_of(msg: Any) -> str | None:
    """The local end of an ifaddrmsg: IFA_LOCAL on IPv4 (IFA_ADDRESS is the peer on point-to-point)."""
    value = msg.get("local") or msg.get("address")
    return str(value) if value else None


def event_of(msg: Any) -> AddressEvent | None:
    address, kind = local_of(msg), msg.get("event")
    if address is None or kind not in ("RTM_NEWADDR", "RTM_DELADDR"):
        return None
    return AddressEvent(int(msg["index"]), address, kind == "RTM_NEWADDR")


class AddressWatch:
    """One netlink socket: ``snapshot()`` once, then ``events()`` until ``close()``."""

    def __init__(self, factory: Callable[[], Any] = AsyncIPRoute) -> None:
        self.ipr: Any = factory()

    async def snapshot(self) -> list[tuple[int, str]]:
        """Join the address groups, then dump: every (interface index, address) configured now."""
        await self.ipr.bind(groups=RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR)
        out: list[tuple[int, str]] = []
        async for msg in await self.ipr.addr("dump"):
            address = local_of(msg)
            if address is not None:
                out.append((int(msg["index"]), address))
        return out

    async def events(self) -> AsyncIterator[AddressEvent]:
        """Every address added or removed after the snapshot, as it happens."""
        while True:
            async for msg in self.ipr.get():
                event = event_of(msg)
                if event is not None:
                    yield event

    def close(self) -> None:
        self.ipr.close()
