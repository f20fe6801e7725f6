"""Which keywords open a block, in which block: keepalived's view of the file's structure.

keepalived's parser is driven by keyword tables, not by braces: a ``{`` after a
keyword that takes no block is "Unexpected '{' - ignoring", and the ``}`` that
follows then closes the *enclosing* block; a block keyword not followed by ``{``
is "Missing '{'" and the lines after it belong to the enclosing block.  The tree
builder uses this table so that a broken file is read (and reported) exactly as
keepalived reads it.  The sets were probed against keepalived 2.2.7's ``-t`` for
every keyword our parsers know, in every block that has sub-blocks.
"""

from __future__ import annotations

from collections.abc import Callable

BlockRule = Callable[[str, str], bool]

ROOT = ""

_TRACKERS = frozenset({"track_interface", "track_script", "track_process", "track_file", "track_bfd"})
_CHECKERS = frozenset(
    {
        "TCP_CHECK",
        "HTTP_GET",
        "SSL_GET",
        "SMTP_CHECK",
        "DNS_CHECK",
        "UDP_CHECK",
        "PING_CHECK",
        "MISC_CHECK",
        "FILE_CHECK",
        "BFD_CHECK",
    }
)

BLOCK_KEYWORDS: dict[str, frozenset[str]] = {
    ROOT: frozenset(
        {
            "global_defs",
            "vrrp_instance",
            "vrrp_script",
            "vrrp_sync_group",
            "vrrp_track_process",
            "track_file",
            "vrrp_track_file",
            "virtual_server",
            "virtual_server_group",
            "static_ipaddress",
            "static_routes",
            "static_rules",
            "garp_group",
            "linkbeat_interfaces",
            "interface_up_down_delays",
            "track_group",
            "bfd_instance",
            "SSL",
        }
    ),
    "global_defs": frozenset({"notification_email"}),
    "vrrp_instance": _TRACKERS
    | {
        "virtual_ipaddress",
        "virtual_ipaddress_excluded",
        "virtual_routes",
        "virtual_rules",
        "unicast_peer",
        "authentication",
    },
    "vrrp_sync_group": _TRACKERS | {"group"},
    "virtual_server": frozenset({"real_server"}),
    "real_server": _CHECKERS,
    "HTTP_GET": frozenset({"url"}),
    "SSL_GET": frozenset({"url"}),
    "SMTP_CHECK": frozenset({"host"}),
    "garp_group": frozenset({"interfaces"}),
    "track_group": frozenset({"group"}),
}


def opens_block(parent: str, keyword: str) -> bool:
    """True if ``keyword`` inside a block owned by ``parent`` (ROOT for the file) takes a ``{ }`` block."""
    return keyword in BLOCK_KEYWORDS.get(parent, frozenset())
