"""Route and static-item tracking as keepalived 2.2.7 does it (observed in a namespace), no root.

``core/static_tracking.py`` decides what to restore and which track groups'
instances are in FAULT; the machine leaves MASTER when a tracked virtual route
is deleted and stays in FAULT while its track group has a lost static item;
tracked virtual routes' interfaces become unweighted interface trackers.
"""

from __future__ import annotations

from ipaddress import IPv4Address, ip_interface, ip_network

from services.vrrp.core.machine import VrrpMachine
from services.vrrp.core.machine_events import (
    SendAdvert,
    Start,
    StateChanged,
    StaticLost,
    Tick,
    VirtualRouteLost,
)
from services.vrrp.core.machine_types import InstanceParams, State, TrackerSpec
from services.vrrp.core.params import tracker_specs
from services.vrrp.core.static_tracking import StaticItem, StaticWatch
from services.vrrp.kernel.route_watch import (
    address_ident,
    is_deletion,
    message_ident,
    route_ident,
    rule_ident,
    tracked_items,
)
from shared.config.model_vrrp import Nexthop, Route, Rule, VirtualAddress, VrrpConfig, VrrpInstance

OWN = IPv4Address("10.0.0.1")


def watch() -> StaticWatch:
    items = [
        StaticItem(key="route 10.99.0.0/16", devs=("eth1",), group="TG"),
        StaticItem(key="address 10.9.0.1/24", devs=("d1",), group="TG"),
        StaticItem(key="route 10.95.0.0/16", devs=("eth1",)),
        StaticItem(key="rule 3000", group="OTHER"),
    ]
    return StaticWatch(items, {"TG": ["VI_1", "VI_2"], "OTHER": ["VI_3"]})


def test_a_deleted_static_item_is_restored_and_faults_nobody_once_back() -> None:
    w = watch()
    assert w.deleted("route 10.95.0.0/16") == ["route 10.95.0.0/16"]  # untracked: restored all the same
    assert w.deleted("route 10.99.0.0/16") == ["route 10.99.0.0/16"]
    assert w.faults() == {"VI_1": "route 10.99.0.0/16", "VI_2": "route 10.99.0.0/16"}
    w.restored("route 10.99.0.0/16", ok=True)
    w.restored("route 10.95.0.0/16", ok=True)
    assert w.faults() == {} and not w.lost
    assert w.deleted("not ours") == []


def test_a_refused_restoration_holds_the_track_group_in_fault() -> None:
    w = watch()
    w.deleted("rule 3000")
    w.restored("rule 3000", ok=False)
    assert w.faults() == {"VI_3": "rule 3000"}
    w.restored("rule 3000", ok=True)
    assert w.faults() == {}


def test_an_interface_down_loses_its_items_until_it_comes_up() -> None:
    w = watch()
    assert w.link("eth1", up=False) == []
    assert w.faults() == {"VI_1": "route 10.99.0.0/16", "VI_2": "route 10.99.0.0/16"}
    assert w.deleted("route 10.99.0.0/16") == []  # the kernel flushing it: nothing to do while down
    assert w.link("eth1", up=True) == ["route 10.99.0.0/16", "route 10.95.0.0/16"]
    assert w.faults()  # still lost until the shell says they are back
    for key in ("route 10.99.0.0/16", "route 10.95.0.0/16"):
        w.restored(key, ok=True)
    assert w.faults() == {}
    assert w.interfaces() == {"eth1", "d1"}


def machine() -> VrrpMachine:
    m = VrrpMachine(InstanceParams(name="VI_1", vrid=1, address=OWN, priority=100))
    m.handle(0.0, Start())
    m.handle(5.0, Tick())
    assert m.state is State.MASTER
    return m


def test_a_lost_static_item_of_the_track_group_faults_the_instance_until_restored() -> None:
    m = machine()
    out = m.handle(6.0, StaticLost(item="route 10.99.0.0/16"))
    assert SendAdvert(0) in out and m.state is State.FAULT
    assert m.own_fault_cause() == "static_lost:route 10.99.0.0/16"
    m.handle(7.0, StaticLost(item=None))
    assert m.state is State.BACKUP


