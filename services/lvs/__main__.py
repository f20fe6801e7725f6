"""``python -m services.lvs``: the IPVS service (docs/lvs.md; ``--help`` lists the flags).

Flags, settings, logging, signals (SIGHUP reloads the difference; SIGTERM
removes what this node created unless ``--keep``), the configuration policy and
the exit codes are the runner's (``shared/runner``), as for every service.
"""

import sys
from collections.abc import Sequence

from shared.runner import launch


def main(argv: Sequence[str] | None = None) -> int:
    return launch("services.lvs.service:SPEC", argv)


if __name__ == "__main__":
    sys.exit(main())
