"""``virtual_server_group NAME { IP [PORT] | RANGE [PORT] | fwmark N [inet|inet6] ... }``.

A range is ``a.b.c.d-e`` (last octet, or last hex group for IPv6), ``A-B`` (two
full addresses) or a CIDR prefix.  keepalived drops a bad line and drops a group
left empty, reporting the latter at the group's closing brace.
"""

from __future__ import annotations

import ipaddress

from shared.addresses import IPAddress
from shared.config.context import Context
from shared.config.lvs_common import end_of, to_port, to_u32, where
from shared.config.model import Config
from shared.config.model_lvs import VirtualServerGroup, VsgEntry
from shared.config.node import Node
from shared.config.values import BadValue, to_ip


def to_range(word: str) -> tuple[IPAddress, IPAddress]:
    """First and last address of ``word``; a single address is a range of one."""
    if "/" in word:
        try:
            net = ipaddress.ip_network(word, strict=False)
        except ValueError:
            raise BadValue(f"an address, range or prefix, got '{word}'") from None
        return net.network_address, net.broadcast_address
    start_word, sep, end_word = word.partition("-")
    first = to_ip(start_word)
    if not sep:
        return first, first
    last = _range_end(first, start_word, end_word)
    if int(last) <= int(first):
        raise BadValue(f"a range whose end is greater than its start, got '{word}'")
    return first, last


def _range_end(first: IPAddress, start_word: str, end_word: str) -> IPAddress:
    """``-B`` is a full address, or just the last octet (IPv4) / last group (IPv6)."""
    try:
        last = ipaddress.ip_address(end_word)
    except ValueError:
        pass
    else:
        if last.version != first.version:
            raise BadValue(f"a range within one address family, got '{start_word}-{end_word}'")
        return last
    sep = "." if first.version == 4 else ":"
    head = start_word.rsplit(sep, 1)[0]
    return to_ip(f"{head}{sep}{end_word}")


def _entry(ctx: Context, node: Node, group: str) -> VsgEntry | None:
    if node.keyword == "fwmark":
        return _fwmark_entry(ctx, node, group)
    try:
        first, last = to_range(node.keyword)
        port = to_port(node.args[0]) if node.args else 0
    except BadValue as exc:
        ctx.error(node, f"invalid virtual_server_group entry '{' '.join(node.words[:2])}': expected {exc}")
        return None
    return VsgEntry(first=first, last=last, port=port, where=where(node))


def _fwmark_entry(ctx: Context, node: Node, group: str) -> VsgEntry | None:
    mark = ctx.value(node, to_u32)
    if mark is None:
        return None
    family = node.args[1] if len(node.args) > 1 else None
    if family is not None and family not in ("inet", "inet6"):
        ctx.error(node, f"({group}): fwmark {mark} family '{family}' unknown: expected inet or inet6")
        return None
    return VsgEntry(fwmark=mark, family=family, where=where(node))  # type: ignore[arg-type]


def parse_group(ctx: Context, node: Node, config: Config) -> None:
    if not node.args:
        ctx.error(node, "'virtual_server_group' needs a name")
        return
    if node.children is None:
        ctx.error(node, f"'{node.keyword}' expects a block: missing '{{'")
        return
    group = VirtualServerGroup(name=node.args[0], where=where(node), end_line=end_of(node).line)
    for child in node.children:
        entry = _entry(ctx, child, group.name)
        if entry is not None:
            group.entries.append(entry)
    if not group.entries:
        ctx.diagnostics.warning(end_of(node), f"virtual_server_group {group.name} has no entries - removing")
        return
    config.lvs.virtual_server_groups[group.name] = group
