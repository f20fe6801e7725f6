"""keepalived.conf texts for the benchmarks: one generator, so both implementations get the same file."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass


def one_instance(name: str, priority: int, vips: Sequence[str], *, version: int, advert_int: str) -> str:
    """VRID 51 on eth0 with ``vips`` (/32 each): the same file for both implementations but the priority."""
    lines = "\n".join(f"        {v}/32" for v in vips)
    return f"""\
global_defs {{
    router_id {name}
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority {priority}
    version {version}
    advert_int {advert_int}
    virtual_ipaddress {{
{lines}
    }}
}}
"""


def many_instances(
    router_id: str,
    priority: int,
    count: int,
    *,
    version: int,
    interval: float,
    vip: Callable[[int], str],
) -> str:
    """``count`` instances on eth0, VRIDs 1..count, one /32 VIP each (``vip(vrid)``).

    One VIP per instance keeps the per-instance work identical (one address,
    one GARP burst) so the numbers scale with the instance count alone.
    """
    out = ["global_defs {", f"    router_id {router_id}", "}"]
    for vrid in range(1, count + 1):
        out += [
            f"vrrp_instance VI_{vrid} {{",
            "    state BACKUP",
            "    interface eth0",
            f"    virtual_router_id {vrid}",
            f"    priority {priority}",
            f"    version {version}",
            f"    advert_int {interval:g}",
            "    virtual_ipaddress {",
            f"        {vip(vrid)}/32",
            "    }",
            "}",
        ]
    return "\n".join(out) + "\n"


@dataclass(frozen=True)
class Slot:
    """Where one instance lives: interface, VRID and multicast group (None: 224.0.0.18).

    A VRID is unique per (interface, family, group) only
    (docs/keepalived.md#receive-sockets-and-vrids), so more than 255 instances on one
    interface need a second group.
    """

    interface: str
    vrid: int
    group: str | None = None

    @property
    def name(self) -> str:
        group = "" if self.group is None else "_" + self.group.replace(".", "_")
        return f"VI_{self.interface}{group}_{self.vrid}"


def slotted_instances(
    router_id: str,
    priority: int,
    slots: Sequence[Slot],
    *,
    version: int,
    interval: float,
    vip: Callable[[Slot], str],
) -> str:
    """One instance per slot (named ``Slot.name``), one /32 VIP each, as in :func:`many_instances`."""
    out = ["global_defs {", f"    router_id {router_id}", "}"]
    for slot in slots:
        group = [] if slot.group is None else [f"    mcast_dst_ip {slot.group}"]
        out += [
            f"vrrp_instance {slot.name} {{",
            "    state BACKUP",
            f"    interface {slot.interface}",
            *group,
            f"    virtual_router_id {slot.vrid}",
            f"    priority {priority}",
            f"    version {version}",
            f"    advert_int {interval:g}",
            "    virtual_ipaddress {",
            f"        {vip(slot)}/32",
            "    }",
            "}",
        ]
    return "\n".join(out) + "\n"
