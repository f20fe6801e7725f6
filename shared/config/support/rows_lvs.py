"""Support rows for the LVS blocks: virtual_server, real_server, every checker, url, SMTP host and SSL.

Flip a row by replacing ``unsupported(...)``/``partly(...)`` with
``done(AREA, "what acts on it", "tests/...::test_that_shows_it")``.
"""

from __future__ import annotations

from shared.config.support.registry import Area, Rows, done, unsupported

L, C, N = Area.LVS, Area.CHECKS, Area.NOTIFY

KERNEL = "tests/kernel/inside/test_ipvs.py::test_scenario_table_matches_config_netlink_and_ipvsadm"
POOL = "tests/unit/lvs/test_pool.py"
RETRY = "tests/unit/checker/test_retry.py"
TIMING = f"{RETRY}::test_timing_from_resolved_checker"
TCP_HTTP = "tests/checker/test_tcp_http.py"
PROBES = "tests/unit/checker/test_probe_parts.py"
SNMP = "there is no SNMP agent: the name is never shown"
NO_BFD = "the checker does not follow BFD sessions yet"

_TIMINGS: Rows = {
    "connect_timeout": done(C, "the default connect timeout of the checks below", TIMING),
    "retry": done(C, "the default retries of the checks below", TIMING),
    "delay_before_retry": done(C, "the default delay before a retry", TIMING),
    "warmup": done(C, "the default random delay before the first check", TIMING),
    "delay_loop": done(C, "the default check interval", TIMING),
}

VIRTUAL_SERVER: Rows = {
    "lb_algo": done(L, "the IPVS scheduler", KERNEL),
    "lvs_sched": done(L, "the IPVS scheduler", KERNEL),
    "lb_kind": done(L, "the forwarding method of the real servers", KERNEL),
    "lvs_method": done(L, "the forwarding method of the real servers", KERNEL),
    "protocol": done(L, "the service's protocol", KERNEL),
    "persistence_timeout": done(L, "IPVS persistence", KERNEL),
    "persistence_granularity": done(L, "the persistence netmask", KERNEL),
    "persistence_engine": done(
        L,
        "the persistence engine",
        "tests/unit/lvs/test_reconcile.py::test_empty_kernel_gets_service_then_dests",
    ),
    "ops": done(
        L,
        "one-packet scheduling",
        "tests/unit/lvs/test_reconcile.py::test_empty_kernel_gets_service_then_dests",
    ),
    "sh-port": done(L, "the scheduler flag", KERNEL),
    "sh-fallback": done(L, "the scheduler flag", KERNEL),
    "mh-port": done(L, "the scheduler flag", KERNEL),
    "mh-fallback": done(L, "the scheduler flag", KERNEL),
    "flag-1": done(L, "the scheduler flag", KERNEL),
    "flag-2": done(L, "the scheduler flag", KERNEL),
    "flag-3": done(L, "the scheduler flag", KERNEL),
    "hashed": done(
        L,
        "the kernel sets it on every service, as it does for keepalived's",
        "tests/unit/lvs/test_reconcile.py::test_matching_kernel_needs_no_operation_despite_hashed_flag",
    ),
    **_TIMINGS,
    "inhibit_on_failure": done(
        L, "a failed real server stays at weight 0", f"{POOL}::test_inhibit_on_failure_sets_weight_zero"
    ),
    "alpha": done(
        L,
        "lvs and checker: real servers start down",
        f"{POOL}::test_alpha_starts_down_and_with_inhibit_is_preadded_at_zero",
    ),
    "omega": done(
        L,
        "real servers are taken down (notify_down, quorum_down) at stop",
        f"{POOL}::test_release_with_omega_takes_alive_servers_down_in_order_then_quorum",
    ),
    "ha_suspend": done(
        L,
        "health is ignored while the address is not local",
        "tests/unit/lvs/test_engine.py::test_ha_suspend_ignores_health_until_the_address_is_local",
    ),
    "quorum": done(
        L,
        "the live weight needed for the service",
        f"{POOL}::test_quorum_with_hysteresis_keepalived_formula",
    ),
    "hysteresis": done(
        L, "the quorum's hysteresis", f"{POOL}::test_quorum_with_hysteresis_keepalived_formula"
    ),
    "quorum_up": done(
        N,
        "run when the quorum is gained",
        "tests/unit/notifier/test_wiring.py::test_targets_cover_instances_virtual_and_real_servers",
    ),
    "quorum_down": done(
        N,
        "run when the quorum is lost",
        "tests/unit/notifier/test_formats.py::test_lvs_scripts_get_only_their_arguments",
    ),
    "sorry_server": done(L, "in the table while the quorum is lost", f"{POOL}::test_sorry_server_in_and_out"),
    "sorry_server_inhibit": done(
        L, "the sorry server stays at weight 0", f"{POOL}::test_sorry_server_inhibit_keeps_it_at_zero"
    ),
    "sorry_server_lvs_method": done(L, "the sorry server's forwarding method", KERNEL),
    "virtualhost": done(
        C, "the default Host header of HTTP checks", f"{PROBES}::test_http_request_and_host_header"
    ),
    "smtp_alert": done(
        N,
        "mails for this service",
        "tests/unit/notifier/test_wiring.py::test_smtp_alert_defaults_and_per_object_overrides",
    ),
    "snmp_name": unsupported(L, SNMP),
    "ip_family": done(L, "the family of a fwmark service", KERNEL),
    "weight": done(L, "the default weight of its real servers", KERNEL),
    "real_server": done(L, "one destination", KERNEL),
}

