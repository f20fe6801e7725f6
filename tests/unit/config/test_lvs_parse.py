# ruff: noqa: E501  (table rows are whole config snippets; splitting them hurts reading)
"""LVS parser: each case is a config snippet and the lines keepalived 2.2.7 -t reports (verified by hand)."""

from __future__ import annotations

import ipaddress

import pytest

from shared.config.host import FakeHost
from shared.config.model_lvs import (
    DnsCheck,
    FileCheck,
    HttpGetCheck,
    LvsMethod,
    MiscCheck,
    SmtpCheck,
    TcpCheck,
    UdpCheck,
)
from tests.unit.config.test_lvs_support import lines_of, load_text

HEAD = "virtual_server 10.0.0.1 80 {\n  lb_algo rr\n  lb_kind NAT\n  protocol TCP\n"


def vs(body: str) -> str:
    """A complete virtual server whose body starts at line 5."""
    return HEAD + body + "}\n"


def rs(body: str) -> str:
    """A real server whose body starts at line 6."""
    return vs("  real_server 10.0.0.2 80 {\n" + body + "  }\n")


CASES = [
    ("clean", rs("    TCP_CHECK {\n      connect_timeout 3\n    }\n"), []),
    (
        "no protocol",
        "virtual_server 10.0.0.1 80 {\n lb_algo rr\n lb_kind NAT\n real_server 10.0.0.2 80 {\n }\n}\n",
        [1],
    ),
    (
        "no scheduler or method",
        "virtual_server 10.0.0.1 80 {\n protocol TCP\n real_server 10.0.0.2 80 {\n }\n}\n",
        [1, 1],
    ),
    ("bad scheduler", vs("  lb_algo RR\n  real_server 10.0.0.2 80 {\n  }\n"), [5]),
    ("bad method", vs("  lb_kind dr\n  real_server 10.0.0.2 80 {\n  }\n"), [5]),
    ("gue needs port", vs("  lb_kind TUN type gue\n  real_server 10.0.0.2 80 {\n  }\n"), [5]),
    ("gre remcsum", vs("  lb_kind TUN type gre remcsum\n  real_server 10.0.0.2 80 {\n  }\n"), [5]),
    ("ipip nocsum ok", vs("  lb_kind TUN type ipip nocsum\n  real_server 10.0.0.2 80 {\n  }\n"), []),
    (
        "bad status",
        rs(
            "    HTTP_GET {\n      url {\n        path /\n        status_code 200 abc 700 300-200\n      }\n    }\n"
        ),
        [9, 9, 9],
    ),
    ("http no url", rs("    HTTP_GET {\n    }\n"), [7]),
    ("url no path", rs("    HTTP_GET {\n      url {\n      }\n    }\n"), [8, 9]),
    (
        "bad digest",
        rs("    HTTP_GET {\n      url {\n        path /\n        digest zz\n      }\n    }\n"),
        [9],
    ),
    (
        "regex not checked",
        rs('    HTTP_GET {\n      url {\n        path /\n        regex "(x"\n      }\n    }\n'),
        [],
    ),
    (
        "nb_get_retry",
        rs("    HTTP_GET {\n      url {\n        path /\n      }\n      nb_get_retry 2\n    }\n"),
        [10],
    ),
    ("unknown checker kw", rs("    TCP_CHECK {\n      foo 1\n    }\n"), [7]),
    (
        "misc common subset",
        rs("    MISC_CHECK {\n      misc_path /bin/x\n      connect_timeout 3\n      retry 2\n    }\n"),
        [8],
    ),
    ("misc no path", rs("    MISC_CHECK {\n    }\n"), [7]),
    ("misc bad user", rs("    MISC_CHECK {\n      misc_path /bin/x\n      user nosuch\n    }\n"), [8]),
    (
        "udp min > max",
        rs("    UDP_CHECK {\n      min_reply_length 10\n      max_reply_length 5\n    }\n"),
        [9],
    ),
    ("udp bad payload", rs("    UDP_CHECK {\n      payload 0a zz\n    }\n"), [7]),
    ("dns bad type", rs("    DNS_CHECK {\n      type FOO\n    }\n"), [7]),
    ("file no track", rs("    FILE_CHECK {\n      connect_timeout 3\n    }\n"), [7, 8]),
    ("bad ports", rs("    TCP_CHECK {\n      connect_port 0\n      bind_port 70000\n    }\n"), [7, 8]),
    (
        "quorum capped",
        vs("  quorum 5\n  hysteresis 9\n  real_server 10.0.0.2 80 {\n    weight 2\n  }\n"),
        [5, 6],
    ),
    ("no real servers", vs(""), [1]),
    ("duplicate rs", vs("  real_server 10.0.0.2 80 {\n  }\n  real_server 10.0.0.2 80 {\n  }\n"), [7]),
    ("family mismatch", vs("  real_server fe80::2 80 {\n  }\n  real_server 10.0.0.2 80 {\n  }\n"), [6]),
    ("ops needs udp", vs("  ops\n  real_server 10.0.0.2 80 {\n  }\n"), [5]),
    ("sh-port on rr", vs("  sh-port\n  real_server 10.0.0.2 80 {\n  }\n"), [5]),
    ("sh-port on mh", vs("  lb_algo mh\n  sh-port\n  real_server 10.0.0.2 80 {\n  }\n"), []),
    (
        "fwmark protocol",
        "virtual_server fwmark 1 {\n lb_algo rr\n lb_kind NAT\n protocol TCP\n real_server 10.0.0.2 {\n }\n}\n",
        [4],
    ),
    ("rs without port", vs("  real_server 10.0.0.2 {\n  }\n"), []),
    (
        "port 0 not persistent",
        "virtual_server 10.0.0.1 {\n lb_algo rr\n lb_kind NAT\n protocol TCP\n real_server 10.0.0.2 {\n }\n}\n",
        [1],
    ),
    ("dr port mismatch", vs("  real_server 10.0.0.2 81 {\n    lvs_method DR\n  }\n"), [5]),
    ("bad vs address", "virtual_server 10.0.0.300 80 {\n protocol TCP\n}\n", [1]),
    ("bad rs weight", vs("  real_server 10.0.0.2 80 {\n    weight -1\n  }\n"), [6]),
    (
        "vs flags ignore args",
        vs("  alpha on\n  omega x\n  ha_suspend 1\n  real_server 10.0.0.2 80 {\n  }\n"),
        [],
    ),
    ("bad smtp_alert", vs("  smtp_alert maybe\n  real_server 10.0.0.2 80 {\n  }\n"), [5]),
    ("sorry method w/o server", vs("  sorry_server_lvs_method DR\n  real_server 10.0.0.2 80 {\n  }\n"), [5]),
    ("missing group is silent", "virtual_server group NOPE {\n protocol TCP\n}\n", []),
    ("empty group", "virtual_server_group G {\n}\n", [2]),
    (
        "group entries",
        "virtual_server_group G {\n 10.0.0.1 80\n 10.0.0.20-10 80\n 10.0.0.300 80\n fwmark 9 foo\n 10.0.1.0/29 80\n}\n",
        [3, 4, 5],
    ),
    ("ssl unknown", "SSL {\n password x\n foo\n}\n", [3]),
    (
        "persistence",
        vs("  persistence_timeout 0\n  persistence_granularity foo\n  real_server 10.0.0.2 80 {\n  }\n"),
        [5, 6],
    ),
]


