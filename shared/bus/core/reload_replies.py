"""One answer to a bus ``reload`` from the answers of every replica of a service (pure).

The replica that receives ``lifeline.<node>.ctl.<service>.reload`` asks the
others to reload too (``shared/bus/replica_reload.py``) and answers with this
combination: applied only if every replica applied it and none stayed silent,
so ``lifeline reload checker|notifier`` never says "reloaded" while a replica
still runs the old file.  A replica that did not answer in time may have
applied the file or not: its own ``ServiceReload`` event tells.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from shared.events import ReloadReply


def combine(
    own: str, replies: Mapping[str, ReloadReply], silent: Iterable[str], waited: float
) -> ReloadReply:
    """``replies`` by replica id (``own`` among them); ``silent``: replicas unheard after ``waited`` seconds.

    Alone (the usual single replica) the reply is the replica's own, unchanged.
    Equal details, or the same errors from every replica (the same broken
    file), are said once for all; otherwise each replica is named in front of
    its own.
    """
    missing = sorted(set(silent) - set(replies))
    if set(replies) == {own} and not missing:
        return replies[own]
    ids = sorted(replies)
    refused = [i for i in ids if not replies[i].ok]
    details = {replies[i].detail for i in ids}
    if not refused and len(details) == 1:
        detail = f"{details.pop()} (replicas {', '.join(ids)})"
    else:
        detail = "; ".join(f"{i}: {replies[i].detail}" for i in ids if replies[i].ok)
    errors: list[str] = []
    if refused == ids and len({tuple(replies[i].errors) for i in ids}) == 1 and replies[own].errors:
        errors = list(replies[own].errors)
    else:
        for i in refused:
            errors += [f"replica {i}: {e}" for e in replies[i].errors] or [f"replica {i}: refused"]
    errors += [f"replica {i}: no answer within {waited:g}s" for i in missing]
    return ReloadReply(ok=not refused and not missing, errors=errors, detail=detail)
