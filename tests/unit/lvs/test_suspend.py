"""ha_suspend decisions: which virtual servers ignore health, from injected address facts."""

from __future__ import annotations

import socket

from services.lvs.core.desired import ServiceAttrs, ServiceKey, VirtualPlan
from services.lvs.core.suspend import SuspendChange, Suspension, watched_addresses

TCP = socket.IPPROTO_TCP


def vs(name: str, *addrs: str, ha_suspend: bool = True, fwmark: int = 0) -> VirtualPlan:
    keys = tuple(
        ServiceKey(socket.AF_INET6 if ":" in a else socket.AF_INET, TCP, a, 80, 0) for a in addrs
    ) or (ServiceKey(socket.AF_INET, 0, None, 0, fwmark),)
    return VirtualPlan(name, keys, ServiceAttrs(), {}, ha_suspend=ha_suspend)


def test_only_ha_suspend_virtual_servers_with_an_address_are_watched() -> None:
    plans = {
        "a": vs("a", "10.0.0.1"),
        "plain": vs("plain", "10.0.0.2", ha_suspend=False),
        "fw": vs("fw", fwmark=7),
    }
    s = Suspension(plans)
    assert set(s.watch) == {"a"}
    assert s.unsuspendable == ["fw"]
    assert watched_addresses(plans["plain"]) == frozenset()


def test_suspended_only_once_addresses_are_known() -> None:
    s = Suspension({"a": vs("a", "10.0.0.1")})
    assert not s.suspended("a"), "no snapshot yet: never ignore health on a guess"
    assert s.snapshot([(1, "127.0.0.1")]) == [SuspendChange("a", True)]
    assert s.address(3, "10.0.0.1", True) == [SuspendChange("a", False)]
    assert s.address(3, "10.0.0.1", True) == []
    assert s.address(3, "10.0.0.1", False) == [SuspendChange("a", True)]


def test_address_on_two_interfaces_stays_local_until_both_go() -> None:
    s = Suspension({"a": vs("a", "10.0.0.1")})
    s.snapshot([(2, "10.0.0.1"), (3, "10.0.0.1")])
    assert s.address(2, "10.0.0.1", False) == []
    assert not s.suspended("a")
    assert s.address(3, "10.0.0.1", False) == [SuspendChange("a", True)]


def test_group_is_active_while_any_address_is_local_and_ipv6_is_canonical() -> None:
    s = Suspension({"g": vs("g", "10.0.0.10", "2001:db8::10")})
    s.snapshot([])
    assert s.suspended("g")
    assert s.address(4, "2001:0db8:0:0::10", True) == [SuspendChange("g", False)]
    assert s.address(4, "10.0.0.10", True) == []
    assert s.address(4, "2001:db8::10", False) == []


def test_reload_keeps_local_addresses_and_reports_newly_suspended() -> None:
    s = Suspension({"a": vs("a", "10.0.0.1", ha_suspend=False)})
    s.snapshot([(2, "10.0.0.9")])
    assert s.replan({"a": vs("a", "10.0.0.1")}) == [SuspendChange("a", True)]
    assert s.replan({"a": vs("a", "10.0.0.9")}) == [SuspendChange("a", False)]


def test_netlink_messages_become_address_events() -> None:
    from services.lvs.kernel.addresses import AddressEvent, event_of

    new = {"event": "RTM_NEWADDR", "index": 2, "address": "10.0.0.2", "local": "10.0.0.1"}
    assert event_of(new) == AddressEvent(2, "10.0.0.1", True), "IFA_LOCAL is ours, IFA_ADDRESS a peer"
    assert event_of({"event": "RTM_DELADDR", "index": 2, "address": "2001:db8::1"}) == AddressEvent(
        2, "2001:db8::1", False
    )
    assert event_of({"event": "RTM_NEWLINK", "index": 2}) is None
