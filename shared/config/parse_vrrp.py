"""Root handlers for the vrrp-owned root blocks."""

from __future__ import annotations

from collections.abc import Callable

from shared.config.context import Context
from shared.config.host import Host
from shared.config.model import Config
from shared.config.node import Node

RootHandler = Callable[[Context, Node, Config], None]

ROOT_HANDLERS: dict[str, RootHandler] = {}


def finish(ctx: Context, config: Config, host: Host) -> None:
    """Cross-checks that need the whole file and the host (track_script names, interfaces)."""
