"""Root handlers for the lvs-owned root blocks (virtual_server, virtual_server_group, SSL).

The blocks themselves are read by ``lvs_vs`` / ``lvs_vsg`` / ``check_*``; the
whole-file checks and inheritance live in ``lvs_finish``.  This module is the
table ``parse.build`` dispatches through.
"""

from __future__ import annotations

from collections.abc import Callable

from shared.config import lvs_finish
from shared.config.context import Context, Handler, dispatch, require_block, set_str
from shared.config.host import Host
from shared.config.lvs_vs import parse_virtual_server
from shared.config.lvs_vsg import parse_group
from shared.config.model import Config
from shared.config.model_lvs import SslConfig
from shared.config.node import Node

RootHandler = Callable[[Context, Node, Config], None]

SSL_TABLE: dict[str, Handler] = {
    "password": set_str("password"),
    "ca": set_str("ca"),
    "certificate": set_str("certificate"),
    "key": set_str("key"),
}


def parse_ssl(ctx: Context, node: Node, config: Config) -> None:
    """The root ``SSL`` block; keepalived -t does not open the files, so neither do we."""
    if not require_block(ctx, node):
        return
    ssl = config.lvs.ssl or SslConfig()
    dispatch(ctx, node, SSL_TABLE, ssl)
    config.lvs.ssl = ssl


ROOT_HANDLERS: dict[str, RootHandler] = {
    "virtual_server": parse_virtual_server,
    "virtual_server_group": parse_group,
    "SSL": parse_ssl,
}


def finish(ctx: Context, config: Config, host: Host) -> None:
    """Cross-checks that need the whole file and the host (virtual_server_group names, checker targets)."""
    lvs_finish.finish(ctx, config, host)