def test_a_deleted_tracked_virtual_route_makes_a_master_step_down_and_compete_again() -> None:
    m = machine()
    out = m.handle(6.0, VirtualRouteLost(item="route 10.98.0.0/16"))
    assert SendAdvert(0) in out and m.state is State.BACKUP
    change = [a for a in out if isinstance(a, StateChanged)]
    assert change[0].reason == "virtual_route_deleted:route 10.98.0.0/16"
    m.handle(20.0, Tick())  # nobody else: its down timer makes it MASTER again
    assert m.state is State.MASTER
    # a BACKUP has no virtual routes to lose: nothing happens
    m2 = VrrpMachine(InstanceParams(name="VI_2", vrid=2, address=OWN, priority=100))
    m2.handle(0.0, Start())
    assert m2.handle(0.1, VirtualRouteLost(item="x")) == [] and m2.state is State.BACKUP


def test_tracked_virtual_routes_track_their_interfaces_no_track_ones_do_not() -> None:
    inst = VrrpInstance(
        name="VI_1",
        interface="eth0",
        vrid=51,
        family=4,
        vips=[VirtualAddress(address=ip_interface("192.0.2.100/32"))],
        routes=[
            Route(destination=ip_network("10.96.0.0/16"), via=IPv4Address("10.2.0.254"), dev="eth1"),
            Route(destination=ip_network("10.97.0.0/16"), dev="eth2", no_track=True),
            Route(
                destination=ip_network("10.93.0.0/16"),
                nexthops=[Nexthop(via=IPv4Address("10.3.0.1"), dev="eth3"), Nexthop(dev="eth1")],
            ),
        ],
    )
    specs = tracker_specs(inst, VrrpConfig(instances={"VI_1": inst}))
    assert specs == (
        TrackerSpec(name="eth1", kind="interface", weight=0),
        TrackerSpec(name="eth3", kind="interface", weight=0),
    )


class Msg(dict[str, object]):
    """A netlink message as pyroute2 hands it over: header fields by key, attributes by ``get``."""

    def __init__(self, attrs: dict[str, object], **fields: object) -> None:
        super().__init__(fields)
        self.attrs = attrs

    def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
        return self.attrs.get(key, super().get(key, default))


def test_netlink_deletions_and_configured_items_share_one_identity() -> None:
    route = Route(destination=ip_network("198.19.0.0/16"), via=IPv4Address("10.77.0.254"), dev="eth1")
    deleted = Msg({"RTA_DST": "198.19.0.0", "RTA_TABLE": 254}, event="RTM_DELROUTE", family=2, dst_len=16)
    deleted.update(table=254, proto=18)
    assert is_deletion(deleted) and message_ident(deleted) == route_ident(route)
    other_proto = Msg({"RTA_DST": "198.19.0.0", "RTA_TABLE": 254}, event="RTM_DELROUTE", family=2, dst_len=16)
    other_proto.update(table=254, proto=4)  # an operator's own route of the same prefix is not ours
    assert message_ident(other_proto) != route_ident(route)
    in_300 = Route(destination=ip_network("0.0.0.0/0"), table=300)
    default = Msg({"RTA_TABLE": 300}, event="RTM_DELROUTE", family=2, dst_len=0, table=252, proto=18)
    assert message_ident(default) == route_ident(in_300)
    rule = Rule(preference=3000, table=300)
    assert message_ident(Msg({"FRA_PRIORITY": 3000}, event="RTM_DELRULE", family=2)) == rule_ident(rule)
    va = VirtualAddress(address=ip_interface("172.31.9.1/24"), dev="eth1")
    addr = Msg({"IFA_LOCAL": "172.31.9.1"}, event="RTM_DELADDR", family=2, prefixlen=24)
    assert message_ident(addr) == address_ident(va)
    assert not is_deletion(Msg({}, event="RTM_NEWROUTE", family=2))


def test_no_track_virtual_routes_and_rules_are_not_tracked() -> None:
    tracked = Route(destination=ip_network("198.51.100.0/24"), dev="eth0")
    loose = Route(destination=ip_network("198.18.0.0/15"), type="blackhole", no_track=True)
    rules = [Rule(preference=2000, table=100), Rule(preference=2001, table=100, no_track=True)]
    assert set(tracked_items([tracked, loose], rules)) == {route_ident(tracked), rule_ident(rules[0])}
