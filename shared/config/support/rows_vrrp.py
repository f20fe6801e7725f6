"""Support rows for the VRRP blocks: instances, sync groups, trackers, BFD, garp and track groups.

Flip a row by replacing ``unsupported(...)``/``partly(...)`` with
``done(AREA, "what acts on it", "tests/...::test_that_shows_it")``.
"""

from __future__ import annotations

from shared.config.support.registry import Area, Rows, done, partly, unsupported

V, N, T, B = Area.VRRP, Area.NOTIFY, Area.TRACKERS, Area.BFD

PARAMS = "tests/unit/vrrp/test_params.py"
STRICT = "tests/unit/vrrp/test_strict.py"
SCENARIO = "tests/unit/vrrp/test_scenarios.py::test_scenario"
GROUP_SCENARIO = "tests/unit/vrrp/test_group_scenarios.py::test_group_scenario"
LAB = "tests/lab/test_vrrp_service.py"
ADDRESS_LAB = "tests/lab/test_vrrp_address_tracking.py"
SCRIPTS_RUN = "tests/unit/notifier/test_formats.py::test_script_argv_matches_keepalived_run2"
PRIORITY_CHANGES = (
    "tests/lab/test_vrrp_notify_events.py::test_removed_instances_and_priority_changes_notify_as_keepalived"
)
_GARP_LAB = "tests/lab/test_vrrp_garp_pacing.py"
_EXTRA_IF_LAB = (
    f"{_GARP_LAB}::test_garp_extra_if_announces_the_first_vip_of_each_other_interface_every_period"
)
_GARP_GROUP_LAB = (
    f"{_GARP_LAB}::test_garp_group_paces_its_interfaces_as_one_sequence_and_the_others_keep_the_global"
)

