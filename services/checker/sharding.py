"""Sharing one node's checks among checker replicas: who runs what.

Who is alive comes from ``shared.bus.replicas.Membership``: beats on
``lifeline.<node>.ctl.checker.replicas`` every 0.25 s, a replica unheard for
1 s is dead, so a ``kill -9``'d replica's checks move within ~1.3 s, under the
3 s promise.

Assignment: rendezvous (highest-random-weight) hashing of each check key over
the live replica ids.  Every replica computes the same owner from the same
set, with no coordination; when a replica dies only its keys move, and when it
comes back it gets exactly those keys back.  A new replica waits until its
membership settles (ttl) before claiming anything, so it does not run
everyone's checks while it has not yet heard its peers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def score(replica: str, key: str) -> int:
    """A stable 64-bit weight for (replica, key): the same in every process (unlike ``hash``)."""
    digest = hashlib.blake2b(f"{replica}\0{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner(key: str, replicas: Iterable[str]) -> str | None:
    """The replica that runs ``key``: highest score wins (ties broken by id for determinism)."""
    best: tuple[int, str] | None = None
    for replica in replicas:
        cand = (score(replica, key), replica)
        if best is None or cand > best:
            best = cand
    return None if best is None else best[1]
