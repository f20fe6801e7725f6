"""``net_namespace NAME``: the service runs inside ``/run/netns/NAME``, as keepalived's processes do.

The runner calls ``enter_namespace`` at start, after reading the file and
before anything else (no thread, socket or netlink handle exists yet), so the
service's raw sockets, netlink, VIPs, probes, IPVS and scripts are all inside.
Before moving, it keeps a thread in the start namespace (``shared.netns.Home``)
through which the bus connection is made: ``--nats`` keeps meaning what it
meant where the service was started.  A namespace that cannot be joined stops
the start (keepalived exits too); a reload may not change it.
"""

from __future__ import annotations

import logging

from shared import netns

log = logging.getLogger("lifeline.runner")


def enter_namespace(name: str) -> None:
    """Keep the start namespace for the bus, then move this (the main) thread into ``name``."""
    netns.keep_home()
    netns.enter(name)
    log.info("running in network namespace %s (the bus is reached from %s)", name, netns.home_namespace())
