"""The bus names of a parsed ``virtual_server`` and its ``real_server``: one source for every service.

Why one place: the checker publishes real-server health under these names, lvs
keys its pools by them, and the notifier finds a server's scripts and mail rule
by them, so all three must build the same string from the same block.  Above
all they must agree on a virtual server without ``protocol``: keepalived 2.2.7
makes it UDP, with a warning (docs/keepalived.md#ipvs).  The loader resolves it
so (``lvs_finish``), but a model built without the loader (tests, tools) comes
here unresolved, and then the default below applies.  The strings themselves
are the bus contract's (``shared.events``, docs/bus.md).
"""

from __future__ import annotations

from shared.config.model_lvs import DEFAULT_PROTOCOL, Protocol, RealServer, VirtualServer
from shared.events import (
    fwmark_virtual_server_key,
    group_virtual_server_key,
    real_server_key,
    virtual_server_key,
)


def protocol_of(vs: VirtualServer) -> Protocol:
    """The service's protocol: as configured, else keepalived's default (UDP)."""
    return vs.protocol or DEFAULT_PROTOCOL


def vs_key(vs: VirtualServer) -> str:
    """``172.16.0.100:80/tcp``, ``fwmark:7`` (``fwmark:7/inet6``) or ``group:NAME``."""
    if vs.fwmark is not None:
        return fwmark_virtual_server_key(vs.fwmark, vs.ip_family or "inet")
    if vs.group is not None:
        return group_virtual_server_key(vs.group)
    assert vs.address is not None, "a virtual_server is named by an address, a fwmark or a group"
    return virtual_server_key(str(vs.address), vs.port, protocol_of(vs))


def rs_key(vs: VirtualServer, rs: RealServer) -> str:
    """``192.168.0.10:80``: a real server without a port of its own takes the virtual server's."""
    return real_server_key(str(rs.address), rs.port if rs.port is not None else vs.port)
