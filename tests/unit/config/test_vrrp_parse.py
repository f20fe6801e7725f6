"""vrrp blocks: config snippet -> expected diagnostic lines, checked against keepalived 2.2.7 by hand.

Each case's expected lines are where ``keepalived -t`` reported a problem for
the same text (in a namespace with only lo and eth0); empty means keepalived
accepted it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.config.context import Context
from shared.config.host import FakeHost
from shared.config.lexer import read_tree
from shared.config.model import Config
from shared.config.parse import build


def load_text(tmp_path: Path, text: str) -> tuple[Config, list[int]]:
    path = tmp_path / "k.conf"
    path.write_text(text)
    ctx = Context(config_id="")
    config = build(ctx, read_tree(path, ctx), FakeHost(interfaces={"lo", "eth0"}))
    return config, sorted({d.line for d in ctx.diagnostics})


def instance(body: str, vips: str = "10.0.0.1/24", name: str = "VI_1", vrid: int = 5) -> str:
    return (
        f"vrrp_instance {name} {{\n    interface eth0\n    virtual_router_id {vrid}\n{body}"
        f"    virtual_ipaddress {{\n        {vips}\n    }}\n}}\n"
    )


CASES = [
    ("minimal", instance(""), []),
    ("bad priority", instance("    priority 0\n"), [4]),
    (
        "auth_pass truncated",
        instance("    authentication {\n        auth_type PASS\n        auth_pass 123456789\n    }\n"),
        [6],
    ),
    ("unknown keyword", instance("    bogus_kw\n"), [4]),
    (
        "missing interface",
        "vrrp_instance A {\n    virtual_router_id 1\n    virtual_ipaddress {\n        10.0.0.1\n    }\n}\n",
        [1],
    ),
    ("interface not on host", instance("").replace("eth0", "eth1"), [2]),
    ("vip dev not on host", instance("", vips="10.0.0.1/24 dev eth7"), [5]),
    ("bad peer with prefix", instance("", vips="10.0.0.3 peer 10.0.0.4/32"), [5]),
    ("bad scope", instance("", vips="10.0.0.6/24 scope bogus"), [5]),
    (
        "vip options accepted",
        instance("", vips="10.0.0.1/24 brd + dev eth0 scope link label eth0:1 no_track home -nodad"),
        [],
    ),
    ("mixed families", instance("", vips="10.0.0.1/24\n        fe80::1/64"), [6]),
    ("ipv6 instance", instance("    advert_int 0.5\n", vips="fe80::1/64"), []),
    ("route without dev", instance("    virtual_routes {\n        10.2.0.0/16 via 10.0.0.254\n    }\n"), [5]),
    (
        "route gw deprecated",
        instance("    virtual_routes {\n        0.0.0.0/0 gw 10.0.0.1 dev eth0 table 100\n    }\n"),
        [5],
    ),
    (
        "route ok",
        instance(
            "    virtual_routes {\n        10.1.0.0/16 via 10.0.0.254 dev eth0 metric 5 table main\n    }\n"
        ),
        [],
    ),
    (
        "rule without preference",
        instance("    virtual_rules {\n        from 10.0.0.0/8 table 1\n    }\n"),
        [5],
    ),
    ("rule ok", instance("    virtual_rules {\n        from 10.0.0.0/8 table 1 preference 10\n    }\n"), []),
    (
        "rule bad address",
        instance("    virtual_rules {\n        to 192.168.100./24 table 1 preference 3\n    }\n"),
        [5],
    ),
    ("track script missing", instance("    track_script {\n        chk\n    }\n"), [5]),
    ("vrrp_script without script", "vrrp_script chk {\n    interval 2\n}\n", [3]),
    ("tracked interface missing", instance("    track_interface {\n        eth3\n    }\n"), [5]),
    ("v2 advert_int rounded", instance("    advert_int 1.5\n"), [4]),
    (
        "strict owner rule",
        "global_defs {\n    vrrp_strict\n}\n" + instance("    state MASTER\n    priority 100\n"),
        [7],
    ),
    (
        "static rule iif missing",
        "static_rules {\n    from 10.0.0.0/8 table 5 preference 1 iif eth7\n}\n",
        [2],
    ),
    ("linkbeat unknown interface", "linkbeat_interfaces {\n    eth9\n}\n", [2]),
]


@pytest.mark.parametrize(("text", "lines"), [(t, lines) for _, t, lines in CASES], ids=[c[0] for c in CASES])
def test_diagnostic_lines(tmp_path: Path, text: str, lines: list[int]) -> None:
    _, got = load_text(tmp_path, text)
    if lines:
        assert set(lines) <= set(got)
    else:
        assert got == []


def test_defaults_and_master_priority(tmp_path: Path) -> None:
    config, _ = load_text(tmp_path, instance("    state MASTER\n"))
    vi = config.vrrp.instances["VI_1"]
    assert (vi.priority, vi.advert_int, vi.version, vi.family) == (255, 1.0, 2, 4)
    assert vi.garp_master_delay is None  # inherits global_defs


def test_auth_pass_is_truncated(tmp_path: Path) -> None:
    text = instance("    authentication {\n        auth_type PASS\n        auth_pass 123456789\n    }\n")
    config, _ = load_text(tmp_path, text)
    auth = config.vrrp.instances["VI_1"].authentication
    assert auth is not None and auth.password == b"12345678"


def test_duplicate_vrid_same_interface(tmp_path: Path) -> None:
    text = instance("") + instance("", vips="10.0.0.2/24", name="VI_2")
    _, got = load_text(tmp_path, text)
    assert got


def test_route_model(tmp_path: Path) -> None:
    text = instance(
        "    virtual_routes {\n        src 10.0.0.1 10.9.0.0/24 via 10.0.0.254 dev eth0 table 7\n    }\n"
    )
    config, got = load_text(tmp_path, text)
    route = config.vrrp.instances["VI_1"].routes[0]
    assert got == []
    assert (str(route.destination), str(route.source), str(route.via), route.dev, route.table) == (
        "10.9.0.0/24",
        "10.0.0.1",
        "10.0.0.254",
        "eth0",
        7,
    )


def test_track_script_defined_before_is_found(tmp_path: Path) -> None:
    text = "vrrp_script chk {\n    script /bin/true\n}\n" + instance(
        "    track_script {\n        chk\n    }\n"
    )
    config, got = load_text(tmp_path, text)
    assert [ref.name for ref in config.vrrp.instances["VI_1"].track_scripts] == ["chk"]
    assert 8 not in got


def test_global_tracking_means_sync_group_tracking_weight(tmp_path: Path) -> None:
    """keepalived 2.2.7's handler warns that it is deprecated and sets ``sgroup_tracking_weight``."""
    group = "vrrp_sync_group G {\n    group {\n        VI_1\n        VI_2\n    }\n    global_tracking\n}\n"
    text = instance("") + instance("", name="VI_2", vrid=6) + group
    config, lines = load_text(tmp_path, text)
    assert config.vrrp.sync_groups["G"].sync_group_tracking_weight
    assert lines == [len(text.splitlines()) - 1]  # the deprecation warning, at its line
