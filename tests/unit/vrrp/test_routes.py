"""virtual/static routes and rules → pyroute2 requests (services/vrrp/kernel/routes.py), without root.

Lines go through the real config parser first, so what is tested is what a
keepalived.conf line becomes on the wire, keyword by keyword.
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest

from services.vrrp.kernel.routes import (
    RTPROT_KEEPALIVED,
    describe_route,
    describe_rule,
    route_delete_request,
    route_devs,
    route_request,
    rule_request,
    unprogrammable,
    warn_unprogrammable,
)
from services.vrrp.kernel.static_config import StaticConfig
from shared.config.host import NoHost
from shared.config.load import load
from shared.config.model import Config
from shared.config.model_vrrp import Route, Rule

IDX = {"eth0": 2, "eth1": 3}


def parse(tmp_path: Path, routes: str = "", rules: str = "", static: str = "") -> Config:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(
        f"""
{static}
vrrp_instance VI_1 {{
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {{
        192.0.2.100
    }}
    virtual_routes {{
{routes}
    }}
    virtual_rules {{
{rules}
    }}
}}
"""
    )
    return load(conf, config_id="test", host=NoHost()).config


def route(tmp_path: Path, line: str) -> Route:
    routes = parse(tmp_path, routes=line).vrrp.instances["VI_1"].routes
    assert len(routes) == 1, line
    return routes[0]


def rule(tmp_path: Path, line: str) -> Rule:
    rules = parse(tmp_path, rules=line).vrrp.instances["VI_1"].rules
    assert len(rules) == 1, line
    return rules[0]


# --------------------------------------------------------------------------- routes


def test_plain_route_is_tagged_keepalived_in_main(tmp_path: Path) -> None:
    r = route(tmp_path, "10.60.0.0/16 via 192.0.2.1 dev eth0")
    assert route_request(r, IDX) == {
        "family": socket.AF_INET,
        "dst": "10.60.0.0/16",
        "table": 254,
        "proto": RTPROT_KEEPALIVED,
        "type": "unicast",
        "gateway": "192.0.2.1",
        "oif": 2,
    }
    assert route_devs(r) == ["eth0"]


def test_route_options(tmp_path: Path) -> None:
    r = route(
        tmp_path,
        "src 192.0.2.100 10.61.0.0/16 via 192.0.2.1 dev eth1 onlink table 100 metric 7 scope link"
        " protocol static tos 8 realms 2/3",
    )
    spec = route_request(r, IDX)
    assert spec["prefsrc"] == "192.0.2.100"
    assert (spec["table"], spec["priority"], spec["scope"], spec["proto"]) == (100, 7, 253, 4)
    assert (spec["oif"], spec["flags"], spec["tos"], spec["flow"]) == (3, 4, 8, (2 << 16) | 3)


def test_typed_and_default_routes(tmp_path: Path) -> None:
    spec = route_request(route(tmp_path, "blackhole 10.62.0.0/16 table 200"), IDX)
    assert (spec["type"], spec["dst"], spec["table"]) == ("blackhole", "10.62.0.0/16", 200)
    assert "oif" not in spec and "gateway" not in spec
    spec = route_request(route(tmp_path, "default via 192.0.2.1 dev eth0"), IDX)
    assert spec["dst"] == "0.0.0.0/0"
    spec = route_request(route(tmp_path, "prohibit 10.63.0.0/16"), IDX)
    assert spec["type"] == "prohibit"


def test_ipv6_route_with_source_prefix_and_pref(tmp_path: Path) -> None:
    r = route(tmp_path, "2001:db8:1::/48 from 2001:db8:2::/48 via 2001:db8::1 dev eth0 pref high metric 5")
    spec = route_request(r, IDX)
    assert spec["family"] == socket.AF_INET6
    assert (spec["dst"], spec["src"], spec["gateway"]) == (
        "2001:db8:1::/48",
        "2001:db8:2::/48",
        "2001:db8::1",
    )
    assert (spec["pref"], spec["priority"]) == (1, 5)


def test_multipath_nexthops(tmp_path: Path) -> None:
    r = route(
        tmp_path,
        "10.70.0.0/16 nexthop via 192.0.2.2 dev eth0 weight 3 nexthop via 192.0.2.3 dev eth1 onlink",
    )
    spec = route_request(r, IDX)
    assert spec["multipath"] == [
        {"hops": 2, "gateway": "192.0.2.2", "oif": 2},
        {"hops": 0, "gateway": "192.0.2.3", "oif": 3, "flags": 4},
    ]
    assert route_devs(r) == ["eth0", "eth1"]


def test_metrics_locks_and_rtt_units(tmp_path: Path) -> None:
    r = route(
        tmp_path,
        "10.80.0.0/16 dev eth0 mtu lock 1400 advmss 1360 rtt 10ms rttvar 5 congctl lock cubic"
        " initcwnd 10 features ecn",
    )
    metrics = route_request(r, IDX)["metrics"]
    assert metrics["RTAX_MTU"] == 1400
    assert metrics["RTAX_ADVMSS"] == 1360
    assert metrics["RTAX_RTT"] == 80  # 10 ms in the kernel's 1/8 ms, as ip route sends it
    assert metrics["RTAX_RTTVAR"] == 5  # no unit: raw
    assert metrics["RTAX_CC_ALGO"] == "cubic"
    assert metrics["RTAX_INITCWND"] == 10
    assert metrics["RTAX_FEATURES"] == 1
    assert metrics["RTAX_LOCK"] == (1 << 2) | (1 << 16)


def test_delete_matches_any_scope_and_skips_what_only_an_add_carries(tmp_path: Path) -> None:
    r = route(tmp_path, "10.60.0.0/16 via 192.0.2.1 dev eth0 src 192.0.2.100 mtu 1400")
    spec = route_delete_request(r, IDX)
    assert spec["scope"] == 255
    assert spec["proto"] == RTPROT_KEEPALIVED  # an operator's identical route with another proto stays
    assert "metrics" not in spec and "prefsrc" not in spec
    scoped = route(tmp_path, "10.60.0.0/16 dev eth0 scope link")
    assert route_delete_request(scoped, IDX)["scope"] == 253


def test_append_route_is_kept(tmp_path: Path) -> None:
    assert route(tmp_path, "10.60.0.0/16 via 192.0.2.1 dev eth0 append").append


# --------------------------------------------------------------------------- rules


def test_table_rule(tmp_path: Path) -> None:
    r = rule(tmp_path, "from 192.0.2.100 table 200 priority 2000")
    assert rule_request(r) == {
        "family": socket.AF_INET,
        "priority": 2000,
        "action": 1,
        "protocol": RTPROT_KEEPALIVED,
        "table": 200,
        "src": "192.0.2.100/32",
    }


def test_rule_selectors(tmp_path: Path) -> None:
    r = rule(
        tmp_path,
        "not from 10.0.0.0/8 to 10.1.0.0/16 fwmark 0x10/0xff iif eth0 oif eth1 tos 8 uidrange 10-20"
        " sport 1-1024 dport 80-80 ipproto tcp suppress_prefixlength 0 table 100 preference 10",
    )
    spec = rule_request(r)
    assert (spec["flags"], spec["src"], spec["dst"]) == (2, "10.0.0.0/8", "10.1.0.0/16")
    assert (spec["fwmark"], spec["fwmask"], spec["iifname"], spec["oifname"]) == (16, 255, "eth0", "eth1")
    assert (spec["uid_range"], spec["sport_range"], spec["dport_range"]) == ("10:20", "1:1024", "80:80")
    assert (spec["ip_proto"], spec["suppress_prefixlen"], spec["tos"]) == (6, 0, 8)


@pytest.mark.parametrize(
    ("line", "action", "extra"),
    [
        ("from all goto 200 preference 100", 2, {"goto": 200}),
        ("from all blackhole preference 101", 6, {}),
        ("from all unreachable preference 102", 7, {}),
        ("from all prohibit preference 103", 8, {}),
        ("from all nop preference 104", 3, {}),
        ("from all l3mdev preference 105", 1, {"l3mdev": 1}),
    ],
)
def test_rule_actions(tmp_path: Path, line: str, action: int, extra: dict[str, int]) -> None:
    spec = rule_request(rule(tmp_path, line))
    assert spec["action"] == action
    assert {k: spec[k] for k in extra} == extra
    assert "table" not in spec


def test_ipv6_rule_and_own_protocol(tmp_path: Path) -> None:
    spec = rule_request(rule(tmp_path, "from 2001:db8::/32 table 100 preference 5 protocol 42"))
    assert (spec["family"], spec["src"], spec["protocol"]) == (socket.AF_INET6, "2001:db8::/32", 42)


# --------------------------------------------------------------------------- what cannot be programmed


def test_unprogrammable_options_are_named_with_their_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    routes = (
        parse(
            tmp_path,
            routes="10.60.0.0/16 dev eth0 expires 10 realms inside\n10.61.0.0/16 dev eth0",
        )
        .vrrp.instances["VI_1"]
        .routes
    )
    assert len(routes) == 2
    assert len(unprogrammable(routes[0])) == 2
    assert unprogrammable(routes[1]) == []
    with caplog.at_level(logging.WARNING, logger="lifeline.vrrp"):
        assert warn_unprogrammable(routes) == 2
    lines = [r.getMessage() for r in caplog.records]
    assert any("keepalived.conf:" in m and "'expires'" in m for m in lines)
    assert any("realms 'inside'" in m for m in lines)
    assert "flow" not in route_request(routes[0], IDX)  # the rest of the line is still programmed


def test_static_blocks_parse_and_track_group_is_acted_on(tmp_path: Path) -> None:
    config = parse(
        tmp_path,
        static="""
track_group TG { group { VI_1 } }
static_routes {
    10.50.0.0/16 via 192.0.2.1 dev eth0 track_group TG
}
static_rules {
    from 10.0.0.0/8 table 100 preference 1000
}
""",
    )
    (r,) = config.vrrp.static_routes
    assert route_request(r, IDX)["proto"] == RTPROT_KEEPALIVED
    assert r.track_group == "TG" and unprogrammable(r) == []  # tracked (route_tracking.py), no warning
    assert StaticConfig.from_config(config).watch.faults() == {}
    (ru,) = config.vrrp.static_rules
    assert rule_request(ru)["table"] == 100


def test_descriptions_read_like_ip(tmp_path: Path) -> None:
    assert describe_route(route(tmp_path, "blackhole 10.62.0.0/16 table 200")) == (
        "blackhole 10.62.0.0/16 table 200"
    )
    assert describe_rule(rule(tmp_path, "from 192.0.2.100 table 200 priority 2000")) == (
        "preference 2000 from 192.0.2.100/32 table 200"
    )
