"""virtual_server, virtual_server_group, real_server and every checker, with keepalived's defaults."""

from __future__ import annotations

import msgspec


class LvsConfig(msgspec.Struct, kw_only=True):
    pass