VRRP_INSTANCE: Rows = {
    "state": done(
        V, "the initial state (MASTER starts as keepalived does)", f"{SCENARIO}[startup_owner_master]"
    ),
    "interface": done(
        V,
        "adverts, VIPs and link tracking on this interface",
        f"{LAB}::test_election_link_failover_and_preempt",
    ),
    "vrf": unsupported(V, "no VRF binding; an instance without 'interface' is skipped (logged) by vrrp"),
    "virtual_router_id": done(
        V,
        "the VRID on the wire",
        "tests/lab/test_vrrp_io.py::test_multicast_v2_advert_crosses_segment_with_keepalived_ip_header",
    ),
    "priority": done(
        V, "the election priority", "tests/interop/test_vrrp_interop.py::test_election_one_master"
    ),
    "advert_int": done(
        V, "the advert interval (v2 seconds, v3 centiseconds)", f"{PARAMS}::test_advert_interval_units"
    ),
    "version": done(
        V, "VRRPv2 or v3 (IPv6 forces 3)", f"{PARAMS}::test_version_from_global_and_ipv6_forces_v3"
    ),
    "authentication": done(V, "PASS and AH authentication (VRRPv2)", f"{PARAMS}::test_pass_auth_v2_only"),
    "virtual_ipaddress": done(
        V,
        "VIPs added while MASTER and advertised",
        f"{PARAMS}::test_vips_excluded_vips_and_advert_addresses",
    ),
    "virtual_ipaddress_excluded": done(
        V,
        "addresses added while MASTER, not advertised",
        f"{PARAMS}::test_vips_excluded_vips_and_advert_addresses",
    ),
    "virtual_routes": done(
        V,
        "routes set while MASTER; unless no_track, one deleted makes the MASTER step down and its "
        "interface going down is a FAULT",
        "tests/lab/test_vrrp_route_tracking.py::test_virtual_routes_deleted_or_on_a_lost_interface_move_the_master",
    ),
    "virtual_rules": done(
        V,
        "rules set while MASTER; unless no_track, one deleted makes the MASTER step down",
        "tests/lab/test_vrrp_route_tracking.py::test_virtual_routes_deleted_or_on_a_lost_interface_move_the_master",
    ),
    "track_interface": done(
        V, "a down link faults the instance or moves its priority", f"{SCENARIO}[interface_down_master]"
    ),
    "track_script": done(
        V,
        "the checker's vrrp_script results fault the instance or move its priority",
        f"{LAB}::test_tracker_result_on_the_bus_moves_mastership",
    ),
    "track_process": done(
        V,
        "the checker's process results",
        "tests/lab/test_checker_lab.py::test_archwiki_example_2_sshd_death_moves_mastership",
    ),
    "track_file": done(
        V,
        "the checker's file values (value x weight)",
        f"{PARAMS}::test_tracker_weights_instance_beats_script",
    ),
    "track_bfd": done(
        V,
        "the bfd service's session state, as keepalived: down until the session is Up, weight 0 faults "
        "the instance, a weight is added or subtracted (reverse flips it)",
        "tests/lab/test_bfd_track.py::test_bfd_down_moves_the_vip",
    ),
    "track_src_ip": done(
        V,
        "as in keepalived 2.2.7 it changes nothing: a configured source deleted at run time never faults "
        "the instance; with no source configured, the interface losing its last address faults it either way",
        f"{ADDRESS_LAB}::test_configured_source_deleted_changes_nothing",
    ),
    "dont_track_primary": done(
        V, "the instance's own link going down does not fault it", f"{SCENARIO}[dont_track_primary]"
    ),
    "linkbeat_use_polling": unsupported(V, "links are always followed through netlink events"),
    "unicast_src_ip": done(V, "the advert source address", f"{PARAMS}::test_unicast_peers"),
    "mcast_src_ip": done(V, "the advert source address", f"{PARAMS}::test_multicast_source_and_group"),
    "mcast_dst_ip": done(
        V,
        "the multicast group adverts go to",
        "tests/unit/vrrp/test_params.py::test_mcast_dst_ip_beats_the_global_group",
    ),
    "unicast_peer": done(
        V,
        "adverts go to each peer; with check_unicast_src a peer's min_ttl/max_ttl bound its adverts' TTL",
        "tests/lab/test_vrrp_adv_checks.py::test_unicast_peer_ttl_range_drops_adverts_outside_it",
    ),
    "unicast_ttl": done(V, "the TTL of unicast adverts", f"{PARAMS}::test_unicast_peers"),
    "check_unicast_src": done(
        V,
        "adverts from addresses that are not peers are dropped",
        "tests/unit/vrrp/test_packet_validate.py::test_unicast_multicast_mode_and_source",
    ),
    "unicast_fault_no_peer": done(
        V,
        "no peers keeps the instance in FAULT",
        f"{STRICT}::test_unicast_fault_no_peer_keeps_the_instance_in_fault",
    ),
    "old_unicast_checksum": partly(
        V,
        "received adverts in the old form are accepted; the sender does not switch to it",
        "tests/unit/vrrp/test_packet_validate.py::test_old_unicast_form_only_for_unicast_and_when_allowed",
    ),
    "use_vmac": done(
        V,
        "a macvlan with the virtual MAC carries the VIPs",
        "tests/lab/test_vrrp_vmac.py::test_vmac_created_used_and_removed",
    ),
    "vmac_xmit_base": done(
        V,
        "adverts leave through the base interface",
        "tests/unit/vrrp/test_vmac.py::test_xmit_base_keeps_adverts_on_the_base",
    ),
    "use_vmac_addr": unsupported(V, "the VMAC interface gets no address of its own from the base interface"),
    "use_ipvlan": partly(
        V,
        "IPv6 adverts leave the ipvlan from the base interface's link-local (copied onto it), not from the"
        " link-local the kernel makes on the ipvlan",
        "tests/kernel/vrrp_inside/test_vrrp_ipvlan.py::test_ipvlan_election_with_keepalived",
    ),
    "native_ipv6": unsupported(
        V, "nothing more than an IPv6 instance, which the first IPv6 address already makes it"
    ),
    "kernel_rx_buf_size": done(
        V,
        "the advert socket's receive buffer: the sum of its instances' sizes",
        "tests/lab/test_vrrp_rx_buf.py::test_the_receive_buffer_is_the_sum_of_the_instances_sizes",
    ),
    "nopreempt": done(
        V,
        "a higher-priority backup does not take over",
        f"{LAB}::test_nopreempt_keeps_the_current_master",
    ),
    "preempt": done(
        V, "the default (preemption), as keepalived: a no-op", f"{SCENARIO}[backup_preempts_lower]"
    ),
    "preempt_delay": done(
        V,
        "preemption waits this long after start or link up",
        "tests/lab/test_vrrp_preempt_delay.py::test_preempt_delay_holds_off_then_preempts_at_startup_and_after_link_back",
    ),
    "accept": done(
        V,
        "the MASTER accepts traffic to its VIPs",
        "tests/lab/test_vrrp_accept.py::test_no_accept_master_drops_vip_traffic_accept_master_answers",
    ),
    "no_accept": done(
        V,
        "the MASTER drops traffic to its VIPs (nftables)",
        "tests/lab/test_vrrp_accept.py::test_no_accept_master_drops_vip_traffic_accept_master_answers",
    ),
    "strict_mode": done(V, "RFC strict mode's rules", f"{STRICT}::test_strict_mode_per_instance_and_off"),
    "skip_check_adv_addr": done(
        V,
        "an advert from the master the instance follows is not checked against its VIP list",
        "tests/lab/test_vrrp_adv_checks.py::test_skip_check_adv_addr_keeps_following_the_same_master",
    ),
    "lower_prio_no_advert": done(
        V,
        "no advert in reply to a lower priority",
        f"{STRICT}::test_knobs_without_strict_follow_config_and_globals",
    ),
    "higher_prio_send_advert": done(
        V,
        "an advert before yielding to a higher priority",
        f"{SCENARIO}[master_higher_prio_send_advert]",
    ),
    "down_timer_adverts": done(
        V, "adverts missed before a backup takes over", f"{SCENARIO}[startup_down_timer_adverts_4]"
    ),
    "promote_secondaries": unsupported(
        V, "the interface's promote_secondaries sysctl is left as it is (a VMAC gets it set)"
    ),
    "debug": unsupported(V, "use the service's --log-level"),
    "garp_master_delay": done(
        V, "the delay of the second GARP burst", f"{SCENARIO}[garp_master_second_burst]"
    ),
    "garp_master_repeat": done(V, "GARPs per burst", f"{SCENARIO}[garp_custom_repeat_delay]"),
    "garp_lower_prio_delay": done(
        V, "GARP delay after a lower-priority advert", f"{SCENARIO}[master_lower_prio_delay_zero]"
    ),
    "garp_lower_prio_repeat": done(
        V, "GARPs after a lower-priority advert", f"{SCENARIO}[master_lower_prio_garp_repeat_zero]"
    ),
    "garp_master_refresh": done(V, "periodic GARPs while MASTER", f"{SCENARIO}[garp_refresh]"),
    "garp_master_refresh_repeat": done(V, "GARPs per refresh", f"{SCENARIO}[garp_refresh]"),
    "garp_extra_if": done(
        V,
        "while MASTER, a GARP/NA every SECS for the first VIP of each other VMAC (all: other interface)",
        _EXTRA_IF_LAB,
    ),
    "vmac_garp_intvl": done(
        V,
        "deprecated spelling of garp_extra_if (a warning, same meaning)",
        f"{PARAMS}::test_garp_extra_if_spellings_from_keepalived_conf[instance_deprecated]",
    ),
    "notify_master": done(N, "run on MASTER, with keepalived's arguments", SCRIPTS_RUN),
    "notify_backup": done(N, "run on BACKUP", SCRIPTS_RUN),
    "notify_fault": done(N, "run on FAULT", SCRIPTS_RUN),
    "notify_stop": done(N, "run on STOP", SCRIPTS_RUN),
    "notify": done(N, "run on every state, with TYPE NAME STATE PRIORITY", SCRIPTS_RUN),
    "notify_deleted": done(
        N,
        "run (and FIFO line DELETED) when a reload removes the instance",
        "tests/unit/notifier/test_formats.py::test_script_argv_matches_keepalived_run1",
    ),
    "notify_master_rx_lower_pri": done(
        N,
        "run when a MASTER receives a lower priority advert",
        "tests/unit/notifier/test_instance_events.py::test_master_rx_lower_pri_runs_its_script_with_its_own_words_only",
    ),
    "notify_priority_changes": done(N, "priority lines to scripts and FIFOs", PRIORITY_CHANGES),
    "smtp_alert": done(
        N,
        "mails for this instance",
        "tests/unit/notifier/test_wiring.py::test_smtp_alert_defaults_and_per_object_overrides",
    ),
    "lvs_sync_daemon_interface": unsupported(
        Area.LVS, "no sync daemon is started from it: use global_defs lvs_sync_daemon IF INSTANCE"
    ),
    "timer_expired_backup": unsupported(
        V, "a MASTER whose timer expires while another MASTER is seen is not forced to BACKUP"
    ),
    "v3_checksum_as_v2": done(
        V,
        "accepts VRRPv3 checksums computed the v2 way",
        "tests/unit/vrrp/test_packet_validate.py::test_v3_checksum_as_v2_quirk_tolerates_bad_checksums",
    ),
    "owner_ignore_adverts": unsupported(
        V, "an address owner still reads adverts as keepalived 2.2.7 does (strict mode ignores them)"
    ),
    "no_virtual_ipaddress": unsupported(V, "an instance without virtual_ipaddress is still refused"),
}

