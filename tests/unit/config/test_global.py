"""global_defs and root-level globals: defaults, value types, ranges, host checks (keepalived 2.2.7)."""

from __future__ import annotations

import ipaddress

import pytest

from shared.config.context import Context
from shared.config.host import FakeHost
from shared.config.model import Config
from shared.config.model_global import GlobalDefs, LvsSyncDaemon, LvsTimeouts, NotifyFifo, SmtpServer
from shared.config.node import Node
from shared.config.parse_global import GLOBAL_DEFS_TABLE, ROOT_HANDLERS, finish, to_umask

FILE = "/etc/keepalived/keepalived.conf"


def line(text: str, lineno: int = 2) -> Node:
    keyword, _, raw = text.strip().partition(" ")
    return Node(keyword, tuple(raw.replace('"', "").split()), FILE, lineno, raw=raw)


def block(keyword: str, *children: Node, lineno: int = 1) -> Node:
    return Node(keyword, (), FILE, lineno, children=children)


def run(*roots: Node, host: FakeHost | None = None) -> tuple[Config, list[str]]:
    ctx = Context()
    config = Config()
    for node in roots:
        ROOT_HANDLERS[node.keyword](ctx, node, config)
    finish(ctx, config, host or FakeHost())
    return config, [f"{d.severity}:{d.line}:{d.message}" for d in ctx.diagnostics]


def gd(*lines: str) -> tuple[GlobalDefs, list[str]]:
    nodes = [line(text, i + 2) for i, text in enumerate(lines)]
    config, diags = run(block("global_defs", *nodes))
    return config.global_defs, diags


def test_defaults_are_keepalived_defaults() -> None:
    d = GlobalDefs()
    assert d.router_id is None and d.effective_router_id()
    assert d.effective_email_from().startswith("keepalived@")
    assert d.smtp_connect_timeout == 30
    assert (d.vrrp_garp_master_delay, d.vrrp_garp_master_repeat) == (5, 5)
    assert (d.vrrp_garp_master_refresh, d.vrrp_garp_master_refresh_repeat) == (0, 1)
    assert (d.vrrp_garp_lower_prio_delay, d.vrrp_garp_lower_prio_repeat) == (None, None)  # the master's
    assert d.vrrp_version == 2
    assert d.vrrp_mcast_group4 == ipaddress.IPv4Address("224.0.0.18")
    assert d.vrrp_mcast_group6 == ipaddress.IPv6Address("ff02::12")
    assert d.vrrp_down_timer_adverts == 3
    assert d.child_wait_time == 5
    assert (d.startup_script_timeout, d.shutdown_script_timeout) == (10, 10)
    assert d.default_interface == "eth0"
    assert d.nftables_ipvs_start_fwmark == 1000
    assert d.vrrp_rx_bufs_multiplier == 3
    assert d.vrrp_rlimit_rttime == 10_000
    assert d.min_auto_priority_delay == 1_000_000
    assert d.vmac_prefix == "vrrp" and d.vmac_addr_prefix is None
    assert d.snmp_socket == "unix:/var/agentx/master"
    assert d.effective_lower_prio_no_advert() is False
    assert d.smtp_alert is None


def test_empty_global_defs_has_no_diagnostics() -> None:
    assert gd() == (GlobalDefs(), [])


def test_archwiki_global_defs() -> None:
    email = block("notification_email", line("admin@example.net", 4), lineno=3)
    config, diags = run(
        block(
            "global_defs",
            email,
            line("notification_email_from lb1@example.net", 6),
            line("smtp_server mail.example.net", 7),
            line("smtp_connect_timeout 30", 8),
        ),
        host=FakeHost(names={"mail.example.net"}),
    )
    g = config.global_defs
    assert diags == []
    assert g.notification_email == ["admin@example.net"]
    assert g.notification_email_from == "lb1@example.net"
    assert g.smtp_server == SmtpServer(host="mail.example.net", port=25, file=FILE, line=7)


def test_unresolvable_smtp_server_is_a_warning_at_its_line() -> None:
    """It fails ``config check`` (as keepalived -t) but must not stop a service that boots before DNS."""
    _, diags = run(block("global_defs", line("smtp_server mail.example.net", 7)))
    assert diags == ["warning:7:Invalid smtp server mail.example.net 25: the name does not resolve"]


def test_smtp_server_ip_needs_no_resolution() -> None:
    g, diags = gd("smtp_server ::1 2525")
    assert (g.smtp_server, diags) == (SmtpServer(host="::1", port=2525, file=FILE, line=2), [])


