"""``python -m services.vrrp``: the VRRP service (docs/vrrp.md; ``--help`` lists the flags).

Flags, settings, logging, signals, the configuration policy and the exit codes
are the runner's (``shared/runner``), the same for every service; this file
only names the service, and holds the signals before its imports run.
"""

import sys
from collections.abc import Sequence

from shared.runner import launch


def main(argv: Sequence[str] | None = None) -> int:
    return launch("services.vrrp.service:SPEC", argv)


if __name__ == "__main__":
    sys.exit(main())