AUTHENTICATION: Rows = {
    "auth_type": done(
        V, "PASS or AH", "tests/lab/test_vrrp_io.py::test_ah_advert_uses_protocol_51_and_verifies"
    ),
    "auth_pass": done(V, "the password (first 8 bytes)", f"{LAB}::test_auth_mismatch_is_ignored"),
}

_GROUP_SCRIPTS = "run for the group's state, with keepalived's arguments"

VRRP_SYNC_GROUP: Rows = {
    "group": done(
        V, "the members move together", "tests/lab/test_vrrp_groups.py::test_sync_group_moves_together"
    ),
    "track_interface": done(
        V,
        "the group's trackers apply to every member",
        f"{GROUP_SCENARIO}[group_tracker_applies_to_all]",
    ),
    "track_script": done(
        V,
        "the group's trackers apply to every member",
        f"{GROUP_SCENARIO}[group_tracker_applies_to_all]",
    ),
    "track_process": done(
        V,
        "the group's trackers apply to every member",
        f"{PARAMS}::test_sync_group_forces_weights_to_zero_unless_tracking_weight",
    ),
    "track_file": done(
        V,
        "the group's trackers apply to every member",
        f"{PARAMS}::test_sync_group_forces_weights_to_zero_unless_tracking_weight",
    ),
    "track_bfd": done(
        V,
        "the session's state reaches every member: the group enters FAULT while it is not Up",
        "tests/lab/test_bfd_track.py::test_bfd_down_moves_the_vip[sync-group]",
    ),
    "notify_master": done(N, _GROUP_SCRIPTS, SCRIPTS_RUN),
    "notify_backup": done(N, _GROUP_SCRIPTS, SCRIPTS_RUN),
    "notify_fault": done(N, _GROUP_SCRIPTS, SCRIPTS_RUN),
    "notify_stop": done(N, _GROUP_SCRIPTS, SCRIPTS_RUN),
    "notify": done(N, _GROUP_SCRIPTS, SCRIPTS_RUN),
    "notify_priority_changes": done(
        N, "the members' default: priority lines to scripts and FIFOs", PRIORITY_CHANGES
    ),
    "smtp_alert": done(
        N,
        "mails for this group",
        "tests/unit/notifier/test_formats.py::test_mail_is_byte_exact_with_keepalived",
    ),
    "global_tracking": done(
        V,
        "as sync_group_tracking_weight (keepalived 2.2.7's meaning)",
        "tests/unit/config/test_vrrp_parse.py::test_global_tracking_means_sync_group_tracking_weight",
    ),
    "sync_group_tracking_weight": done(
        V, "members keep their trackers' weights", f"{GROUP_SCENARIO}[group_tracking_weight]"
    ),
}