@pytest.mark.parametrize("port", ["0", "65536", "x"])
def test_smtp_server_bad_port(port: str) -> None:
    g, diags = gd(f"smtp_server 127.0.0.1 {port}")
    assert g.smtp_server is None
    assert diags and diags[0].startswith(
        "error:2:invalid value for 'smtp_server': expected an integer in 1..65535"
    )


@pytest.mark.parametrize(
    ("text", "attr", "value"),
    [
        ("router_id lb1 extra", "router_id", "lb1"),
        ("smtp_helo_name mx", "smtp_helo_name", "mx"),
        ("smtp_connect_timeout 4294", "smtp_connect_timeout", 4294),
        ("smtp_alert", "smtp_alert", True),
        ("smtp_alert off", "smtp_alert", False),
        ("smtp_alert_vrrp yes", "smtp_alert_vrrp", True),
        ("no_email_faults", "no_email_faults", True),
        ("enable_dbus no", "enable_dbus", True),  # keepalived ignores the word
        ("vrrp_version 3", "vrrp_version", 3),
        ("vrrp_mcast_group4 224.0.0.19", "vrrp_mcast_group4", ipaddress.IPv4Address("224.0.0.19")),
        ("vrrp_mcast_group6 ff02::13", "vrrp_mcast_group6", ipaddress.IPv6Address("ff02::13")),
        ("vrrp_garp_master_delay 0", "vrrp_garp_master_delay", 0),
        ("vrrp_garp_lower_prio_repeat 0", "vrrp_garp_lower_prio_repeat", 0),
        ("vrrp_garp_interval 0.001", "vrrp_garp_interval", 0.001),
        ("vrrp_gna_interval 0.000001", "vrrp_gna_interval", 0.000001),
        ("vrrp_startup_delay 5.5", "vrrp_startup_delay", 5.5),
        ("vrrp_down_timer_adverts 100", "vrrp_down_timer_adverts", 100),
        ("max_auto_priority", "max_auto_priority", 99),
        ("max_auto_priority -1", "max_auto_priority", -1),
        ("vrrp_priority -20", "vrrp_priority", -20),
        ("checker_rt_priority 99", "checker_rt_priority", 99),
        ("bfd_rlimit_rtime 5000", "bfd_rlimit_rttime", 5000),
        ("vrrp_cpu_affinity 0 1", "vrrp_cpu_affinity", [0, 1]),
        ("lvs_process_name ipvs", "checker_process_name", "ipvs"),
        ("nftables", "nftables", "keepalived"),
        ("nftables_ipvs", "nftables_ipvs", "keepalived_ipvs"),
        ("nftables_priority -5", "nftables_priority", -5),
        ("lvs_flush_on_stop", "lvs_flush_on_stop", "full"),
        ("lvs_flush_onstop VS", "lvs_flush_on_stop", "vs"),
        ("umask IWGRP | IWOTH", "umask", 0o022),
        ("umask 0x12", "umask", 0o022),
        ("umask 022", "umask", 0o022),
        ("umask 18", "umask", 0o022),
        ("include_check", "include_check", ["read", "match", "wildcard_match", "brace_match"]),
        ("reload_file", "reload_file", "/run/keepalived.reload"),
        ("random_seed 4294967295", "random_seed", 4294967295),
        ("vrrp_rx_bufs_multiplier 1", "vrrp_rx_bufs_multiplier", 1),
        ("vrrp_netlink_cmd_rcv_bufs_force off", "vrrp_netlink_cmd_rcv_bufs_force", False),
        ("enable_snmp_keepalived", "enable_snmp_vrrp", True),
        ("dbus_service_name org.x.Y", "dbus_service_name", "org.x.Y"),
    ],
)
def test_values(text: str, attr: str, value: object) -> None:
    g, diags = gd(text)
    assert diags == []
    assert getattr(g, attr) == value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("smtp_connect_timeout -1", "an integer in 0..4294"),
        ("smtp_connect_timeout 1.5", "an integer in 0..4294"),
        ("smtp_alert maybe", "one of on/off"),
        ("checker_log_all_failures x", "one of on/off"),
        ("vrrp_version 4", "an integer in 2..3"),
        ("vrrp_garp_master_delay 100000", "an integer in 0..4294"),
        ("vrrp_garp_master_refresh 1.5", "an integer"),
        ("vrrp_garp_interval 5000", "seconds in 0.000001..4294.967295"),
        ("vrrp_garp_interval 1.0000001", "at most 6 decimals"),
        ("vrrp_startup_delay -1", "seconds in 0.001000..4294.967295"),
        ("vrrp_down_timer_adverts 0", "an integer in 1..100"),
        ("max_auto_priority 100", "an integer in -1..99"),
        ("min_auto_priority_delay 0", "an integer in 1..10000000"),
        ("vrrp_priority 20", "an integer in -20..19"),
        ("startup_script_timeout 1001", "an integer in 1..1000"),
        ("nftables_ipvs_start_fwmark 0", "an integer in 1..4294967295"),
        ("vrrp_rx_bufs_multiplier 0", "an integer in 1..4294967295"),
        ("vrrp_rx_bufs_policy foo", "an integer"),
        ("vrrp_garp_extra_if 86401", "an integer in 1..86400"),
        ("random_seed -5", "an integer in 0..4294967295"),
        ("umask bad", "umask bits"),
        ("umask 01000", "no larger than 0777"),
        ("lvs_timeouts tcp 86400000", "an integer in 0..2678400"),
        ("lvs_sync_daemon eth0 id 256", "an integer in 0..255"),
        ("lvs_sync_daemon eth0 group 10.0.0.1", "a multicast address"),
        ("vrrp_cpu_affinity 0 x", "an integer"),
    ],
)
def test_bad_values_are_errors_naming_what_was_expected(text: str, expected: str) -> None:
    _, diags = gd(text)
    assert diags, text
    assert diags[0].startswith("error:2:")
    assert expected in diags[0]


