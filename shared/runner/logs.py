"""Logging for every service: stderr by default, syslog with keepalived's facilities as an option.

Why stderr: systemd's journal and container runtimes collect it, with
timestamps and the unit name; one line per event, no tracebacks for operator
mistakes.  Why syslog too: keepalived logs there (``-S``/``--log-facility``,
``daemon`` by default), and operators grep ``/var/log/syslog`` for it.
Why a redacting filter on the one handler: every record of every logger passes
it, so a password in a URL, a webhook token or this process's NATS password
never reaches a log line, even from a caller that forgot (``shared.redact``).
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

from shared.redact import RedactingFilter

FACILITIES: dict[str, int] = {
    "daemon": logging.handlers.SysLogHandler.LOG_DAEMON,
    "user": logging.handlers.SysLogHandler.LOG_USER,
    **{f"local{n}": getattr(logging.handlers.SysLogHandler, f"LOG_LOCAL{n}") for n in range(8)},
}
"""keepalived's ``-S`` choices: ``0``-``7`` mean ``local0``-``local7``."""

SYSLOG_SOCKET = Path("/dev/log")


def facility(value: str) -> int:
    """``local3``, ``3``, ``daemon``, ``user`` → the syslog facility (ValueError otherwise)."""
    name = f"local{value}" if value.isdigit() else value.lower()
    if name not in FACILITIES:
        raise ValueError(f"log facility {value!r}: expected 0-7, local0-local7, daemon or user")
    return FACILITIES[name]


def setup(service: str, level: str = "INFO", log_facility: str | None = None) -> None:
    """One handler on the root logger: ``lifeline-<service>[pid]: message`` on stderr or to syslog."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    handler: logging.Handler
    if log_facility is not None and SYSLOG_SOCKET.exists():
        handler = logging.handlers.SysLogHandler(str(SYSLOG_SOCKET), facility=facility(log_facility))
        handler.setFormatter(logging.Formatter(f"lifeline-{service}[%(process)d]: %(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s lifeline-{service}[%(process)d]: %(levelname)s %(message)s")
        )
    handler.addFilter(RedactingFilter())
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    logging.getLogger("nats").setLevel(logging.CRITICAL)  # its reconnect tracebacks; ours say enough