_CHECKER_SCRIPT = "tests/checker/test_service.py::test_trackers_through_the_service"

VRRP_SCRIPT: Rows = {
    "script": done(T, "runs it through the script launcher", _CHECKER_SCRIPT),
    "interval": done(T, "the run interval", _CHECKER_SCRIPT),
    "timeout": done(
        T,
        "a run past it fails",
        "tests/checker/test_trackers.py::test_hanging_script_times_out_fails_and_its_group_is_killed",
    ),
    "weight": done(
        V, "the default weight of track_script", f"{PARAMS}::test_tracker_weights_instance_beats_script"
    ),
    "rise": done(
        T,
        "successes before OK",
        "tests/checker/test_trackers.py::test_script_fall_and_rise_need_consecutive_results",
    ),
    "fall": done(
        T,
        "failures before FAILED",
        "tests/checker/test_trackers.py::test_script_fall_and_rise_need_consecutive_results",
    ),
    "user": done(
        T,
        "who runs the script",
        "tests/scripts/test_checker_scripts.py::test_own_user_script_user_and_unsafe_paths",
    ),
    "init_fail": done(V, "the tracker starts failed", f"{SCENARIO}[startup_init_fail_unweighted]"),
}

VRRP_TRACK_PROCESS: Rows = {
    "process": done(
        T,
        "watched through pidfd",
        "tests/checker/test_trackers.py::test_process_death_is_seen_fast_and_restart_within_the_scan",
    ),
    "param_match": done(
        T,
        "initial or partial argument match",
        "tests/unit/checker/test_tracker_parts.py::test_process_params_exact_partial_initial",
    ),
    "weight": done(
        V,
        "the default weight of track_process",
        f"{PARAMS}::test_tracker_weights_instance_beats_script",
    ),
    "quorum": done(
        T,
        "processes needed for OK",
        "tests/checker/test_trackers.py::test_quorum_and_terminate_delay_absorb_a_quick_restart",
    ),
    "quorum_max": done(
        T,
        "processes allowed for OK",
        "tests/checker/test_trackers.py::test_quorum_and_terminate_delay_absorb_a_quick_restart",
    ),
    "fork_delay": done(
        T,
        "the delay before a new process counts",
        "tests/checker/test_trackers.py::test_terminate_delay_longer_than_the_scan_still_reports_the_death",
    ),
    "terminate_delay": done(
        T,
        "the delay before a dead process counts",
        "tests/checker/test_trackers.py::test_terminate_delay_longer_than_the_scan_still_reports_the_death",
    ),
    "delay": done(
        T,
        "both delays",
        "tests/checker/test_trackers.py::test_terminate_delay_longer_than_the_scan_still_reports_the_death",
    ),
    "full_command": done(
        T,
        "match the whole command line",
        "tests/unit/checker/test_tracker_parts.py::test_process_params_exact_partial_initial",
    ),
}

