"""Everything the vrrp service (and the checker's trackers) read, with keepalived's defaults."""

from __future__ import annotations

import msgspec


class VrrpConfig(msgspec.Struct, kw_only=True):
    pass
