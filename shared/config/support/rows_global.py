"""Support rows for the top level of the file and ``global_defs``.

Flip a row by replacing ``unsupported(...)``/``partly(...)`` with
``done(AREA, "what acts on it", "tests/...::test_that_shows_it")``.
"""

from __future__ import annotations

from shared.config.support.registry import Area, Rows, Support, done, partly, unsupported

V, N, NODE, L, C, B = Area.VRRP, Area.NOTIFY, Area.NODE, Area.LVS, Area.CHECKS, Area.BFD

PARAMS = "tests/unit/vrrp/test_params.py"
STRICT = "tests/unit/vrrp/test_strict.py"
WIRING = "tests/unit/notifier/test_wiring.py"
SMTP_SINK = "tests/notifier/test_smtp_sink.py::test_mail_arrives_with_keepalived_headers_and_message_id"
LVS_GLOBALS = "tests/kernel/inside/test_lvs_globals.py"
FIFO_SCRIPTS = (
    "tests/notifier/test_fifo_scripts.py::"
    "test_notify_fifo_script_reads_is_restarted_at_reload_with_the_states_and_terminated_at_stop"
)
FIFO_SCRIPT_EACH = "tests/notifier/test_fifo_scripts.py::test_each_fifo_script_reads_the_lines_of_its_fifo"
LIFECYCLE = "tests/lab/test_vrrp_lifecycle_scripts.py"
PRIORITY_CHANGES = (
    "tests/lab/test_vrrp_notify_events.py::test_removed_instances_and_priority_changes_notify_as_keepalived"
)
SCRIPTS = "tests/scripts/test_notifier_scripts.py::test_own_user_script_user_and_an_unsafe_path"
LEXER = "tests/unit/config/test_lexer.py"

SCHEDULING = (
    "each service runs with the scheduling its unit or container gives it "
    "(systemd Nice=, CPUSchedulingPolicy=, CPUAffinity=, LimitRTTIME=)"
)
NAMES = "each service is named python -m services.NAME (lifeline-NAME in logs and on the bus)"
NETLINK_BUFS = "netlink sockets keep the kernel's default receive buffer"
SNMP = "there is no SNMP agent: read state from the bus, lifeline status or the Prometheus metrics"
DBUS = "there is no D-Bus service: use the bus (lifeline instance ...) for runtime control"
RS_NOTIFIES = "tests/notifier/test_real_server_notifies.py"
NO_PROCESS = "lifeline has no parent process that re-executes children"


PROCESS_SETTINGS = "tests/lab/test_process_settings.py"
PRIORITIES_NICE = (
    f"{PROCESS_SETTINGS}::test_checker_gets_its_nice_value_memory_lock_and_cpu_and_its_scripts_do_not"
)
PRIORITIES_RR = (
    f"{PROCESS_SETTINGS}::test_vrrp_runs_round_robin_with_its_rttime_limit_and_a_reload_changes_it"
)
BFD_PROCESS = (
    "tests/lab/test_bfd_process_settings.py::test_bfd_takes_its_process_settings_and_a_reload_changes_them"
)


def _process(prefix: str, area: Area) -> Rows:
    """``vrrp_priority`` and its siblings, for one keepalived process.

    The runner applies them to the vrrp service (``vrrp_``) and to the checker
    and lvs services (``checker_``, keepalived's checker process programs
    IPVS too), and to the bfd service (``bfd_``).
    """

    def applied(area: Area, text: str, test: str) -> Support:
        return done(area, text, BFD_PROCESS if area is Area.BFD else test)

    return {
        f"{prefix}_priority": applied(area, "the nice value", PRIORITIES_NICE),
        f"{prefix}_rt_priority": applied(area, "SCHED_RR at this priority, reset on fork", PRIORITIES_RR),
        f"{prefix}_no_swap": applied(area, "mlockall of the service's memory", PRIORITIES_NICE),
        f"{prefix}_cpu_affinity": applied(area, "the CPUs the service runs on", PRIORITIES_NICE),
        f"{prefix}_rlimit_rttime": applied(area, "RLIMIT_RTTIME with SCHED_RR", PRIORITIES_RR),
        f"{prefix}_rlimit_rtime": applied(area, "RLIMIT_RTTIME with SCHED_RR", PRIORITIES_RR),
        f"{prefix}_process_name": unsupported(area, NAMES),
    }