TRACK_FILE: Rows = {
    "file": done(
        T,
        "reads the number in the file",
        "tests/checker/test_misc_file.py::test_file_check_follows_changes_and_missing_file",
    ),
    "weight": done(
        V,
        "the default weight (value x weight)",
        f"{PARAMS}::test_tracker_weights_instance_beats_script",
    ),
    "init_file": done(
        T,
        "creates the file at start",
        "tests/checker/test_service.py::test_trackers_through_the_service",
    ),
}

_ONE_PROCESS = "the session's state is published on the bus for every consumer (only vrrp consumes it)"

BFD_UP = "test_sessions_come_up_and_timers_follow_the_slower_side"
BFD_PARAMS = "tests/unit/bfd/test_params.py::test_every_keyword_reaches_the_session"
BFD_INTEROP = "tests/interop/test_bfd_interop.py"

BFD_INSTANCE: Rows = {
    "neighbor_ip": done(B, "the peer (IPv4 or IPv6); its packets are this session's", BFD_PARAMS),
    "neighbour_ip": done(B, "as neighbor_ip", BFD_PARAMS),
    "source_ip": done(B, "the address the session's socket is bound to", BFD_PARAMS),
    "min_rx": done(
        B, "Required Min RX Interval (ms, µs resolution); the slower side wins", f"{BFD_INTEROP}::{BFD_UP}"
    ),
    "min_tx": done(B, "Desired Min TX Interval once Up; the slower side wins", f"{BFD_INTEROP}::{BFD_UP}"),
    "idle_tx": done(B, "Desired Min TX Interval while not Up", BFD_PARAMS),
    "multiplier": done(B, "Detect Mult", f"{BFD_INTEROP}::{BFD_UP}"),
    "passive": done(
        B,
        "sends nothing until the peer has spoken",
        f"{BFD_INTEROP}::test_passive_sends_nothing_until_the_peer_speaks",
    ),
    "ttl": done(
        B, "the IPv4 TTL sent (255), and with max_hops the least accepted", f"{BFD_INTEROP}::{BFD_UP}"
    ),
    "hoplimit": done(
        B,
        "the IPv6 hop limit sent (64), and with max_hops the least accepted",
        f"{BFD_INTEROP}::test_ipv6_session_comes_up_with_keepalived_hop_limits",
    ),
    "max_hops": done(B, "how far below ttl/hoplimit a received packet's may be (255: unchecked)", BFD_PARAMS),
    "weight": done(
        V,
        "the default weight of track_bfd",
        "tests/unit/vrrp/test_priority.py::test_bfd_trackers_start_down_as_keepalived_sessions_do",
    ),
    "vrrp": unsupported(B, _ONE_PROCESS),
    "checker": unsupported(B, _ONE_PROCESS),
}

