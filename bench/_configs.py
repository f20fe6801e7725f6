"""keepalived.conf texts for the benchmarks: one generator, so both implementations get the same file."""

from __future__ import annotations

from collections.abc import Callable


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
