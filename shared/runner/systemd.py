"""``sd_notify`` without a library: READY, RELOADING and STOPPING for ``Type=notify`` units.

Why: with ``Type=notify`` systemd waits for READY before it counts a unit as
started, so ``systemctl reload`` never reaches a service that is still
starting, and dependent units (``lifeline.target``) start in the right order.
The protocol is one datagram to ``$NOTIFY_SOCKET``; outside systemd it is a no-op.
"""

from __future__ import annotations

import os
import socket
import time


def notify(state: str) -> bool:
    """Send ``state`` (e.g. ``READY=1``) to systemd; False when not run by systemd or it failed."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(state.encode(), address)
    except OSError:
        return False
    return True


def ready(status: str = "") -> bool:
    return notify("READY=1" + (f"\nSTATUS={status}" if status else ""))


def reloading() -> bool:
    """RELOADING=1 with the monotonic timestamp systemd 253+ asks for (older ones ignore it)."""
    usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    return notify(f"RELOADING=1\nMONOTONIC_USEC={usec}")


def stopping() -> bool:
    return notify("STOPPING=1")
