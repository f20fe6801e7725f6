"""Publishes VRRP transitions through a durable ``Publisher`` (tests/nats/test_durable_outbox.py).

It publishes ``--count`` transitions of instance ``VI_1`` at once, with or
without NATS (each is printed as ``published <Nats-Msg-Id>`` once ``publish``
returned), then connects, delivers, prints ``flushed`` and waits to be killed:
what the vrrp service does on its hot path, in a process a test may
``kill -9`` at any line.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from shared.bus import Publisher, connect
from shared.events import Family, InstanceState, TransitionReason, VrrpState, msg_id

STATES = (VrrpState.BACKUP, VrrpState.MASTER)


def transition(tag: str, n: int) -> InstanceState:
    state, previous = STATES[n % 2], STATES[(n + 1) % 2]
    return InstanceState(
        instance="VI_1",
        vrid=51,
        interface="eth0",
        family=Family.INET,
        version=3,
        state=state,
        previous=previous,
        base_priority=100,
        effective_priority=100,
        reason=TransitionReason.MASTER_DOWN_TIMER,
        detail=f"{tag}-{n}",
    )


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nats", required=True)
    parser.add_argument("--node", required=True)
    parser.add_argument("--outbox", required=True, type=Path)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--tag", required=True)
    args = parser.parse_args(argv)
    publisher = Publisher(args.node, outbox_path=args.outbox, service="vrrp", max_retry_wait=0.2)
    for n in range(args.count):
        event = publisher.publish(transition(args.tag, n))
        print(f"published {msg_id(event)}", flush=True)
    nc = await connect(args.nats, f"outbox-probe-{args.tag}", reconnect_wait=0.1)
    await publisher.start(nc)
    await publisher.flush()
    print(f"flushed {publisher.counters.stored}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
