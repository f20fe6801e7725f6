"""One answer for a reload that every notifier replica of the node did: the pure merge of their replies.

Why one answer: ``lifeline reload notifier`` asks one replica (the bus
endpoint is a queue group) and must learn whether the node as a whole now
runs the new file.  So the answer is ok only when this replica and every peer
known to be present applied it; a peer that refused says why, with its name,
and a peer that did not answer in time is an error too (it may have applied
the file or not: its own ``ServiceReload`` event tells).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from shared.events import ReloadReply


def merge(
    own: ReloadReply, answers: Mapping[str, ReloadReply], expected: Iterable[str], timeout: float
) -> ReloadReply:
    """This replica's reply with its peers': ``answers`` by replica, ``expected`` the peers present."""
    silent = sorted(set(expected) - set(answers))
    errors = [*own.errors]
    for replica, answer in sorted(answers.items()):
        errors += [f"replica {replica}: {error}" for error in answer.errors]
        if not answer.ok and not answer.errors:
            errors.append(f"replica {replica}: refused")
    errors += [f"replica {replica}: no answer within {timeout:g}s" for replica in silent]
    detail = own.detail
    if answers or silent:  # peers whose sinks changed otherwise (they ran another file before) say so
        others = [
            f"replica {r}: {a.detail}" for r, a in sorted(answers.items()) if a.ok and a.detail != own.detail
        ]
        applied = int(own.ok) + sum(a.ok for a in answers.values())
        count = f"{applied} of {1 + len(answers) + len(silent)} replicas applied"
        detail = "; ".join(part for part in (own.detail, *others, count) if part)
    ok = own.ok and not silent and all(a.ok for a in answers.values())
    return ReloadReply(ok=ok, errors=errors, detail=detail)