def _netlink_bufs(prefix: str, area: Area) -> Rows:
    return {
        f"{prefix}_netlink_cmd_rcv_bufs": unsupported(area, NETLINK_BUFS),
        f"{prefix}_netlink_cmd_rcv_bufs_force": unsupported(area, NETLINK_BUFS),
        f"{prefix}_netlink_monitor_rcv_bufs": unsupported(area, NETLINK_BUFS),
        f"{prefix}_netlink_monitor_rcv_bufs_force": unsupported(area, NETLINK_BUFS),
    }


ROOT: Rows = {
    "global_defs": done(
        NODE,
        "the block itself: its keywords are listed below",
        "tests/unit/config/test_global.py::test_archwiki_global_defs",
    ),
    "net_namespace": done(
        NODE,
        "every service enters the namespace at start (the bus connection stays where it was made)",
        "tests/lab/test_net_namespace.py::test_vrrp_started_in_the_root_namespace_elects_inside_net_namespace",
    ),
    "net_namespace_ipvs": done(
        L,
        "lvs programs IPVS in this namespace",
        f"{LVS_GLOBALS}::test_lvs_flush_timeouts_and_hashed_act_in_the_ipvs_namespace_only",
    ),
    "namespace_with_ipsets": unsupported(NODE, "lifeline uses no ipsets"),
    "use_pid_dir": unsupported(NODE, "the services write no pid files (systemd or lifeline up tracks them)"),
    "instance": partly(
        NODE,
        "the services' log ident gets _NAME, as keepalived's syslog ident does; "
        "there are no pid files for it to name (each node is named by 'node' in lifeline.toml)",
        "tests/nats/test_runner.py::test_instance_names_the_log_ident",
    ),
    "child_wait_time": unsupported(NODE, f"{NO_PROCESS}: each service stops within 30 s of SIGTERM"),
    "linkbeat_use_polling": unsupported(V, "links are always followed through netlink events"),
    "vrrp_instance": done(
        V,
        "one VRRP instance",
        "tests/lab/test_vrrp_service.py::test_election_link_failover_and_preempt",
    ),
    "vrrp_script": done(
        Area.TRACKERS,
        "runs it; vrrp follows its result",
        "tests/lab/test_vrrp_service.py::test_tracker_result_on_the_bus_moves_mastership",
    ),
    "vrrp_track_process": done(
        Area.TRACKERS,
        "watches the processes",
        "tests/lab/test_checker_lab.py::test_archwiki_example_2_sshd_death_moves_mastership",
    ),
    "track_file": done(
        Area.TRACKERS,
        "reads the file",
        "tests/checker/test_service.py::test_trackers_through_the_service",
    ),
    "vrrp_track_file": done(
        Area.TRACKERS, "as track_file", "tests/checker/test_service.py::test_trackers_through_the_service"
    ),
    "bfd_instance": done(
        B,
        "one RFC 5880/5881 session per block, run by the bfd service (docs/bfd.md)",
        "tests/interop/test_bfd_interop.py::test_sessions_come_up_and_timers_follow_the_slower_side",
    ),
    "vrrp_sync_group": done(
        V,
        "the group's members move together",
        "tests/lab/test_vrrp_groups.py::test_sync_group_moves_together",
    ),
    "track_group": done(
        V,
        "while a static address, route or rule naming it is lost (its interface down, or not restorable) "
        "its instances are in FAULT",
        "tests/lab/test_vrrp_route_tracking.py::test_static_items_are_restored_and_their_lost_interface_faults_the_track_group",
    ),
    "static_ipaddress": done(
        V,
        "added at start, restored when deleted or when their interface comes back up, removed at stop",
        "tests/lab/test_vrrp_route_tracking.py::test_static_items_are_restored_and_their_lost_interface_faults_the_track_group",
    ),
    "static_routes": done(
        V,
        "added at start, restored when deleted or when their interface comes back up, removed at stop",
        "tests/lab/test_vrrp_route_tracking.py::test_static_items_are_restored_and_their_lost_interface_faults_the_track_group",
    ),
    "static_rules": done(
        V,
        "added at start, restored when deleted or when their interface comes back up, removed at stop",
        "tests/lab/test_vrrp_route_tracking.py::test_static_items_are_restored_and_their_lost_interface_faults_the_track_group",
    ),
    "garp_group": done(
        V,
        "its intervals, not the globals, pace GARPs/NAs on its interfaces",
        "tests/lab/test_vrrp_garp_pacing.py::"
        "test_garp_group_paces_its_interfaces_as_one_sequence_and_the_others_keep_the_global",
    ),
    "linkbeat_interfaces": unsupported(V, "links are always followed through netlink events"),
    "interface_up_down_delays": unsupported(V, "a link change takes effect at once, without delay"),
    "virtual_server": done(
        L,
        "one IPVS service",
        "tests/unit/lvs/test_engine.py::test_start_restart_and_release_touch_only_our_services",
    ),
    "virtual_server_group": done(
        L,
        "the group's addresses and fwmarks",
        "tests/kernel/inside/test_ipvs.py::test_scenario_table_matches_config_netlink_and_ipvsadm",
    ),
    "SSL": done(
        C,
        "the SSL_GET client's certificate, key and password; its ca is loaded, "
        "not used to verify servers (as keepalived)",
        "tests/checker/test_keepalived_keywords.py::test_ssl_ca_is_loaded_but_the_server_certificate_is_not_verified",
    ),
}