_CHECKERS = "probed; lvs follows the result"

REAL_SERVER: Rows = {
    "weight": done(L, "the destination's weight", KERNEL),
    "inhibit_on_failure": done(
        L, "a failed real server stays at weight 0", f"{POOL}::test_inhibit_on_failure_sets_weight_zero"
    ),
    "notify_up": done(
        N,
        "run when the server comes up",
        "tests/unit/notifier/test_formats.py::test_lvs_scripts_get_only_their_arguments",
    ),
    "notify_down": done(
        N,
        "run when the server goes down",
        "tests/unit/notifier/test_wiring.py::test_targets_cover_instances_virtual_and_real_servers",
    ),
    "lvs_method": done(L, "the destination's forwarding method", KERNEL),
    "uthreshold": done(L, "the destination's upper connection threshold", KERNEL),
    "lthreshold": done(L, "the destination's lower connection threshold", KERNEL),
    "alpha": done(
        C,
        "the server starts down",
        f"{POOL}::test_alpha_starts_down_and_with_inhibit_is_preadded_at_zero",
    ),
    **_TIMINGS,
    "smtp_alert": done(
        N,
        "mails for this server",
        "tests/unit/notifier/test_wiring.py::test_smtp_alert_defaults_and_per_object_overrides",
    ),
    "virtualhost": done(
        C,
        "the default Host header of its HTTP checks",
        f"{PROBES}::test_http_request_and_host_header",
    ),
    "snmp_name": unsupported(L, SNMP),
    "TCP_CHECK": done(
        C, _CHECKERS, "tests/kernel/inside/test_ipvs.py::test_checker_tcp_check_follows_a_killed_backend"
    ),
    "PING_CHECK": done(C, _CHECKERS, "tests/checker/test_dns_udp_ping.py::test_ping_localhost"),
    "SMTP_CHECK": done(C, _CHECKERS, "tests/checker/test_smtp.py::test_smtp_custom_helo"),
    "DNS_CHECK": done(C, _CHECKERS, "tests/checker/test_dns_udp_ping.py::test_dns"),
    "UDP_CHECK": done(C, _CHECKERS, "tests/checker/test_dns_udp_ping.py::test_udp"),
    "MISC_CHECK": done(C, _CHECKERS, "tests/checker/test_misc_file.py::test_misc_exit_codes"),
    "FILE_CHECK": done(C, _CHECKERS, "tests/checker/test_misc_file.py::test_file_check"),
    "BFD_CHECK": unsupported(
        C, f"{NO_BFD}: the checker ignores this check (the server's other checks decide)"
    ),
    "HTTP_GET": done(C, _CHECKERS, f"{TCP_HTTP}::test_http_get"),
    "SSL_GET": done(C, _CHECKERS, f"{TCP_HTTP}::test_ssl_get_with_sni"),
}

