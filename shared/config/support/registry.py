"""The shape of a support row: how far lifeline acts on one keyword, whose it is, and what proves it.

A row is written next to the keyword it describes (``rows_*.py``); the
keywords themselves come from the parser (``shared.config.blocks``), so a row
can neither be forgotten nor outlive its keyword: ``tests/unit/config/
test_support.py`` fails on either, and on a *done* row whose test does not
exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    DONE = "done"
    """A service acts on it as keepalived does; ``test`` shows it."""
    PARTLY = "partly"
    """A service acts on it, with the difference ``text`` says."""
    NOT_SUPPORTED = "not supported"
    """Parsed and checked, then no service acts on it; ``text`` says why and what happens instead."""


class Area(StrEnum):
    """Whose keyword it is: the service that acts on it (or would) logs its compat lines.

    Each service claims its areas in its ``ServiceSpec`` (``shared.runner``);
    every area belongs to exactly one service, so every compat line is logged
    once, by the service concerned.
    """

    VRRP = "vrrp"
    """Instances, sync groups, static addresses/routes/rules, the vrrp globals."""
    BFD = "bfd"
    """``bfd_instance`` sessions: the bfd service."""
    NODE = "node"
    """The keepalived process as a whole (instance name, namespaces, SNMP, reload files...)."""
    TRACKERS = "trackers"
    """``vrrp_script``, ``vrrp_track_process``, ``track_file``: run by the checker."""
    CHECKS = "checks"
    """Real-server checkers and the ``SSL`` block: the checker."""
    LVS = "lvs"
    """``virtual_server`` and its ``real_server`` entries, the IPVS globals."""
    NOTIFY = "notifier"
    """Notify scripts, mails and FIFOs: the notifier."""


LOGGED_BY: Mapping[Area, str] = {
    Area.VRRP: "vrrp",
    Area.BFD: "bfd",
    Area.NODE: "vrrp",
    Area.TRACKERS: "checker",
    Area.CHECKS: "checker",
    Area.LVS: "lvs",
    Area.NOTIFY: "notifier",
}
"""The service that claims each area (its ``ServiceSpec.areas``); the generated doc prints it."""


@dataclass(frozen=True)
class Support:
    """How lifeline treats one keyword in one block.

    ``text`` is, for *done*, what acts on it; for *partly*, what differs from
    keepalived; for *not supported*, why and what happens instead.  The last
    two are printed after "KEYWORD is ... supported by lifeline: " at every use.
    ``test`` is a pytest node id (``tests/...py::test_name``) that fails if the
    behaviour goes away: required for *done*, welcome for *partly*.
    """

    status: Status
    area: Area
    text: str
    test: str | None = None

    def message(self, keyword: str) -> str:
        """The compat line for a use of ``keyword`` (never called for a *done* row)."""
        how = "partly supported" if self.status is Status.PARTLY else "not supported"
        return f"{keyword} is {how} by lifeline: {self.text}"


Rows = Mapping[str, Support]
"""One block's rows: keyword → support."""


def done(area: Area, text: str, test: str) -> Support:
    return Support(Status.DONE, area, text, test)


def partly(area: Area, text: str, test: str | None = None) -> Support:
    return Support(Status.PARTLY, area, text, test)


def unsupported(area: Area, text: str) -> Support:
    return Support(Status.NOT_SUPPORTED, area, text)
