"""Static items on reload (services/vrrp/kernel/static_config.py): what a new config drops, no root."""

from __future__ import annotations

from ipaddress import ip_interface, ip_network

from services.vrrp.kernel.static_config import StaticConfig, _missing_from
from shared.config.model_vrrp import Origin, Route, Rule, VirtualAddress


def test_a_moved_line_is_no_change_and_a_dropped_one_is_removed() -> None:
    keep = Route(destination=ip_network("10.50.0.0/16"), dev="eth0", origin=Origin("a.conf", 3))
    moved = Route(destination=ip_network("10.50.0.0/16"), dev="eth0", origin=Origin("a.conf", 9))
    dropped = Route(destination=ip_network("10.51.0.0/16"), dev="eth0", origin=Origin("a.conf", 4))
    changed = Route(destination=ip_network("10.51.0.0/16"), dev="eth0", metric=5)
    assert _missing_from([keep, dropped], [moved, changed]) == [dropped]
    rules = [Rule(preference=10, table=100), Rule(preference=11, table=100)]
    assert _missing_from(rules, rules[1:]) == rules[:1]


def test_emptiness_and_status() -> None:
    empty = StaticConfig((), (), (), default_interface="eth0")
    assert not empty
    one = StaticConfig(
        [VirtualAddress(address=ip_interface("192.0.2.1/24"))], (), (), default_interface="eth0"
    )
    assert one
    status = one.status()
    assert status["addresses"] == {
        "count": 1,
        "added": 0,
        "already_present": 0,
        "removed": 0,
        "already_gone": 0,
        "errors": 0,
    }
    assert (status["routes"], status["rules"]) == (0, 0)
