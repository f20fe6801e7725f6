"""The one exit-code table of every lifeline process: the services and the ``lifeline`` command.

Why sysexits-style numbers beside the small ones: a supervisor must tell "my
config is broken, restarting will not help" (``CONFIG``, 78: systemd's
``RestartPreventExitStatus=`` and ``lifeline up`` key on it) from "the bus is
away" or a crash, and scripts calling the CLI must tell "NATS is down" from
"the instance is not there".  docs/operations.md lists the table.
``lifeline config check`` is the one exception: it returns ``keepalived -t``'s
own statuses, because scripts written for keepalived read them.
"""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    """Exit statuses; ``int(Exit.CONFIG) == 78``."""

    OK = 0
    """Done, or stopped by SIGTERM/SIGINT after a clean shutdown."""
    PROBLEMS = 1
    """The command ran and reports a problem (unhealthy, refused, stale); a service failed at run time."""
    USAGE = 2
    """Bad flags or arguments (argparse's own status)."""
    NOT_FOUND = 66
    """No such node, instance, service or stream (sysexits EX_NOINPUT)."""
    UNREACHABLE = 69
    """NATS could not be reached (sysexits EX_UNAVAILABLE)."""
    INTERNAL = 70
    """A lifeline bug: reported without a traceback, please report it (sysexits EX_SOFTWARE)."""
    RESTART = 75
    """Exited on purpose to be started again at once (vrrp's hitless restart; sysexits EX_TEMPFAIL)."""
    AUTH = 77
    """NATS refused the credentials or a permission (sysexits EX_NOPERM)."""
    CONFIG = 78
    """keepalived.conf or lifeline.toml is unreadable or has errors (sysexits EX_CONFIG)."""
    INTERRUPTED = 130
    """Ctrl-C before the process could stop cleanly (128 + SIGINT)."""