GLOBAL_DEFS: Rows = {
    # identity and e-mail
    "router_id": done(
        N,
        "in mail subjects and bodies",
        "tests/unit/notifier/test_formats.py::test_mail_is_byte_exact_with_keepalived",
    ),
    "notification_email": done(
        N,
        "the mail recipients",
        f"{WIRING}::test_no_mail_without_notification_email_and_smtp_server",
    ),
    "notification_email_from": done(N, "the mail sender", SMTP_SINK),
    "smtp_server": done(
        N, "where mails go", f"{WIRING}::test_no_mail_without_notification_email_and_smtp_server"
    ),
    "smtp_helo_name": done(N, "the HELO name", SMTP_SINK),
    "smtp_connect_timeout": done(N, "the SMTP connect timeout", SMTP_SINK),
    "smtp_alert": done(
        N,
        "the default of every object's smtp_alert",
        f"{WIRING}::test_smtp_alert_defaults_and_per_object_overrides",
    ),
    "smtp_alert_vrrp": done(
        N,
        "the default for instances and groups",
        f"{WIRING}::test_smtp_alert_defaults_and_per_object_overrides",
    ),
    "smtp_alert_checker": done(
        N,
        "the default for virtual and real servers",
        f"{WIRING}::test_smtp_alert_defaults_and_per_object_overrides",
    ),
    "no_email_faults": done(
        N,
        "no mail for FAULT",
        "tests/notifier/test_smtp_sink.py::test_no_mail_for_events_keepalived_does_not_mail",
    ),
    "checker_log_all_failures": done(
        C,
        "every failed attempt of an up checker is logged",
        "tests/checker/test_keepalived_keywords.py::test_log_all_failures_logs_each_failed_attempt_while_up",
    ),
    "no_checker_emails": done(
        N,
        "the notifier mails a real server's checker only when it changes the server's state"
        " (without it every checker's up and down is mailed, as keepalived does)",
        f"{RS_NOTIFIES}::test_no_checker_emails_mails_only_what_changes_the_servers_state",
    ),
    "rs_init_notifies": done(
        N,
        "the notifier runs notify_up and writes the RS ... UP line for each real server keepalived starts"
        " in the pool (at the checker's first verdict; never mailed)",
        f"{RS_NOTIFIES}::test_rs_init_notifies_notifies_each_servers_start_by_script_and_fifo",
    ),
    # scripts
    "script_user": done(NODE, "the script launcher (checker, notifier): who runs each script", SCRIPTS),
    "enable_script_security": done(
        NODE, "the script launcher (checker, notifier): unsafe scripts are refused", SCRIPTS
    ),
    "startup_script": done(
        NODE,
        "the vrrp service runs it before its instances start",
        f"{LIFECYCLE}::test_startup_script_runs_before_the_instances_and_shutdown_script_after_the_hand_over",
    ),
    "startup_script_timeout": done(
        NODE,
        "a startup_script still running then is terminated and the service starts",
        f"{LIFECYCLE}::test_a_startup_script_past_its_timeout_is_terminated_and_the_service_starts",
    ),
    "shutdown_script": done(
        NODE,
        "the vrrp service runs it after its instances have handed over at stop",
        f"{LIFECYCLE}::test_startup_script_runs_before_the_instances_and_shutdown_script_after_the_hand_over",
    ),
    "shutdown_script_timeout": done(
        NODE,
        "how long the vrrp service waits for shutdown_script",
        f"{LIFECYCLE}::test_startup_script_runs_before_the_instances_and_shutdown_script_after_the_hand_over",
    ),
    "umask": unsupported(
        NODE, "files are created with lifeline's own modes (FIFOs, state files: owner only)"
    ),
    # FIFOs
    "notify_fifo": done(
        N,
        "VRRP and LVS lines, keepalived's format",
        f"{WIRING}::test_fifos_by_scope_in_one_global_order",
    ),
    "notify_fifo_script": done(
        N, "the notifier starts it on the FIFO and restarts it at reload", FIFO_SCRIPT_EACH
    ),
    "vrrp_notify_fifo": done(N, "VRRP lines", f"{WIRING}::test_fifos_by_scope_in_one_global_order"),
    "vrrp_notify_fifo_script": done(
        N, "the notifier starts it on the FIFO and restarts it at reload", FIFO_SCRIPT_EACH
    ),
    "lvs_notify_fifo": done(N, "LVS lines", f"{WIRING}::test_fifos_by_scope_in_one_global_order"),
    "lvs_notify_fifo_script": done(
        N, "the notifier starts it on the FIFO and restarts it at reload", FIFO_SCRIPT_EACH
    ),
    "fifo_write_vrrp_states_on_reload": done(
        N, "after a reload every instance's and group's state is written to the FIFOs", FIFO_SCRIPTS
    ),
    "vrrp_notify_priority_changes": done(
        N, "the default of notify_priority_changes: priority lines to scripts and FIFOs", PRIORITY_CHANGES
    ),
    # VRRP defaults
    "vrrp_version": done(V, "the default version", f"{PARAMS}::test_version_from_global_and_ipv6_forces_v3"),
    "vrrp_mcast_group4": done(V, "the IPv4 multicast group", f"{PARAMS}::test_multicast_source_and_group"),
    "vrrp_mcast_group6": done(
        V, "the IPv6 multicast group", f"{PARAMS}::test_garp_pacing_and_ipv6_group_globals"
    ),
    "vrrp_strict": done(V, "strict mode for every instance", f"{PARAMS}::test_election_flags_and_globals"),
    "vrrp_skip_check_adv_addr": done(
        V,
        "the default of skip_check_adv_addr",
        "tests/lab/test_vrrp_adv_checks.py::test_skip_check_adv_addr_keeps_following_the_same_master",
    ),
    "vrrp_check_unicast_src": done(
        V,
        "the default of check_unicast_src",
        f"{STRICT}::test_knobs_without_strict_follow_config_and_globals",
    ),
    "vrrp_down_timer_adverts": done(
        V,
        "the default of down_timer_adverts",
        f"{STRICT}::test_knobs_without_strict_follow_config_and_globals",
    ),
    "vrrp_lower_prio_no_advert": done(
        V,
        "the default of lower_prio_no_advert",
        f"{STRICT}::test_knobs_without_strict_follow_config_and_globals",
    ),
    "vrrp_higher_prio_send_advert": done(
        V, "the default of higher_prio_send_advert", f"{PARAMS}::test_election_flags_and_globals"
    ),
    "log_unknown_vrids": unsupported(V, "adverts for unknown VRIDs are counted (metrics), never logged"),
    "default_interface": done(
        V,
        "the interface of static addresses without 'dev'",
        "tests/unit/vrrp/test_routes_static.py::test_emptiness_and_status",
    ),
    # GARP / NA
    "vrrp_garp_master_delay": done(
        V,
        "the default delay of the second GARP burst",
        f"{PARAMS}::test_garp_from_globals_instance_overrides_and_min_garp",
    ),
    "vrrp_garp_master_repeat": done(
        V,
        "the default GARPs per burst",
        f"{PARAMS}::test_garp_from_globals_instance_overrides_and_min_garp",
    ),
    "vrrp_garp_master_refresh": done(
        V, "the default GARP refresh", f"{PARAMS}::test_garp_pacing_and_ipv6_group_globals"
    ),
    "vrrp_garp_master_refresh_repeat": done(
        V, "the default GARPs per refresh", f"{PARAMS}::test_garp_pacing_and_ipv6_group_globals"
    ),
    "vrrp_garp_lower_prio_delay": done(
        V,
        "the default GARP delay after a lower priority",
        f"{PARAMS}::test_garp_pacing_and_ipv6_group_globals",
    ),
    "vrrp_garp_lower_prio_repeat": done(
        V,
        "the default GARPs after a lower priority",
        f"{PARAMS}::test_garp_pacing_and_ipv6_group_globals",
    ),
    "vrrp_garp_interval": done(
        V, "the pause between GARPs", f"{PARAMS}::test_garp_pacing_and_ipv6_group_globals"
    ),
    "vrrp_gna_interval": done(
        V, "the pause between unsolicited NAs", f"{PARAMS}::test_garp_pacing_and_ipv6_group_globals"
    ),
    "vrrp_min_garp": done(
        V,
        "one GARP, no second burst",
        f"{PARAMS}::test_garp_from_globals_instance_overrides_and_min_garp",
    ),
    "vrrp_garp_extra_if": done(
        V,
        "the default garp_extra_if of the instances (period and all)",
        f"{PARAMS}::test_garp_extra_if_spellings_from_keepalived_conf[global]",
    ),
    "vrrp_vmac_garp_intvl": done(
        V,
        "deprecated spelling of vrrp_garp_extra_if (a warning, same meaning)",
        f"{PARAMS}::test_garp_extra_if_spellings_from_keepalived_conf[global_deprecated]",
    ),
    # firewall
    "vrrp_iptables": partly(
        V,
        "as in keepalived 2.2.7 (built without iptables), no_accept uses nftables: "
        "lifeline's own table inet lifeline",
    ),
    "nftables": partly(
        V, "no_accept's rules are always in lifeline's own table inet lifeline, not in the table named here"
    ),
    "nftables_priority": unsupported(V, "no_accept's chains always use priority -1 (keepalived's default)"),
    "nftables_counters": unsupported(V, "no_accept's rules have no counters"),
    "nftables_ifindex": done(
        V,
        "link-local VIPs are always matched by interface index",
        "tests/unit/vrrp/test_strict_nft.py::test_entries_per_family_and_link_local_per_interface",
    ),
    "nftables_ipvs": unsupported(L, "no nftables rules are made for IPVS services (set fwmarks yourself)"),
    "nftables_ipvs_priority": unsupported(L, "no nftables rules are made for IPVS services"),
    "nftables_ipvs_start_fwmark": unsupported(L, "no nftables rules are made for IPVS services"),
    "disable_local_igmp": unsupported(V, "the VMAC interface's IGMP/MLD reports are not filtered"),
    # start-up and scheduling
    "vrrp_startup_delay": done(
        V,
        "no instance leaves its start-up state before the delay",
        "tests/lab/test_vrrp_startup_delay.py::test_the_first_advert_leaves_no_earlier_than_the_startup_delay",
    ),
    "max_auto_priority": unsupported(V, SCHEDULING),
    "min_auto_priority_delay": unsupported(V, SCHEDULING),
    **_process("vrrp", V),
    **_process("checker", C),
    **_process("bfd", B),
    "lvs_process_name": unsupported(L, NAMES),
    "process_names": unsupported(NODE, NAMES),
    "process_name": unsupported(NODE, NAMES),
    # LVS
    "lvs_flush": done(
        L,
        "the IPVS table is flushed when lvs starts",
        f"{LVS_GLOBALS}::test_lvs_flush_timeouts_and_hashed_act_in_the_ipvs_namespace_only",
    ),
    "lvs_flush_on_stop": done(
        L,
        "the IPVS table is flushed when lvs stops",
        f"{LVS_GLOBALS}::test_lvs_flush_on_stop_flushes_the_namespace_and_the_timeouts_go_back",
    ),
    "lvs_flush_onstop": done(
        L,
        "the IPVS table is flushed when lvs stops",
        f"{LVS_GLOBALS}::test_lvs_flush_on_stop_flushes_the_namespace_and_the_timeouts_go_back",
    ),
    "lvs_timeouts": done(
        L,
        "the kernel's IPVS timeouts (put back at stop)",
        f"{LVS_GLOBALS}::test_lvs_flush_timeouts_and_hashed_act_in_the_ipvs_namespace_only",
    ),
    "lvs_sync_daemon": done(
        L,
        "the IPVS sync daemon follows the instance's state",
        "tests/unit/lvs/test_sync.py::test_master_only_while_master",
    ),
    # interfaces and netlink
    "dynamic_interfaces": unsupported(
        V, "an instance whose interface is missing at start is skipped (logged) until a reload"
    ),
    **_netlink_bufs("vrrp", V),
    **_netlink_bufs("lvs", L),
    "process_monitor_rcv_bufs": unsupported(
        Area.TRACKERS, "processes are watched with pidfd, not the process connector: there is no buffer"
    ),
    "process_monitor_rcv_bufs_force": unsupported(
        Area.TRACKERS, "processes are watched with pidfd, not the process connector: there is no buffer"
    ),
    "vrrp_rx_bufs_policy": unsupported(V, "advert sockets keep the kernel's default receive buffer"),
    "vrrp_rx_bufs_multiplier": unsupported(V, "advert sockets keep the kernel's default receive buffer"),
    "vmac_prefix": done(
        V,
        "VMAC names are PREFIX.VRID",
        "tests/unit/vrrp/test_vmac.py::test_default_name_is_prefix_dot_vrid",
    ),
    "vmac_addr_prefix": done(
        V,
        "names the VMACs of per-address use_vmac: PREFIX.VRID, PREFIX6.VRID, PREFIX<N>.VRID",
        "tests/unit/vrrp/test_vmac.py::test_address_vmacs_are_named_as_keepalived_names_them",
    ),
    # SNMP and D-Bus
    "snmp_socket": unsupported(NODE, SNMP),
    "enable_snmp_vrrp": unsupported(V, SNMP),
    "enable_snmp_keepalived": unsupported(V, SNMP),
    "enable_snmp_checker": unsupported(C, SNMP),
    "enable_snmp_rfc": unsupported(V, SNMP),
    "enable_snmp_rfcv2": unsupported(V, SNMP),
    "enable_snmp_rfcv3": unsupported(V, SNMP),
    "enable_traps": unsupported(NODE, f"{SNMP}; events are on the bus (lifeline events)"),
    "enable_dbus": unsupported(V, DBUS),
    "dbus_service_name": unsupported(V, DBUS),
    # reload, dumps, parsing
    "reload_check_config": partly(
        NODE,
        "every reload is checked first anyway (a file with errors never replaces the running one); "
        "the errors go to the log and the bus, not to a file",
    ),
    "reload_time_file": unsupported(NODE, "no reload is scheduled: reload with SIGHUP or lifeline reload"),
    "reload_repeat": unsupported(NODE, "no reload is scheduled: reload with SIGHUP or lifeline reload"),
    "reload_file": unsupported(NODE, "no file is created while the configuration is read"),
    "config_save_dir": unsupported(NODE, "no copies of the configuration are saved"),
    "tmp_config_directory": unsupported(NODE, "each service reads the files itself: no copy is written"),
    "include_check": done(
        NODE,
        "the reader: includes after it are checked as keepalived checks them",
        f"{LEXER}::test_include_check_applies_to_later_includes",
    ),
    "random_seed": unsupported(NODE, "${_RANDOM} is not seeded from it: each read draws its own numbers"),
    "data_use_instance": unsupported(NODE, "there are no .data dump files: read state with lifeline status"),
}
