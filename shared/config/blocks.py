"""Every keyword the parser knows, block by block, read from the parser's own handler tables.

Why a walk and not a list: the keyword tables (``GLOBAL_DEFS_TABLE``,
``instance_keywords``, ``VS_TABLE``, the checker kinds...) *are* the grammar,
so the set of keywords is taken from them and can never drift from what the
parser accepts.  What this module adds is only the nesting: which keyword of
which block opens which keyword block (``vrrp_instance`` → ``authentication``,
``real_server`` → ``HTTP_GET`` → ``url``).  Blocks whose lines are data, not
keywords (``virtual_ipaddress``, ``group``, ``static_routes``...), are listed
as such, so a test can check the nesting against ``schema.BLOCK_KEYWORDS``
(keepalived's own view of which keywords take a block).

Block names are the keyword that opens the block, as in ``schema``; ``ROOT``
("") is the top level of the file.  ``ADDRESS_LINE`` is the options of an
address line (``virtual_ipaddress``, ``virtual_ipaddress_excluded``,
``static_ipaddress``): options, not keywords, but each one a service applies
or not, so they get rows too.  ``uses`` walks a parsed tree with these
blocks: the support registry (``shared.config.support``) reports every use of
a keyword lifeline does not act on.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from shared.config import parse
from shared.config.check_common import CONNECT_HANDLERS, KINDS
from shared.config.check_http import URL_TABLE
from shared.config.context import Context
from shared.config.iproute import ADDRESS_OPTIONS, LINE_OPTIONS, RulePreferences, parse_address
from shared.config.lvs_vs import RS_TABLE, VS_TABLE
from shared.config.node import Node
from shared.config.parse_global import GLOBAL_DEFS_TABLE
from shared.config.parse_lvs import SSL_TABLE
from shared.config.parse_vrrp import GARP_KEYWORDS, SYNC_KEYWORDS, TRACK_GROUP_KEYWORDS
from shared.config.schema import ROOT
from shared.config.vrrp_instance import AUTH_KEYWORDS, instance_keywords
from shared.config.vrrp_trackers import BFD_KEYWORDS, FILE_KEYWORDS, PROCESS_KEYWORDS, SCRIPT_KEYWORDS


@dataclass(frozen=True)
class Block:
    """One kind of block: its keywords (from the parser's table) and which of them open keyword blocks.

    ``nested`` maps a keyword to the name of the block it opens; ``data`` names
    the keywords whose block holds data lines (addresses, names), which have no
    keywords of their own.
    """

    name: str
    keywords: tuple[str, ...]
    nested: Mapping[str, str] = field(default_factory=dict)
    data: frozenset[str] = frozenset()


def _block(
    name: str, table: Mapping[str, object], nested: Mapping[str, str] | None = None, data: Iterable[str] = ()
) -> Block:
    return Block(name, tuple(table), dict(nested or {}), frozenset(data))


_TRACKER_LISTS = ("track_interface", "track_script", "track_process", "track_file", "track_bfd")

ADDRESS_LINE = "address line"
ADDRESS_BLOCKS: Mapping[tuple[str, str], bool] = {
    (ROOT, "static_ipaddress"): True,
    ("vrrp_instance", "virtual_ipaddress"): False,
    ("vrrp_instance", "virtual_ipaddress_excluded"): False,
}
"""The data blocks whose lines are addresses, and whether they are static (``track_group`` allowed)."""


def _blocks() -> dict[str, Block]:
    """The parser's tables, nested as keepalived nests them."""
    blocks = [
        _block(
            ROOT,
            parse.ROOT_HANDLERS,
            {
                **{name: name for name in ("global_defs", "vrrp_instance", "vrrp_sync_group")},
                **{name: name for name in ("vrrp_script", "vrrp_track_process", "bfd_instance")},
                **{name: name for name in ("virtual_server", "SSL", "garp_group", "track_group")},
                "track_file": "track_file",
                "vrrp_track_file": "track_file",
            },
            data=(
                "virtual_server_group",
                "static_ipaddress",
                "static_routes",
                "static_rules",
                "linkbeat_interfaces",
                "interface_up_down_delays",
            ),
        ),
        _block("global_defs", GLOBAL_DEFS_TABLE, data=("notification_email",)),
        _block(
            "vrrp_instance",
            instance_keywords(RulePreferences()),
            {"authentication": "authentication"},
            data=(
                *_TRACKER_LISTS,
                "virtual_ipaddress",
                "virtual_ipaddress_excluded",
                "virtual_routes",
                "virtual_rules",
                "unicast_peer",
            ),
        ),
        _block("authentication", AUTH_KEYWORDS),
        _block("vrrp_sync_group", SYNC_KEYWORDS, data=(*_TRACKER_LISTS, "group")),
        _block("vrrp_script", SCRIPT_KEYWORDS),
        _block("vrrp_track_process", PROCESS_KEYWORDS),
        _block("track_file", FILE_KEYWORDS),
        _block("bfd_instance", BFD_KEYWORDS),
        _block("track_group", TRACK_GROUP_KEYWORDS, data=("group",)),
        _block("garp_group", GARP_KEYWORDS, data=("interfaces",)),
        _block("virtual_server", VS_TABLE, {"real_server": "real_server"}),
        _block("real_server", RS_TABLE, {kind: kind for kind in KINDS}),
        _block("SSL", SSL_TABLE),
        _block("url", URL_TABLE),
        _block("host", CONNECT_HANDLERS),
    ]
    for kind, checker in KINDS.items():
        nested = {"url": "url"} if "url" in checker.table else {}
        nested |= {"host": "host"} if "host" in checker.table else {}
        blocks.append(_block(kind, checker.table, nested))
    blocks.append(Block(ADDRESS_LINE, (*ADDRESS_OPTIONS, *LINE_OPTIONS)))
    return {block.name: block for block in blocks}


BLOCKS: Mapping[str, Block] = _blocks()


@dataclass(frozen=True)
class Use:
    """One line of a file that uses a keyword (or an address option) the parser knows, and in which block."""

    block: str
    keyword: str
    node: Node


def uses(roots: Iterable[Node]) -> Iterator[Use]:
    """Every known keyword of a parsed tree, in file order; unknown keywords (already warned) are skipped."""
    yield from _walk(BLOCKS[ROOT], roots)


def _walk(block: Block, nodes: Iterable[Node]) -> Iterator[Use]:
    for node in nodes:
        if node.keyword not in block.keywords:
            continue
        yield Use(block.name, node.keyword, node)
        inner = block.nested.get(node.keyword)
        if inner is not None and node.children is not None:
            yield from _walk(BLOCKS[inner], node.children)
        static = ADDRESS_BLOCKS.get((block.name, node.keyword))
        if static is not None:
            yield from _address_options(node.children or (), static)


def _address_options(lines: Iterable[Node], static: bool) -> Iterator[Use]:
    """The options each address line uses, read by the parser's own ``parse_address`` (its verdict aside)."""
    for line in lines:
        seen: list[str] = []
        parse_address(Context(), line, static=static, seen=seen)
        yield from (Use(ADDRESS_LINE, option, line) for option in seen)