TRACK_GROUP: Rows = {
    "group": done(
        V,
        "the instances held in FAULT while a static item of the group is lost",
        "tests/lab/test_vrrp_route_tracking.py::test_static_items_are_restored_and_their_lost_interface_faults_the_track_group",
    ),
}

GARP_GROUP: Rows = {
    "garp_interval": done(
        V,
        "the pause after each GARP on the group's interfaces",
        _GARP_GROUP_LAB,
    ),
    "gna_interval": done(
        V,
        "the pause after each unsolicited NA on the group's interfaces",
        f"{PARAMS}::test_garp_group_paces_its_interfaces_and_the_rest_keep_the_globals",
    ),
    "interface": done(
        V,
        "the interface (and VMACs on it) paced by the group",
        f"{PARAMS}::test_garp_group_paces_its_interfaces_and_the_rest_keep_the_globals",
    ),
    "interfaces": done(
        V,
        "the interfaces paced as one sequence (one switch)",
        _GARP_GROUP_LAB,
    ),
}

_VIP_IO = "tests/lab/test_vrrp_io.py::test_vips_with_label_scope_brd_and_nodad_added_and_removed"
_VIP_FLAGS = (
    "tests/lab/test_vrrp_vip_netlink.py::test_peer_and_flag_options_reach_the_kernel_and_come_off_again"
)

ADDRESS_LINE: Rows = {
    "brd": done(
        V,
        "the broadcast address (+ and - as ip addr)",
        f"{PARAMS}::test_vips_excluded_vips_and_advert_addresses",
    ),
    "broadcast": done(V, "as brd", _VIP_IO),
    "dev": done(
        V,
        "the interface the address goes on",
        "tests/unit/vrrp/test_vmac.py::test_plan_puts_vips_and_adverts_on_the_vmac",
    ),
    "scope": done(V, "the address scope", _VIP_IO),
    "label": done(V, "the address label", _VIP_IO),
    "peer": done(V, "the point-to-point peer address", _VIP_FLAGS),
    "home": done(V, "IFA_F_HOMEADDRESS", _VIP_FLAGS),
    "-nodad": done(V, "IPv6 addresses are always added without DAD, as keepalived adds them", _VIP_IO),
    "nodad": done(V, "IPv6 addresses are always added without DAD, as keepalived adds them", _VIP_IO),
    "mngtmpaddr": done(V, "IFA_F_MANAGETEMPADDR", _VIP_FLAGS),
    "noprefixroute": done(V, "IFA_F_NOPREFIXROUTE: the kernel adds no prefix route", _VIP_FLAGS),
    "autojoin": done(V, "IFA_F_MCAUTOJOIN: the multicast group is joined", _VIP_FLAGS),
    "preferred_lft": done(
        V,
        "the address's preferred lifetime",
        "tests/unit/vrrp/test_io_pure.py::test_vip_netlink_spec_carries_every_virtual_ipaddress_field",
    ),
    "use_vmac": done(
        V,
        "the address goes on a VMAC of its interface and family (vmac_addr_prefix names it)",
        "tests/lab/test_vrrp_vmac.py::test_address_use_vmac_gets_its_own_vmac_per_interface[lifeline]",
    ),
    "no_track": done(
        V,
        "a (excluded) VIP deleted by hand stays gone and the MASTER stays; without it the MASTER sends "
        "priority 0, goes BACKUP and retakes after the skew time, every VIP back",
        f"{ADDRESS_LAB}::test_vip_deleted_by_hand_steps_the_master_down_unless_no_track",
    ),
    "track_group": done(
        V,
        "the static address is restored when deleted; while it cannot be, the group's instances are in FAULT",
        "tests/lab/test_vrrp_route_tracking.py::test_static_items_are_restored_and_their_lost_interface_faults_the_track_group",
    ),
}
