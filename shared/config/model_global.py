"""global_defs and the root-level globals, with keepalived 2.2.7's defaults.

Every keyword Debian's keepalived 2.2.7 accepts inside ``global_defs`` has a field
here, and so do the root-level globals (``net_namespace``, ``instance``,
``child_wait_time``...), because keepalived keeps both in one place and
``Config`` has no other slot for them.

``None`` means "not configured": either keepalived computes the value at use time
(``router_id`` and ``smtp_helo_name`` are the host name then,
``notification_email_from`` is ``keepalived@<hostname>``) or the value follows
another one (``vrrp_garp_lower_prio_delay`` follows ``vrrp_garp_master_delay``).
The properties at the end resolve those rules, so services never re-derive them.
The defaults were checked against ``keepalived -d`` (the "Global definitions" dump).
"""

from __future__ import annotations

import ipaddress
import socket

import msgspec

from shared.config.script import Script, ScriptUserRef

DEFAULT_SNMP_SOCKET = "unix:/var/agentx/master"
DEFAULT_DBUS_SERVICE_NAME = "org.keepalived.Vrrp1"
DEFAULT_RELOAD_FILE = "/run/keepalived.reload"
INCLUDE_CHECKS = (
    "read",
    "match",
    "wildcard_match",
    "brace_match",
)  # 2.2.7's words (its man page says readable)


class SmtpServer(msgspec.Struct, frozen=True, kw_only=True):
    """``smtp_server IP|name [port]``; a name is resolved when mail is sent, as keepalived does."""

    host: str
    port: int = 25
    file: str = ""  # where it was configured: the resolve check reports there
    line: int = 0


class NotifyFifo(msgspec.Struct, frozen=True, kw_only=True):
    """``*notify_fifo PATH [user [group]]``: the owner keepalived gives the FIFO it creates."""

    path: str
    user: str | None = None
    group: str | None = None


class LvsTimeouts(msgspec.Struct, frozen=True, kw_only=True):
    """``lvs_timeouts``: ``None`` leaves the kernel's value as it was when we started."""

    tcp: int | None = None
    tcpfin: int | None = None
    udp: int | None = None


class LvsSyncDaemon(msgspec.Struct, frozen=True, kw_only=True):
    """``lvs_sync_daemon``; ``syncid`` None means "the VRID of ``instance``, or 0"."""

    interface: str
    instance: str | None = None
    syncid: int | None = None
    maxlen: int | None = None
    port: int = 8848
    ttl: int | None = None
    group: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None


