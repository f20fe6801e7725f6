"""One probe per checker kind, found by the checker's ``kind`` tag.

``run_probe`` is what the scheduler calls: it picks the probe and is the last
line of defence, turning even an unexpected exception into a failed result
(logged with its traceback), so one buggy probe cannot stop the checker loop.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from services.checker.probes import dns, file, http, misc, ping, smtp, tcp, udp
from services.checker.probes.base import ProbeResult, Target
from shared.config.model_lvs import Checker

ProbeFn = Callable[[Checker, Target], Awaitable[ProbeResult]]

PROBES: dict[str, ProbeFn] = {
    "TCP_CHECK": tcp.probe,
    "HTTP_GET": http.probe,
    "SSL_GET": http.probe,
    "SMTP_CHECK": smtp.probe,
    "DNS_CHECK": dns.probe,
    "UDP_CHECK": udp.probe,
    "PING_CHECK": ping.probe,
    "MISC_CHECK": misc.probe,
    "FILE_CHECK": file.probe,
}
"""BFD_CHECK is absent: it follows a BFD session, not a probe."""

log = logging.getLogger(__name__)


def kind_of(check: Checker) -> str:
    return str(check.__struct_config__.tag)


async def run_probe(check: Checker, target: Target) -> ProbeResult:
    """Run the probe for ``check``'s kind; never raises except on cancellation."""
    kind = kind_of(check)
    fn = PROBES.get(kind)
    if fn is None:
        return ProbeResult(False, f"{kind} has no probe", 0.0)
    try:
        return await fn(check, target)
    except Exception as exc:
        log.exception("%s probe of %s:%s crashed", kind, target.host, target.port)
        return ProbeResult(False, f"internal error: {type(exc).__name__}: {exc}", 0.0)


__all__ = ["PROBES", "ProbeFn", "ProbeResult", "Target", "kind_of", "run_probe"]