@pytest.mark.parametrize(
    "text",
    [
        "router_id",
        "notification_email_from",
        "smtp_server",
        "script_user",
        "default_interface",
        "vrrp_garp_extra_if all",
        "lvs_timeouts tcp",
        "lvs_sync_daemon",
        "notify_fifo",
        "startup_script",
        "vrrp_mcast_group4",
    ],
)
def test_missing_value_is_an_error(text: str) -> None:
    _, diags = gd(text)
    assert [d.split(":")[0] for d in diags] == ["error"]


@pytest.mark.parametrize(
    ("text", "attr", "value"),
    [
        ("smtp_connect_timeout 0", "smtp_connect_timeout", 1),
        ("vrrp_garp_master_repeat 0", "vrrp_garp_master_repeat", 1),
        ("vrrp_garp_master_refresh_repeat 0", "vrrp_garp_master_refresh_repeat", 1),
        ("vrrp_rt_priority 0", "vrrp_rt_priority", 1),
        ("bfd_rt_priority 100", "bfd_rt_priority", 99),
    ],
)
def test_clamped_values_warn(text: str, attr: str, value: int) -> None:
    g, diags = gd(text)
    assert getattr(g, attr) == value
    assert [d.split(":")[0] for d in diags] == ["warning"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("vrrp_mcast_group4 10.0.0.1", "not multicast"),
        ("vrrp_mcast_group4 ff02::12", "not IPv4"),
        ("vrrp_mcast_group6 fe80::1", "not multicast"),
        ("vrrp_mcast_group6 224.0.0.18", "not IPv6"),
    ],
)
def test_mcast_groups_must_fit(text: str, problem: str) -> None:
    g, [diag] = gd(text)
    assert problem in diag and diag.startswith("error:2:")
    assert g.vrrp_mcast_group4 == GlobalDefs().vrrp_mcast_group4


def test_structured_keywords() -> None:
    g, diags = gd(
        "lvs_timeouts tcp 10 tcpfin 5 udp 3",
        "lvs_sync_daemon eth0 inst VI_1 id 5 maxlen 1000 port 8849 ttl 5 group 224.0.0.81",
        "notify_fifo /run/ka.fifo root root",
        "vrrp_notify_fifo_script /usr/local/bin/fifo.sh",
        "vrrp_garp_extra_if all 100",
        "vrrp_rx_bufs_policy advert",
        "dynamic_interfaces allow_if_changes",
        "include_check +match -read",
        "reload_check_config /tmp/log",
        "enable_snmp_rfc",
    )
    assert g.lvs_timeouts == LvsTimeouts(tcp=10, tcpfin=5, udp=3)
    assert g.lvs_sync_daemon == LvsSyncDaemon(
        interface="eth0",
        instance="VI_1",
        syncid=5,
        maxlen=1000,
        port=8849,
        ttl=5,
        group=ipaddress.IPv4Address("224.0.0.81"),
    )
    assert g.notify_fifo == NotifyFifo(path="/run/ka.fifo", user="root", group="root")
    assert g.vrrp_notify_fifo_script is not None
    assert g.vrrp_notify_fifo_script.argv == ["/usr/local/bin/fifo.sh"]
    assert (g.vrrp_garp_extra_if, g.vrrp_garp_extra_if_all) == (100, True)
    assert g.vrrp_rx_bufs_policy == "ADVERT"
    assert g.dynamic_interfaces and g.dynamic_interfaces_allow_if_changes
    assert g.include_check == ["match"]
    assert (g.reload_check_config, g.reload_check_config_log) == (True, "/tmp/log")
    assert g.enable_snmp_rfcv2 and g.enable_snmp_rfcv3
    # the fifo script is a script: without enable_script_security keepalived says so
    assert [d.split(":")[0] for d in diags] == ["warning"]
    assert "SECURITY VIOLATION" in diags[0]