class GlobalDefs(msgspec.Struct, kw_only=True):
    """Every global setting; field names are the keepalived keywords (aliases fold into one)."""

    # --- root-level globals (outside any block) ---
    net_namespace: str | None = None
    net_namespace_ipvs: str | None = None  # "" = the default namespace (keyword given bare)
    namespace_with_ipsets: bool = False
    use_pid_dir: bool = False
    instance: str | None = None
    child_wait_time: int = 5
    linkbeat_use_polling: bool = False

    # --- identity and e-mail ---
    router_id: str | None = None  # None: the host name at use time
    notification_email: list[str] = msgspec.field(default_factory=list)
    notification_email_from: str | None = None  # None: keepalived@<hostname>
    smtp_server: SmtpServer | None = None
    smtp_helo_name: str | None = None  # None: the host name
    smtp_connect_timeout: int = 30
    smtp_alert: bool | None = None  # None: "unset", per-object default (off) applies
    smtp_alert_vrrp: bool | None = None
    smtp_alert_checker: bool | None = None
    no_email_faults: bool = False
    checker_log_all_failures: bool = False
    no_checker_emails: bool = False
    rs_init_notifies: bool = False

    # --- scripts and security ---
    script_user: ScriptUserRef | None = None  # None: keepalived_script if it exists, else root
    enable_script_security: bool = False
    startup_script: Script | None = None
    startup_script_timeout: int = 10
    shutdown_script: Script | None = None
    shutdown_script_timeout: int = 10
    umask: int | None = None  # None: keepalived's own (0177 observed in 2.2.7's dump)

    # --- notify FIFOs ---
    notify_fifo: NotifyFifo | None = None
    notify_fifo_script: Script | None = None
    vrrp_notify_fifo: NotifyFifo | None = None
    vrrp_notify_fifo_script: Script | None = None
    lvs_notify_fifo: NotifyFifo | None = None
    lvs_notify_fifo_script: Script | None = None
    fifo_write_vrrp_states_on_reload: bool = False
    vrrp_notify_priority_changes: bool = False

    # --- VRRP protocol defaults ---
    vrrp_version: int = 2
    vrrp_mcast_group4: ipaddress.IPv4Address = ipaddress.IPv4Address("224.0.0.18")
    vrrp_mcast_group6: ipaddress.IPv6Address = ipaddress.IPv6Address("ff02::12")
    vrrp_strict: bool = False
    vrrp_skip_check_adv_addr: bool = False
    vrrp_check_unicast_src: bool = False
    vrrp_down_timer_adverts: int = 3
    vrrp_lower_prio_no_advert: bool | None = None  # None: follows vrrp_strict
    vrrp_higher_prio_send_advert: bool = False
    log_unknown_vrids: bool = False
    default_interface: str = "eth0"

    # --- gratuitous ARP / unsolicited NA ---
    vrrp_garp_master_delay: int = 5
    vrrp_garp_master_repeat: int = 5
    vrrp_garp_master_refresh: int = 0
    vrrp_garp_master_refresh_repeat: int = 1
    vrrp_garp_lower_prio_delay: int | None = None  # None: vrrp_garp_master_delay
    vrrp_garp_lower_prio_repeat: int | None = None  # None: vrrp_garp_master_repeat
    vrrp_garp_interval: float = 0.0
    vrrp_gna_interval: float = 0.0
    vrrp_min_garp: bool = False
    vrrp_garp_extra_if: int = 0
    vrrp_garp_extra_if_all: bool = False

    # --- firewall ---
    vrrp_iptables: list[str] | None = None  # accepted, but 2.2.7 (Debian) uses nftables instead
    nftables: str | None = None
    nftables_priority: int = -1
    nftables_counters: bool = False
    nftables_ifindex: bool = False
    nftables_ipvs: str | None = None
    nftables_ipvs_priority: int = -1
    nftables_ipvs_start_fwmark: int = 1000
    disable_local_igmp: bool = False

    # --- start-up and scheduling ---
    vrrp_startup_delay: float = 0.0
    max_auto_priority: int = 0
    min_auto_priority_delay: int = 1_000_000  # microseconds
    vrrp_priority: int = 0
    checker_priority: int = 0
    bfd_priority: int = 0
    vrrp_rt_priority: int = 0
    checker_rt_priority: int = 0
    bfd_rt_priority: int = 0
    vrrp_no_swap: bool = False
    checker_no_swap: bool = False
    bfd_no_swap: bool = False
    vrrp_cpu_affinity: list[int] = msgspec.field(default_factory=list)
    checker_cpu_affinity: list[int] = msgspec.field(default_factory=list)
    bfd_cpu_affinity: list[int] = msgspec.field(default_factory=list)
    vrrp_rlimit_rttime: int = 10_000  # microseconds
    checker_rlimit_rttime: int = 10_000
    bfd_rlimit_rttime: int = 10_000

    # --- LVS ---
    lvs_flush: bool = False
    lvs_flush_on_stop: str = "disabled"  # "disabled" | "full" | "vs"
    lvs_timeouts: LvsTimeouts | None = None
    lvs_sync_daemon: LvsSyncDaemon | None = None

    # --- interfaces and netlink ---
    dynamic_interfaces: bool = False
    dynamic_interfaces_allow_if_changes: bool = False
    vrrp_netlink_cmd_rcv_bufs: int = 0  # 0: the system default
    vrrp_netlink_cmd_rcv_bufs_force: bool = False
    vrrp_netlink_monitor_rcv_bufs: int = 0
    vrrp_netlink_monitor_rcv_bufs_force: bool = False
    lvs_netlink_cmd_rcv_bufs: int = 0
    lvs_netlink_cmd_rcv_bufs_force: bool = False
    lvs_netlink_monitor_rcv_bufs: int = 0
    lvs_netlink_monitor_rcv_bufs_force: bool = False
    process_monitor_rcv_bufs: int = 0
    process_monitor_rcv_bufs_force: bool = False
    vrrp_rx_bufs_policy: str | None = None  # None (system default), "MTU", "ADVERT" or "SIZE"
    vrrp_rx_bufs_size: int | None = None  # with policy "SIZE"
    vrrp_rx_bufs_multiplier: int = 3
    vmac_prefix: str = "vrrp"
    vmac_addr_prefix: str | None = None  # None: vmac_prefix

    # --- SNMP and D-Bus ---
    snmp_socket: str = DEFAULT_SNMP_SOCKET
    enable_snmp_vrrp: bool = False
    enable_snmp_checker: bool = False
    enable_snmp_rfcv2: bool = False
    enable_snmp_rfcv3: bool = False
    enable_traps: bool = False
    enable_dbus: bool = False
    dbus_service_name: str = DEFAULT_DBUS_SERVICE_NAME

    # --- reload, dumps, parsing ---
    reload_check_config: bool = False
    reload_check_config_log: str | None = None
    reload_time_file: str | None = None
    reload_repeat: bool = False
    reload_file: str | None = None
    config_save_dir: str | None = None
    tmp_config_directory: str | None = None
    include_check: list[str] = msgspec.field(default_factory=list)
    random_seed: int | None = None
    data_use_instance: bool = False

    # --- process names ---
    process_names: bool = False
    process_name: str | None = None
    vrrp_process_name: str | None = None
    checker_process_name: str | None = None
    bfd_process_name: str | None = None

    # --- resolved views: the "None means ..." rules above, in one place ---

    def effective_router_id(self) -> str:
        return self.router_id if self.router_id is not None else socket.gethostname()

    def effective_email_from(self) -> str:
        if self.notification_email_from is not None:
            return self.notification_email_from
        return f"keepalived@{socket.gethostname()}"

    def effective_helo_name(self) -> str:
        return self.smtp_helo_name if self.smtp_helo_name is not None else socket.gethostname()

    def effective_lower_prio_no_advert(self) -> bool:
        if self.vrrp_lower_prio_no_advert is not None:
            return self.vrrp_lower_prio_no_advert
        return self.vrrp_strict
