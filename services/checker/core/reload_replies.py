"""One answer to a bus ``reload`` from the answers of every checker replica (pure).

The replica that receives ``lifeline.<node>.ctl.checker.reload`` asks the
others to reload too (``services/checker/reload_fanout.py``) and answers with
this combination: applied only if every replica applied it and none stayed
silent, so ``lifeline reload checker`` never says "reloaded" while a replica
still runs the old checks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from shared.events import ReloadReply


def combine(own: str, replies: Mapping[str, ReloadReply], silent: Iterable[str] = ()) -> ReloadReply:
    """``replies`` by replica id (``own`` among them); ``silent``: replicas that did not answer in time.

    Alone (the usual single replica) the reply is the replica's own, unchanged.
    Equal details or equal errors are said once for all; a replica that
    differs is named in front of its own.
    """
    silent = sorted(silent)
    if set(replies) == {own} and not silent:
        return replies[own]
    ids = sorted(replies)
    ok = all(r.ok for r in replies.values()) and not silent
    details = {replies[i].detail for i in ids if replies[i].ok}
    if len(details) == 1 and all(replies[i].ok for i in ids):
        detail = f"{details.pop()} (replicas {', '.join(ids)})"
    else:
        detail = "; ".join(f"{i}: {replies[i].detail}" for i in ids if replies[i].ok)
    refused = [i for i in ids if not replies[i].ok]
    errors: list[str] = []
    if refused and len(refused) == len(ids) and len({tuple(replies[i].errors) for i in ids}) == 1:
        errors = list(replies[refused[0]].errors)
    else:
        for i in refused:
            errors += [f"replica {i}: {e}" for e in replies[i].errors] or [f"replica {i}: refused"]
    errors += [f"replica {i}: no answer" for i in silent]
    return ReloadReply(ok=ok, errors=errors, detail=detail)