def test_sync_daemon_bare_instance_name() -> None:
    g, diags = gd("lvs_sync_daemon eth0 VI_1")
    assert diags == [] and g.lvs_sync_daemon == LvsSyncDaemon(interface="eth0", instance="VI_1")


def test_rx_bufs_policy_size() -> None:
    g, _ = gd("vrrp_rx_bufs_policy 1000")
    assert (g.vrrp_rx_bufs_policy, g.vrrp_rx_bufs_size) == ("SIZE", 1000)


def test_deprecated_alias_warns_and_applies() -> None:
    g, [diag] = gd("vrrp_vmac_garp_intvl 60")
    assert g.vrrp_garp_extra_if == 60 and "deprecated" in diag


def test_iptables_warns_as_debian_build_does() -> None:
    g, [diag] = gd("vrrp_iptables")
    assert diag.startswith("warning:2:iptables not supported")
    assert g.nftables == "keepalived"


def test_keywords_after_2_2_7_are_unknown() -> None:
    _, [diag] = gd("vrrp_owner_ignore_adverts")
    assert diag.startswith("warning:2:unknown keyword 'vrrp_owner_ignore_adverts'")


def test_empty_notification_email_warns() -> None:
    _, diags = run(block("global_defs", block("notification_email", lineno=3)))
    assert diags == ["warning:3:empty notification_email block"]


def test_notification_email_display_name_and_several_blocks() -> None:
    first = block("notification_email", Node('"Ops <ops@example.net>"', (), FILE, 3), lineno=2)
    second = block("global_defs", block("notification_email", line("b@example.net", 8), lineno=7), lineno=6)
    config, _ = run(block("global_defs", first), second)
    assert config.global_defs.notification_email == ['"Ops <ops@example.net>"', "b@example.net"]


def test_global_defs_needs_a_block() -> None:
    _, diags = run(Node("global_defs", (), FILE, 1))
    assert diags[0].startswith("error:1:")


def test_script_keywords_in_global_defs() -> None:
    g, diags = gd(
        'startup_script "/usr/local/sbin/fw up" root', "startup_script_timeout 20", "enable_script_security"
    )
    assert g.startup_script is not None and g.startup_script.argv == ["/usr/local/sbin/fw", "up"]
    assert (g.startup_script.user, g.startup_script_timeout, g.enable_script_security) == ("root", 20, True)
    assert diags == []


def test_script_user_and_group() -> None:
    g, diags = gd("script_user root root")
    assert g.script_user is not None and (g.script_user.user, g.script_user.group, g.script_user.line) == (
        "root",
        "root",
        2,
    )
    assert diags == []


def test_unknown_script_user_is_an_error() -> None:
    _, diags = gd("script_user ghost")
    assert diags == ["error:2:script_user: no such user/group 'ghost'"]


# --- root-level globals ---


def test_root_level_globals() -> None:
    config, diags = run(
        line("net_namespace blue", 1),
        line("net_namespace_ipvs", 2),
        line("namespace_with_ipsets", 3),
        line("use_pid_dir", 4),
        line("instance lb", 5),
        line("child_wait_time 30", 6),
        line("linkbeat_use_polling", 7),
    )
    g = config.global_defs
    assert diags == []
    assert (g.net_namespace, g.net_namespace_ipvs, g.instance, g.child_wait_time) == ("blue", "", "lb", 30)
    assert g.namespace_with_ipsets and g.use_pid_dir and g.linkbeat_use_polling


def test_duplicate_namespace_and_instance_warn() -> None:
    config, diags = run(
        line("net_namespace a", 1), line("net_namespace b", 2), line("instance x", 3), line("instance y", 4)
    )
    assert (config.global_defs.net_namespace, config.global_defs.instance) == ("a", "x")
    assert [d[:9] for d in diags] == ["warning:2", "warning:4"]