SSL: Rows = {
    "password": done(
        C,
        "the SSL_GET client key's password",
        "tests/checker/test_tcp_http.py::test_ssl_get_presents_the_ssl_blocks_client_certificate",
    ),
    "ca": done(
        C,
        "loaded at start and reload (one that cannot be loaded is an error); as in keepalived, "
        "servers are not verified against it",
        "tests/checker/test_keepalived_keywords.py::test_a_ca_that_cannot_be_loaded_stops_the_start",
    ),
    "certificate": done(
        C,
        "the SSL_GET client certificate",
        "tests/checker/test_tcp_http.py::test_ssl_get_presents_the_ssl_blocks_client_certificate",
    ),
    "key": done(
        C,
        "the SSL_GET client key",
        "tests/checker/test_tcp_http.py::test_ssl_get_presents_the_ssl_blocks_client_certificate",
    ),
}

URL: Rows = {
    "path": done(C, "the URL requested", f"{TCP_HTTP}::test_http_request_is_keepalived_shaped"),
    "digest": done(C, "the body's MD5", f"{PROBES}::test_http_body_checks"),
    "status_code": done(
        C, "the accepted status codes", f"{TCP_HTTP}::test_ssl_get_without_sni_and_status_failure"
    ),
    "virtualhost": done(C, "the Host header", f"{PROBES}::test_http_request_and_host_header"),
    "regex": done(C, "the body must match", f"{PROBES}::test_http_body_checks"),
    "regex_no_match": done(C, "the body must not match", f"{PROBES}::test_http_body_checks"),
    "regex_options": done(C, "PCRE2's options, as keepalived names them", f"{PROBES}::test_http_body_checks"),
    "regex_stack": done(
        C, "PCRE2's JIT stack sizes", "tests/unit/checker/test_regex.py::test_regex_stack_is_the_jit_stack"
    ),
    "regex_min_offset": done(C, "where the match may start", f"{PROBES}::test_http_body_checks"),
    "regex_max_offset": done(C, "where the match may start", f"{PROBES}::test_http_body_checks"),
}

_CONNECT = f"{PROBES}::test_target_of_uses_resolved_connect_fields"
_BIND = f"{TCP_HTTP}::test_tcp_bindto_and_bind_port_are_the_source"

CONNECTION: Rows = {
    "connect_ip": done(C, "the address probed", _CONNECT),
    "connect_port": done(C, "the port probed", _CONNECT),
    "bindto": done(C, "the probe's source address", _BIND),
    "bind_port": done(C, "the probe's source port", _BIND),
    "bind_if": done(
        C, "the probe's interface", f"{TCP_HTTP}::test_tcp_unknown_bind_if_fails_without_raising"
    ),
    "fwmark": done(
        C,
        "the probe's packets carry the mark",
        "tests/checker/test_tcp_http.py::test_tcp_probe_marks_its_socket_with_fwmark",
    ),
}
"""SMTP_CHECK's deprecated ``host`` block takes these alone; every checker but MISC, FILE and BFD has them."""

LATE: Rows = {
    "retry": done(C, "failures before DOWN", TIMING),
    "delay_before_retry": done(C, "the delay before a retry", TIMING),
    "warmup": done(
        C,
        "a random delay before the first check",
        f"{RETRY}::test_warmup_delays_first_probe_by_injected_random",
    ),
    "delay_loop": done(C, "the check interval", TIMING),
    "alpha": done(C, "the server starts down", f"{RETRY}::test_up_down_rules"),
    "log_all_failures": done(
        C,
        "every failed attempt of an up checker is logged (its retries too), not only the state change",
        "tests/checker/test_keepalived_keywords.py::test_log_all_failures_logs_each_failed_attempt_while_up",
    ),
}
"""The common keywords MISC_CHECK takes."""

