"""Every block's rows in one map, keyed like ``shared.config.blocks.BLOCKS`` (block name → keyword → row)."""

from __future__ import annotations

from collections.abc import Mapping

from shared.config.blocks import ADDRESS_LINE
from shared.config.schema import ROOT
from shared.config.support import rows_global, rows_lvs, rows_vrrp
from shared.config.support.registry import Rows, Support

SUPPORT: Mapping[str, Rows] = {
    ROOT: rows_global.ROOT,
    "global_defs": rows_global.GLOBAL_DEFS,
    "vrrp_instance": rows_vrrp.VRRP_INSTANCE,
    "authentication": rows_vrrp.AUTHENTICATION,
    "vrrp_sync_group": rows_vrrp.VRRP_SYNC_GROUP,
    "vrrp_script": rows_vrrp.VRRP_SCRIPT,
    "vrrp_track_process": rows_vrrp.VRRP_TRACK_PROCESS,
    "track_file": rows_vrrp.TRACK_FILE,
    "bfd_instance": rows_vrrp.BFD_INSTANCE,
    "track_group": rows_vrrp.TRACK_GROUP,
    "garp_group": rows_vrrp.GARP_GROUP,
    "virtual_server": rows_lvs.VIRTUAL_SERVER,
    "real_server": rows_lvs.REAL_SERVER,
    "SSL": rows_lvs.SSL,
    "url": rows_lvs.URL,
    "host": rows_lvs.CONNECTION,
    **rows_lvs.CHECKERS,
    ADDRESS_LINE: rows_vrrp.ADDRESS_LINE,
}


def row(block: str, keyword: str) -> Support | None:
    """The row for ``keyword`` in ``block``; None only if the registry lags the parser (a test fails then)."""
    return SUPPORT.get(block, {}).get(keyword)
