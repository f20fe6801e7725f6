"""``python -m shared.config.support --markdown``: print docs/compatibility.md from the registry."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from shared.config.support.markdown import markdown


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.config.support", description=__doc__)
    parser.add_argument("--markdown", action="store_true", help="print docs/compatibility.md")
    args = parser.parse_args(argv)
    if not args.markdown:
        parser.print_help()
        return 2
    sys.stdout.write(markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
