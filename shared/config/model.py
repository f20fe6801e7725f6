"""The resolved configuration: one Struct per service slice.

Every service reads the whole file and takes its slice: vrrp reads ``vrrp``,
the checker reads ``vrrp`` trackers and ``lvs`` checks, lvs reads ``lvs``, the
notifier reads the notify and SMTP settings of all of them.
"""

from __future__ import annotations

import msgspec

from shared.config.model_global import GlobalDefs
from shared.config.model_lvs import LvsConfig
from shared.config.model_vrrp import VrrpConfig


class Config(msgspec.Struct, kw_only=True):
    global_defs: GlobalDefs = msgspec.field(default_factory=GlobalDefs)
    vrrp: VrrpConfig = msgspec.field(default_factory=VrrpConfig)
    lvs: LvsConfig = msgspec.field(default_factory=LvsConfig)
