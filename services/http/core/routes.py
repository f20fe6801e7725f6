"""Which handler a request line goes to: pure, so every path an operator may type is unit tested.

Why a table of its own and not a framework's router: six fixed paths and one
parameter (the instance name, percent-decoded, as keepalived allows names a
URL must escape).  Static files are a closed list, so a path can never reach
outside the package (no ``..``, no directory listing).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final
from urllib.parse import unquote

ASSETS: Final = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}
"""The live page's files (``services/http/static``), by path."""


class Kind(StrEnum):
    ASSET = "asset"
    STATUS = "status"
    HEALTH = "health"
    METRICS = "metrics"
    EVENTS = "events"
    NOT_FOUND = "not_found"
    NOT_ALLOWED = "not_allowed"


@dataclass(frozen=True)
class Route:
    """Where a request goes; ``instance``/``backup`` for health, ``asset`` for a page file."""

    kind: Kind
    instance: str = ""
    backup: bool = False
    asset: str = ""
    content_type: str = ""


def route(method: str, target: str) -> Route:
    """The route of ``method target`` (the query string is ignored: no endpoint takes one)."""
    if method not in ("GET", "HEAD"):
        return Route(Kind.NOT_ALLOWED)
    path = target.split("?", 1)[0].split("#", 1)[0]
    if path in ASSETS:
        name, ctype = ASSETS[path]
        return Route(Kind.ASSET, asset=name, content_type=ctype)
    fixed = {"/status": Kind.STATUS, "/metrics": Kind.METRICS, "/events": Kind.EVENTS}
    if path in fixed:
        return Route(fixed[path])
    parts = path.split("/")
    # "/health/VI_1" -> ["", "health", "VI_1"]; "/health/VI_1/backup" -> [..., "backup"]
    if len(parts) in (3, 4) and parts[1] == "health" and parts[2]:
        if len(parts) == 4 and parts[3] != "backup":
            return Route(Kind.NOT_FOUND)
        return Route(Kind.HEALTH, instance=unquote(parts[2]), backup=len(parts) == 4)
    return Route(Kind.NOT_FOUND)
