"""From the lexer's tree to a ``Config``: root dispatch, then each domain's whole-file checks."""

from __future__ import annotations

from shared.config import parse_global, parse_lvs, parse_vrrp
from shared.config.context import Context
from shared.config.host import Host
from shared.config.model import Config
from shared.config.node import Node

ROOT_HANDLERS = {**parse_global.ROOT_HANDLERS, **parse_vrrp.ROOT_HANDLERS, **parse_lvs.ROOT_HANDLERS}


def build(ctx: Context, roots: list[Node], host: Host) -> Config:
    config = Config()
    for node in roots:
        handler = ROOT_HANDLERS.get(node.keyword)
        if handler is None:
            ctx.warning(node, f"unknown keyword '{node.keyword}' (ignored)")
            continue
        handler(ctx, node, config)
    parse_global.finish(ctx, config, host)
    parse_vrrp.finish(ctx, config, host)
    parse_lvs.finish(ctx, config, host)
    return config