COMMON: Rows = {
    **CONNECTION,
    "connect_timeout": done(C, "the probe's timeout", TIMING),
    **LATE,
}

HTTP: Rows = {
    **COMMON,
    "url": done(C, "every url must pass", f"{TCP_HTTP}::test_http_get"),
    "http_protocol": done(
        C, "1.0, 1.0C or 1.1 requests", f"{TCP_HTTP}::test_http_request_is_keepalived_shaped"
    ),
    "virtualhost": done(C, "the Host header", f"{PROBES}::test_http_request_and_host_header"),
    "fast_recovery": done(
        C,
        "one passing round brings a failed server back",
        "tests/checker/test_keepalived_keywords.py::test_fast_recovery_decides_how_many_passing_rounds_bring_a_server_back",
    ),
    "enable_sni": done(C, "SNI in the TLS handshake", f"{TCP_HTTP}::test_ssl_get_with_sni"),
    "sni_name": done(C, "the SNI name", f"{TCP_HTTP}::test_ssl_get_with_sni"),
    "tls_compliant": unsupported(C, "the TLS connection is closed the way Python's ssl closes it"),
    "nb_get_retry": done(C, "as retry", TIMING),
}

CHECKERS: dict[str, Rows] = {
    "TCP_CHECK": COMMON,
    "PING_CHECK": COMMON,
    "SMTP_CHECK": {
        **COMMON,
        "helo_name": done(C, "the HELO name", "tests/checker/test_smtp.py::test_smtp_custom_helo"),
        "host": done(
            C,
            "one more SMTP check on that host",
            "tests/unit/config/test_lvs_parse.py::test_checker_values",
        ),
    },
    "DNS_CHECK": {
        **COMMON,
        "type": done(C, "the query type", "tests/checker/test_dns_udp_ping.py::test_dns"),
        "name": done(C, "the name queried", "tests/checker/test_dns_udp_ping.py::test_dns"),
    },
    "UDP_CHECK": {
        **COMMON,
        "payload": done(C, "the datagram sent", "tests/checker/test_dns_udp_ping.py::test_udp"),
        "require_reply": done(
            C, "a reply (matching the pattern) is needed", f"{PROBES}::test_udp_reply_pattern"
        ),
        "min_reply_length": done(C, "the shortest reply accepted", f"{PROBES}::test_udp_reply_length_bounds"),
        "max_reply_length": done(C, "the longest reply accepted", f"{PROBES}::test_udp_reply_length_bounds"),
    },
    "MISC_CHECK": {
        **LATE,
        "misc_path": done(C, "the script run", "tests/checker/test_misc_file.py::test_misc_exit_codes"),
        "misc_timeout": done(
            C,
            "the script's time limit",
            "tests/checker/test_misc_file.py::test_misc_timeout_kills_the_whole_group",
        ),
        "misc_dynamic": done(C, "the exit code sets the weight", f"{PROBES}::test_misc_exit_status"),
        "user": done(
            C,
            "who runs the script",
            "tests/scripts/test_checker_scripts.py::test_own_user_script_user_and_unsafe_paths",
        ),
    },
    "FILE_CHECK": {
        "track_file": done(C, "the track_file read", "tests/checker/test_misc_file.py::test_file_check"),
        "weight": done(C, "value x weight is the dynamic weight", f"{PROBES}::test_file_check_values"),
    },
    "BFD_CHECK": {
        "name": unsupported(C, f"{NO_BFD}: the checker ignores this check"),
        "alpha": unsupported(C, f"{NO_BFD}: the checker ignores this check"),
    },
    "HTTP_GET": HTTP,
    "SSL_GET": HTTP,
}