@pytest.mark.parametrize("value", ["-1", "1.5", "4294967296"])
def test_bad_child_wait_time(value: str) -> None:
    config, [diag] = run(line(f"child_wait_time {value}", 1))
    assert diag.startswith("error:1:invalid value for 'child_wait_time'")
    assert config.global_defs.child_wait_time == 5


def test_every_2_2_7_keyword_is_known() -> None:
    """The set found by feeding candidate words to keepalived 2.2.7's ``-t`` (see docs/config-global.md)."""
    assert set(GLOBAL_DEFS_TABLE) == KEEPALIVED_2_2_7_GLOBAL_DEFS
    assert set(ROOT_HANDLERS) == {
        "global_defs",
        "net_namespace",
        "net_namespace_ipvs",
        "namespace_with_ipsets",
        "use_pid_dir",
        "instance",
        "child_wait_time",
        "linkbeat_use_polling",
    }


def test_umask_numbers() -> None:
    assert to_umask("0777") == 0o777
    assert to_umask("IRUSR|IXOTH") == 0o401


KEEPALIVED_2_2_7_GLOBAL_DEFS = set(
    """
    bfd_cpu_affinity bfd_no_swap bfd_priority bfd_process_name bfd_rlimit_rtime bfd_rlimit_rttime
    bfd_rt_priority checker_cpu_affinity checker_log_all_failures checker_no_swap checker_priority
    checker_process_name checker_rlimit_rtime checker_rlimit_rttime checker_rt_priority config_save_dir
    data_use_instance dbus_service_name default_interface disable_local_igmp dynamic_interfaces enable_dbus
    enable_script_security enable_snmp_checker enable_snmp_keepalived enable_snmp_rfc enable_snmp_rfcv2
    enable_snmp_rfcv3 enable_snmp_vrrp enable_traps fifo_write_vrrp_states_on_reload include_check lvs_flush
    lvs_flush_on_stop lvs_flush_onstop lvs_netlink_cmd_rcv_bufs lvs_netlink_cmd_rcv_bufs_force
    lvs_netlink_monitor_rcv_bufs lvs_netlink_monitor_rcv_bufs_force lvs_notify_fifo lvs_notify_fifo_script
    lvs_process_name lvs_sync_daemon lvs_timeouts max_auto_priority min_auto_priority_delay nftables
    nftables_counters nftables_ifindex nftables_ipvs nftables_ipvs_priority nftables_ipvs_start_fwmark
    nftables_priority no_checker_emails no_email_faults notification_email notification_email_from
    process_monitor_rcv_bufs process_monitor_rcv_bufs_force process_names random_seed reload_check_config
    reload_file reload_repeat reload_time_file rs_init_notifies script_user shutdown_script
    shutdown_script_timeout smtp_alert smtp_alert_checker smtp_alert_vrrp smtp_connect_timeout smtp_helo_name
    smtp_server snmp_socket startup_script startup_script_timeout tmp_config_directory umask vmac_addr_prefix
    vmac_prefix vrrp_check_unicast_src vrrp_cpu_affinity vrrp_down_timer_adverts vrrp_garp_extra_if
    vrrp_garp_interval vrrp_garp_lower_prio_delay vrrp_garp_lower_prio_repeat vrrp_garp_master_delay
    vrrp_garp_master_refresh vrrp_garp_master_refresh_repeat vrrp_garp_master_repeat vrrp_gna_interval
    vrrp_higher_prio_send_advert vrrp_iptables vrrp_lower_prio_no_advert vrrp_mcast_group4 vrrp_mcast_group6
    vrrp_min_garp vrrp_netlink_cmd_rcv_bufs vrrp_netlink_cmd_rcv_bufs_force vrrp_netlink_monitor_rcv_bufs
    vrrp_netlink_monitor_rcv_bufs_force vrrp_no_swap vrrp_notify_fifo vrrp_notify_fifo_script
    vrrp_notify_priority_changes vrrp_priority vrrp_process_name vrrp_rlimit_rtime vrrp_rlimit_rttime
    vrrp_rt_priority vrrp_rx_bufs_multiplier vrrp_rx_bufs_policy vrrp_skip_check_adv_addr vrrp_startup_delay
    vrrp_strict vrrp_version vrrp_vmac_garp_intvl
    log_unknown_vrids notify_fifo notify_fifo_script process_name router_id
    """.split()  # noqa: SIM905 - a word list read like the keepalived -t output it came from
)
