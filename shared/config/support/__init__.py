"""How far lifeline acts on each keyword keepalived.conf can hold: the support registry.

The keywords come from the parser (``shared.config.blocks``); the rows, one
per keyword and block, live in ``rows_global``, ``rows_vrrp`` and
``rows_lvs``.  From them come the compat lines ``config check`` and the
services print for every use of a keyword that is not *done*
(``compat``), and ``docs/compatibility.md`` (``python -m
shared.config.support --markdown``).
"""

from shared.config.support.compat import compat_diagnostics, in_areas
from shared.config.support.registry import LOGGED_BY, Area, Status, Support
from shared.config.support.table import SUPPORT, row

__all__ = ["LOGGED_BY", "SUPPORT", "Area", "Status", "Support", "compat_diagnostics", "in_areas", "row"]
