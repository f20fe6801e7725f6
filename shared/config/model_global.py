"""global_defs and the root-level globals, with keepalived's defaults."""

from __future__ import annotations

import msgspec


class GlobalDefs(msgspec.Struct, kw_only=True):
    router_id: str | None = None