@pytest.mark.parametrize(("text", "lines"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_diagnostic_lines_match_keepalived(text: str, lines: list[int]) -> None:
    _, diags = load_text(text, FakeHost(users={"root"}))
    assert lines_of(diags) == sorted(lines), [str(d) for d in diags]


def test_inheritance_and_defaults() -> None:
    text = vs(
        "  delay_loop 10\n  retry 4\n  real_server 10.0.0.2 80 {\n    connect_timeout 2\n"
        "    TCP_CHECK {\n    }\n    HTTP_GET {\n      url {\n        path /\n      }\n      retry 7\n    }\n"
        "    DNS_CHECK {\n    }\n    MISC_CHECK {\n      misc_path /bin/x\n    }\n  }\n"
    )
    config, diags = load_text(text)
    assert diags == []
    (server,) = config.lvs.virtual_servers
    real = server.real_servers[0]
    assert real.weight == 1 and real.port == 80 and real.lvs_method == LvsMethod(kind="NAT")
    tcp, http, dns, misc = real.checkers
    assert isinstance(tcp, TcpCheck) and isinstance(http, HttpGetCheck)
    assert tcp.delay_loop == 10 and tcp.connect_timeout == 2 and tcp.retry == 4
    assert tcp.connect_ip == ipaddress.ip_address("10.0.0.2") and tcp.connect_port == 80
    assert http.retry == 7 and http.delay_before_retry == 3.0
    assert http.urls[0].status_codes == ((200, 299),)
    assert isinstance(dns, DnsCheck) and dns.type == "SOA" and dns.delay_before_retry == 10
    assert isinstance(misc, MiscCheck) and misc.misc_timeout == 10 and misc.retry == 4


def test_per_checker_retry_defaults_without_vs_retry() -> None:
    text = rs(
        "    DNS_CHECK {\n    }\n    MISC_CHECK {\n      misc_path /bin/x\n    }\n    TCP_CHECK {\n    }\n"
    )
    config, _ = load_text(text)
    dns, misc, tcp = config.lvs.virtual_servers[0].real_servers[0].checkers
    assert (dns.retry, misc.retry, tcp.retry) == (3, 0, 1)
    assert tcp.delay_loop == 60 and tcp.connect_timeout == 5 and tcp.delay_before_retry == 1


def test_probe_keys_dedupe_identical_checks() -> None:
    text = vs(
        "  real_server 10.0.0.2 80 {\n    TCP_CHECK {\n    }\n  }\n"
        "  real_server 10.0.0.3 80 {\n    TCP_CHECK {\n      connect_ip 10.0.0.2\n    }\n  }\n"
    )
    config, _ = load_text(text)
    keys = {c.probe_key() for _, _, c in config.lvs.checks()}
    assert len(keys) == 1


def test_checker_values() -> None:
    text = rs(
        "    UDP_CHECK {\n      payload Ab12f 3\n      require_reply 0aXx\n    }\n"
        "    SMTP_CHECK {\n      helo_name me\n      host {\n        connect_ip 10.0.0.5\n      }\n    }\n"
        "    FILE_CHECK {\n      track_file tf\n      weight -3 reverse\n    }\n"
    )
    config, diags = load_text("track_file tf {\n  file /tmp/tf\n}\n" + text)
    assert diags == []
    checks = config.lvs.virtual_servers[0].real_servers[0].checkers
    udp, smtp, file_check, smtp_host = checks
    assert isinstance(udp, UdpCheck) and udp.payload == bytes([0xAB, 0x12, 0x0F, 0x03])
    assert udp.require_reply and udp.reply_pattern == "0AXX"
    assert isinstance(smtp, SmtpCheck) and smtp.helo_name == "me"
    assert isinstance(smtp_host, SmtpCheck) and str(smtp_host.connect_ip) == "10.0.0.5"
    assert isinstance(file_check, FileCheck) and file_check.weight == -3 and file_check.reverse


def test_tunnel_method_and_persistence_default() -> None:
    text = vs(
        "  lb_kind TUN type gue port 6080 csum\n  persistence_timeout\n  real_server 10.0.0.2 80 {\n  }\n"
    )
    config, diags = load_text(text)
    assert diags == []
    server = config.lvs.virtual_servers[0]
    assert server.lvs_method == LvsMethod(kind="TUN", tunnel_type="gue", tunnel_port=6080, checksum="csum")
    assert server.persistence_timeout == 360


def test_group_ranges() -> None:
    config, diags = load_text(
        "virtual_server_group G {\n 10.0.0.2-10 80\n 10.0.2.1-10.0.2.5\n fwmark 8 inet6\n}\n"
    )
    assert diags == []
    first, second, mark = config.lvs.virtual_server_groups["G"].entries
    assert (str(first.first), str(first.last), first.port) == ("10.0.0.2", "10.0.0.10", 80)
    assert str(second.last) == "10.0.2.5" and second.port == 0
    assert mark.fwmark == 8 and mark.family == "inet6"


def test_ssl_block() -> None:
    config, diags = load_text("SSL {\n password p\n ca /c\n certificate /x\n key /k\n}\n")
    assert diags == [] and config.lvs.ssl is not None
    assert (config.lvs.ssl.password, config.lvs.ssl.key) == ("p", "/k")
