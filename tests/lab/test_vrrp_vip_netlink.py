"""The takeover path's VIP socket against the real kernel, in a lab namespace.

Every field of a ``virtual_ipaddress`` line must reach the kernel exactly as
``ip addr`` (and pyroute2, which the rest of the service uses) would put it,
batches must report per address, and the idempotence rules must hold.
"""

from __future__ import annotations

import errno
from ipaddress import IPv4Address, ip_interface

import pytest

from services.vrrp.core.params import vip_of
from services.vrrp.kernel.addresses import Vip
from services.vrrp.kernel.vip_netlink import VipSocket
from shared.config.model_vrrp import VirtualAddress
from shared.lab.netns import in_namespace
from shared.lab.segment import Host

pytestmark = [pytest.mark.root, pytest.mark.timeout(60)]

VIPS = [
    Vip(
        address=ip_interface("192.0.2.100/24"),
        brd=IPv4Address("192.0.2.255"),
        label="eth0:vip",
        scope="global",
    ),
    Vip(address=ip_interface("192.0.2.101"), scope="host"),
    Vip(address=ip_interface("2001:db8::100/64")),
    Vip(address=ip_interface("fe80::100"), scope="link"),
    Vip(address=ip_interface("2001:db8::101"), preferred_lft=0),  # keepalived's deprecated /128
]


def find(host: Host, address: str) -> dict[str, object]:
    entry = next((e for e in host.addr_info() if e.get("local") == address), None)
    assert entry is not None, f"{address} is not on {host.name}"
    return entry


def assert_every_field_applied(host: Host) -> None:
    """What :data:`VIPS` must look like in ``ip -j addr``: prefix, brd, label, scope, nodad, lifetime."""
    v4 = find(host, "192.0.2.100")
    assert (v4["prefixlen"], v4["broadcast"], v4["label"], v4["scope"]) == (
        24,
        "192.0.2.255",
        "eth0:vip",
        "global",
    )
    host_scoped = find(host, "192.0.2.101")
    assert (host_scoped["prefixlen"], host_scoped["scope"]) == (32, "host")
    v6 = find(host, "2001:db8::100")
    assert v6["prefixlen"] == 64 and v6.get("nodad") is True and not v6.get("tentative")
    ll = find(host, "fe80::100")
    assert (ll["prefixlen"], ll["scope"]) == (128, "link")
    assert find(host, "2001:db8::101")["preferred_life_time"] == 0


def test_batch_add_carries_every_field_and_is_idempotent(pair: list[Host]) -> None:
    a, _ = pair

    def add_twice() -> tuple[list[Vip], list[Vip]]:
        vs = VipSocket()
        try:
            return vs.add(VIPS, default_dev="eth0"), vs.add(VIPS, default_dev="eth0")
        finally:
            vs.close()

    first, second = in_namespace(a.ns, add_twice)
    assert (first, second) == (VIPS, [])
    assert_every_field_applied(a)


def test_remove_reports_what_was_there_and_ignores_missing_interfaces(pair: list[Host]) -> None:
    a, _ = pair
    a.ip("addr", "add", "192.0.2.100/32", "dev", "eth0")  # e.g. left by a crashed run
    ours = [Vip(address=ip_interface("192.0.2.100")), Vip(address=ip_interface("192.0.2.200"))]

    def remove() -> tuple[list[Vip], list[Vip], list[Vip]]:
        vs = VipSocket()
        try:
            gone = vs.remove(ours, default_dev="eth0")
            again = vs.remove(ours, default_dev="eth0")
            elsewhere = vs.remove(ours, default_dev="nosuchdev")
            return gone, again, elsewhere
        finally:
            vs.close()

    assert in_namespace(a.ns, remove) == (ours[:1], [], [])
    assert a.addresses() == {str(a.ipv4), str(a.link_local)}


def test_a_refused_address_is_an_error_naming_it_after_the_rest_applied(pair: list[Host]) -> None:
    a, _ = pair
    good = Vip(address=ip_interface("192.0.2.100"))
    bad = Vip(address=ip_interface("192.0.2.101"), label="eth0:" + "x" * 20)  # longer than IFNAMSIZ

    def add() -> OSError:
        vs = VipSocket()
        try:
            with pytest.raises(OSError) as caught:
                vs.add([good, bad], default_dev="eth0")
            return caught.value
        finally:
            vs.close()

    error = in_namespace(a.ns, add)
    assert error.errno == errno.ERANGE and "192.0.2.101" in str(error)
    find(a, "192.0.2.100")
    with pytest.raises(OSError, match="no interface 'nosuchdev'"):
        in_namespace(a.ns, lambda: VipSocket().add([good], default_dev="nosuchdev"))


FLAGGED = [
    VirtualAddress(address=ip_interface("192.0.2.110"), peer=IPv4Address("192.0.2.111")),
    VirtualAddress(address=ip_interface("2001:db8::110/64"), home=True, mngtmpaddr=True, noprefixroute=True),
    VirtualAddress(address=ip_interface("198.51.100.112/24"), noprefixroute=True),
    VirtualAddress(address=ip_interface("239.1.2.3/32"), autojoin=True),  # the kernel wants multicast here
]


def test_peer_and_flag_options_reach_the_kernel_and_come_off_again(pair: list[Host]) -> None:
    """``peer``, ``home``, ``mngtmpaddr``, ``noprefixroute``, ``autojoin`` as ``ip -j addr`` shows them."""
    a, _ = pair
    vips = [vip_of(va) for va in FLAGGED]

    def add() -> list[Vip]:
        vs = VipSocket()
        try:
            return vs.add(vips, default_dev="eth0")
        finally:
            vs.close()

    assert in_namespace(a.ns, add) == vips
    p2p = find(a, "192.0.2.110")
    assert (p2p.get("address"), p2p["prefixlen"]) == ("192.0.2.111", 32)
    v6 = find(a, "2001:db8::110")
    assert (v6.get("home"), v6.get("mngtmpaddr"), v6.get("noprefixroute")) == (True, True, True)
    assert find(a, "198.51.100.112").get("noprefixroute") is True
    assert "198.51.100" not in a.ip("route", "show", "dev", "eth0")  # no prefix route was made
    assert find(a, "239.1.2.3").get("autojoin") is True

    def remove() -> list[Vip]:
        vs = VipSocket()
        try:
            return vs.remove(vips, default_dev="eth0")
        finally:
            vs.close()

    assert in_namespace(a.ns, remove) == vips
    assert a.addresses() == {str(a.ipv4), str(a.link_local)}
