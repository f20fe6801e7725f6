"""``python -m services.bfd``: the BFD service (docs/bfd.md; ``--help`` lists the flags).

Flags, settings, logging, signals (SIGHUP reloads the difference; SIGTERM
tells every peer AdminDown and stops), the configuration policy and the exit
codes are the runner's (``shared/runner``), as for every service.
"""

import sys
from collections.abc import Sequence

from shared.runner import launch


def main(argv: Sequence[str] | None = None) -> int:
    return launch("services.bfd.service:SPEC", argv)


if __name__ == "__main__":
    sys.exit(main())
