"""keepalived's tracker weights: what a tracker's result does to an instance's priority.

Why in shared/: every service that reports trackers (the checker for scripts,
processes and files; the bfd service for its sessions) must apply the same
rule to the same ``weight``/``reverse`` pair, so vrrp sees one meaning.
"""

from __future__ import annotations


def contribution(weight: int, reverse: bool, ok: bool) -> int:
    """keepalived's priority delta: +weight while OK, -|weight| while failed; ``reverse`` flips.

    man keepalived.conf: a positive weight is added while up, a negative weight
    subtracted while down; with ``reverse`` the priority decreases when up and
    increases when down.
    """
    if weight == 0:
        return 0
    if not reverse:
        if weight > 0:
            return weight if ok else 0
        return 0 if ok else weight
    if weight > 0:
        return 0 if ok else weight
    return weight if ok else 0


def faults(weight: int, reverse: bool, ok: bool) -> bool:
    """Weight 0: a failure puts dependent instances in FAULT (``weight 0 reverse``: success does)."""
    return weight == 0 and (ok if reverse else not ok)


__all__ = ["contribution", "faults"]
