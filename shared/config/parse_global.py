"""Root handlers for global_defs and the root-level global keywords, as keepalived 2.2.7 reads them.

The keyword set is exactly what Debian's keepalived 2.2.7 accepts (found by
feeding every candidate word to ``keepalived -t``); later keywords such as
``vrrp_owner_ignore_adverts`` or ``json_version`` warn as unknown, as 2.2.7 does.
Ranges and messages follow ``keepalived -t``: a value keepalived ignores is an
error naming what was expected, a value it clamps is a warning saying so.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from typing import Any

from shared.config.context import (
    Context,
    Handler,
    dispatch,
    require_block,
    set_bare_flag,
    set_flag,
    set_int,
    set_with,
)
from shared.config.host import Host
from shared.config.lexer_include import INCLUDE_CHECKS as INCLUDE_CHECK_LETTERS
from shared.config.lexer_include import include_check_set
from shared.config.model import Config
from shared.config.model_global import (
    DEFAULT_RELOAD_FILE,
    INCLUDE_CHECKS,
    GlobalDefs,
    LvsSyncDaemon,
    LvsTimeouts,
    NotifyFifo,
    SmtpServer,
)
from shared.config.node import Node
from shared.config.script import (
    ScriptUserRef,
    check_script_security,
    script_files_for,
    set_script,
)
from shared.config.values import BadValue, to_int, to_ip, to_timer

RootHandler = Callable[[Context, Node, Config], None]

UINT_MAX = 4294967295
INT_MIN, INT_MAX = -2147483648, 2147483647
SECS_MAX = 4294  # keepalived's limit for whole-second timers (UINT_MAX microseconds)
TIMER_MIN, TIMER_MAX = 0.000001, 4294.967295
LVS_TIMEOUT_MAX = 2678400  # 31 days
GARP_EXTRA_IF_MAX = 86400
UMASK_BITS = {
    "IRUSR": 0o400, "IWUSR": 0o200, "IXUSR": 0o100,
    "IRGRP": 0o040, "IWGRP": 0o020, "IXGRP": 0o010,
    "IROTH": 0o004, "IWOTH": 0o002, "IXOTH": 0o001,
}  # fmt: skip


# --- handler factories particular to global_defs ---


def set_uint_clamped(attr: str, hi: int, floor: int) -> Handler:
    """An unsigned value in ``[0, hi]`` where keepalived lifts 0 to ``floor`` with a warning."""

    def handle(ctx: Context, node: Node, target: Any) -> None:
        value = ctx.value(node, lambda w: to_int(w, 0, hi))
        if value is None:
            return
        if value < floor:
            ctx.warning(node, f"'{node.keyword}' must be at least {floor}, using {floor}")
            value = floor
        setattr(target, attr, value)

    return handle


def set_rt_priority(attr: str) -> Handler:
    """``*_rt_priority``: keepalived clamps into 1..99 with a warning rather than refusing."""

    def handle(ctx: Context, node: Node, target: Any) -> None:
        value = ctx.value(node, lambda w: to_int(w, INT_MIN, INT_MAX))
        if value is None:
            return
        clamped = min(max(value, 1), 99)
        if clamped != value:
            ctx.warning(node, f"'{node.keyword}' {value} is outside 1..99, using {clamped}")
        setattr(target, attr, clamped)

    return handle


def set_timer_range(attr: str, lo: float, hi: float) -> Handler:
    """A <TIMER> with keepalived's microsecond resolution: more decimals is an error, not rounding."""
    return set_with(attr, lambda w: _timer_us(w, lo, hi))


def _timer_us(word: str, lo: float, hi: float) -> float:
    expected = f"seconds in {lo:f}..{hi:f} with at most 6 decimals, got '{word}'"
    if "." in word and len(word.split(".", 1)[1]) > 6:
        raise BadValue(expected)
    try:
        return to_timer(word, lo, hi)
    except BadValue:
        raise BadValue(expected) from None


def set_cpu_list(attr: str) -> Handler:
    def handle(ctx: Context, node: Node, target: Any) -> None:
        if not node.args:
            ctx.error(node, f"'{node.keyword}' needs one or more CPU numbers")
            return
        cpus = [ctx.value(node, lambda w: to_int(w, 0, 4095), i) for i in range(len(node.args))]
        if all(c is not None for c in cpus):
            setattr(target, attr, [c for c in cpus if c is not None])

    return handle


def set_fifo(attr: str) -> Handler:
    def handle(ctx: Context, node: Node, target: Any) -> None:
        if not node.args:
            ctx.error(node, f"'{node.keyword}' needs a FIFO path")
            return
        args = node.args
        fifo = NotifyFifo(
            path=args[0], user=args[1] if len(args) > 1 else None, group=args[2] if len(args) > 2 else None
        )
        setattr(target, attr, fifo)

    return handle


def deprecated(new_keyword: str, handler: Handler) -> Handler:
    """keepalived's 'Keyword "X" is deprecated - please use "Y"': a warning, then the new behaviour."""

    def handle(ctx: Context, node: Node, target: Any) -> None:
        ctx.warning(node, f"keyword '{node.keyword}' is deprecated - please use '{new_keyword}'")
        handler(ctx, node, target)

    return handle


# --- keyword-specific handlers ---


def _router_id(ctx: Context, node: Node, gd: GlobalDefs) -> None:
    if not node.args:
        ctx.error(node, "'router_id' needs a name (keepalived ignores it and uses the host name)")
        return
    gd.router_id = node.args[0]


def _notification_email(ctx: Context, node: Node, gd: GlobalDefs) -> None:
    """One address per line; a quoted ``"Name <addr>"`` is one word, so it stays whole."""
    if not require_block(ctx, node):
        return
    addresses = [" ".join(child.words) for child in node.children or ()]
    if not addresses:
        ctx.warning(node, "empty notification_email block")
    gd.notification_email.extend(addresses)


def _smtp_server(ctx: Context, node: Node, gd: GlobalDefs) -> None:
    if not node.args:
        ctx.error(node, "'smtp_server' needs an IP address or host name")
        return
    port = 25
    if len(node.args) > 1:
        value = ctx.value(node, lambda w: to_int(w, 1, 65535), 1)
        if value is None:
            return
        port = value
    gd.smtp_server = SmtpServer(host=node.args[0], port=port, file=node.file, line=node.line)


def _smtp_helo_name(ctx: Context, node: Node, gd: GlobalDefs) -> None:
    """keepalived accepts a bare ``smtp_helo_name`` and keeps the host-name default."""
    if node.args:
        gd.smtp_helo_name = node.args[0]


def _optional_bool(attr: str) -> Handler:
    """``smtp_alert*``: bare means on; the stored value stays None ("unset") until given."""
    return set_flag(attr)


def _mcast_group(attr: str, version: int) -> Handler:
    def handle(ctx: Context, node: Node, gd: Any) -> None:
        addr = ctx.value(node, to_ip)
        if addr is None:
            return
        if addr.version != version:
            ctx.error(node, f"'{node.keyword}' {addr} is not IPv{version}; keeping the default")
        elif not addr.is_multicast:
            ctx.error(node, f"'{node.keyword}' {addr} is not multicast; keeping the default")
        else:
            setattr(gd, attr, addr)

    return handle


def _vrrp_version(ctx: Context, node: Node, gd: GlobalDefs) -> None:
    value = ctx.value(node, lambda w: to_int(w, 2, 3))
    if value is not None:
        gd.vrrp_version = value


def _garp_extra_if(ctx: Context, node: Node, gd: GlobalDefs) -> None:
    args = list(node.args)
    every = bool(args) and args[0] == "all"
    if every:
        args.pop(0)
    if not args:
        ctx.error(node, "'vrrp_garp_extra_if' needs a time in seconds (1..86400)")
        return
    index = 1 if every else 0
    value = ctx.value(node, lambda w: to_int(w, 1, GARP_EXTRA_IF_MAX), index)
    if value is not None:
        gd.vrrp_garp_extra_if, gd.vrrp_garp_extra_if_all = value, every


def _vrrp_iptables(ctx: Context, node: Node, gd: GlobalDefs) -> None:
    """Debian's 2.2.7 is built without iptables: it says so and uses nftables instead."""
    ctx.warning(
        node, "iptables not supported, using nftables instead; replace 'vrrp_iptables' with 'nftables'"
    )
    gd.vrrp_iptables = list(node.args)
    if gd.nftables is None:
        gd.nftables = "keepalived"


def _nftables(attr: str, default: str) -> Handler:
    def handle(ctx: Context, node: Node, gd: Any) -> None:
        setattr(gd, attr, node.args[0] if node.args else default)

    return handle


def _max_auto_priority(ctx: Context, node: Node, gd: GlobalDefs) -> None:
    if not node.args:
        gd.max_auto_priority = 99
        return
    value = ctx.value(node, lambda w: to_int(w, -1, 99))
    if value is not None:
        gd.max_auto_priority = value


def _lvs_flush_on_stop(ctx: Context, node: Node, gd: GlobalDefs) -> None:
    if not node.args:
        gd.lvs_flush_on_stop = "full"
    elif node.args[0] == "VS":
        gd.lvs_flush_on_stop = "vs"
    else:
        ctx.error(node, f"invalid value for '{node.keyword}': expected nothing or VS, got '{node.args[0]}'")


def _lvs_timeouts(ctx: Context, node: Node, gd: GlobalDefs) -> None:
    values: dict[str, int] = {}
    args = list(node.args)
    i = 0
    while i < len(args):
        name = args[i]
        if name not in ("tcp", "tcpfin", "udp"):
            ctx.error(node, f"'lvs_timeouts': unknown option '{name}' (expected tcp, tcpfin or udp)")
            i += 1
            continue
        if i + 1 >= len(args):
            break
        value = ctx.value(node, lambda w: to_int(w, 0, LVS_TIMEOUT_MAX), i + 1)
        if value is not None:
            values[name] = value
        i += 2
    if not values:
        ctx.error(node, "'lvs_timeouts' needs at least one of tcp SECS, tcpfin SECS, udp SECS")
        return
    gd.lvs_timeouts = LvsTimeouts(**values)


def _multicast(word: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    addr = to_ip(word)
    if not addr.is_multicast:
        raise BadValue(f"a multicast address, got {addr}")
    return addr


_SYNC_DAEMON_OPTIONS: dict[str, Callable[[str], object]] = {
    "id": lambda w: to_int(w, 0, 255),
    "maxlen": lambda w: to_int(w, 1, 65507),
    "port": lambda w: to_int(w, 1, 65535),
    "ttl": lambda w: to_int(w, 1, 255),
    "group": _multicast,
}


def _lvs_sync_daemon(ctx: Context, node: Node, gd: GlobalDefs) -> None:
    """``IF [[inst] VI] [id N] [maxlen N] [port N] [ttl N] [group IP]``; a bad option is dropped."""
    if not node.args:
        ctx.error(node, "'lvs_sync_daemon' needs an interface")
        return
    options: dict[str, Any] = {}
    instance: str | None = None
    i = 1
    args = node.args
    while i < len(args):
        word = args[i]
        if word in _SYNC_DAEMON_OPTIONS and i + 1 < len(args):
            value = ctx.value(node, _SYNC_DAEMON_OPTIONS[word], i + 1)
            if value is not None:
                options["syncid" if word == "id" else word] = value
            i += 2
        elif word == "inst" and i + 1 < len(args):
            instance, i = args[i + 1], i + 2
        else:
            instance, i = word, i + 1
    gd.lvs_sync_daemon = LvsSyncDaemon(interface=args[0], instance=instance, **options)


def _dynamic_interfaces(ctx: Context, node: Node, gd: GlobalDefs) -> None:
    if node.args and node.args[0] != "allow_if_changes":
        ctx.error(
            node, f"invalid value for 'dynamic_interfaces': expected allow_if_changes, got '{node.args[0]}'"
        )
        return
    gd.dynamic_interfaces = True
    gd.dynamic_interfaces_allow_if_changes = bool(node.args)


def _rx_bufs_policy(ctx: Context, node: Node, gd: GlobalDefs) -> None:
    if not node.args:
        ctx.error(node, "'vrrp_rx_bufs_policy' needs MTU, ADVERT or a size in bytes")
        return
    word = node.args[0]
    if word.upper() in ("MTU", "ADVERT"):
        gd.vrrp_rx_bufs_policy, gd.vrrp_rx_bufs_size = word.upper(), None
        if len(node.args) > 1 and node.args[1].upper() in ("MTU", "ADVERT"):
            ctx.warning(node, f"cannot set both MTU and ADVERT, ignoring {node.args[1]}")
        return
    size = ctx.value(node, lambda w: to_int(w, 0, UINT_MAX))
    if size is not None:
        gd.vrrp_rx_bufs_policy, gd.vrrp_rx_bufs_size = "SIZE", size


def _script_user(ctx: Context, node: Node, gd: GlobalDefs) -> None:
    """Checked against the host in ``finish``; the location is kept for that diagnostic."""
    if not node.args:
        ctx.error(node, "'script_user' needs a user name")
        return
    group = node.args[1] if len(node.args) > 1 else None
    gd.script_user = ScriptUserRef(user=node.args[0], group=group, file=node.file, line=node.line)


def to_umask(word: str) -> int:
    """``umask NUMBER|BITS``: a C number (0x.., 0.., decimal) or IWGRP|IWOTH style names."""
    if word[:1].isdigit():
        try:
            value = int(word, 0) if not (word.startswith("0") and word[1:].isdigit()) else int(word, 8)
        except ValueError:
            raise BadValue(f"a umask number or bits like IWGRP|IWOTH, got '{word}'") from None
        if value > 0o777:
            raise BadValue(f"a umask no larger than 0777, got '{word}'")
        return value
    value = 0
    for bit in (b.strip() for b in word.split("|")):
        if bit not in UMASK_BITS:
            raise BadValue(f"umask bits among {', '.join(UMASK_BITS)}, got '{bit}'")
        value |= UMASK_BITS[bit]
    return value


def _umask(ctx: Context, node: Node, gd: GlobalDefs) -> None:
    """``IWGRP | IWOTH`` with spaces is several words: join them back."""
    if not node.args:
        ctx.error(node, "'umask' needs a value")
        return
    try:
        gd.umask = to_umask("".join(node.args))
    except BadValue as exc:
        ctx.error(node, f"invalid value for 'umask': expected {exc}")


def _include_check(ctx: Context, node: Node, gd: GlobalDefs) -> None:
    """The reader applies it to later includes (``lexer``); here its words are checked and kept."""
    current = frozenset(INCLUDE_CHECK_LETTERS[name] for name in gd.include_check)
    checks, problems = include_check_set(current, node.args)
    for problem in problems:
        ctx.error(node, problem)
    gd.include_check = [name for name in INCLUDE_CHECKS if INCLUDE_CHECK_LETTERS[name] in checks]


def _reload_check_config(ctx: Context, node: Node, gd: GlobalDefs) -> None:
    gd.reload_check_config = True
    gd.reload_check_config_log = node.args[0] if node.args else None


def _reload_file(ctx: Context, node: Node, gd: GlobalDefs) -> None:
    gd.reload_file = node.args[0] if node.args else DEFAULT_RELOAD_FILE


def _snmp_rfc(ctx: Context, node: Node, gd: GlobalDefs) -> None:
    gd.enable_snmp_rfcv2 = gd.enable_snmp_rfcv3 = True


def _str_required(attr: str, what: str) -> Handler:
    def handle(ctx: Context, node: Node, gd: Any) -> None:
        if not node.args:
            ctx.error(node, f"'{node.keyword}' needs {what}")
            return
        setattr(gd, attr, node.args[0])

    return handle


def _uint(attr: str, lo: int = 0, hi: int = UINT_MAX) -> Handler:
    return set_int(attr, lo, hi)


def _process_table() -> dict[str, Handler]:
    """The per-process scheduling keywords, the same for vrrp, checker and bfd."""
    table: dict[str, Handler] = {}
    for proc in ("vrrp", "checker", "bfd"):
        table[f"{proc}_priority"] = set_int(f"{proc}_priority", -20, 19)
        table[f"{proc}_rt_priority"] = set_rt_priority(f"{proc}_rt_priority")
        table[f"{proc}_no_swap"] = set_bare_flag(f"{proc}_no_swap")
        table[f"{proc}_cpu_affinity"] = set_cpu_list(f"{proc}_cpu_affinity")
        table[f"{proc}_rlimit_rttime"] = _uint(f"{proc}_rlimit_rttime")
        table[f"{proc}_rlimit_rtime"] = _uint(f"{proc}_rlimit_rttime")  # accepted silently by 2.2.7
        table[f"{proc}_process_name"] = _str_required(f"{proc}_process_name", "a name")
    return table


def _rcv_bufs_table() -> dict[str, Handler]:
    table: dict[str, Handler] = {}
    for name in (
        "vrrp_netlink_cmd_rcv_bufs",
        "vrrp_netlink_monitor_rcv_bufs",
        "lvs_netlink_cmd_rcv_bufs",
        "lvs_netlink_monitor_rcv_bufs",
        "process_monitor_rcv_bufs",
    ):
        table[name] = _uint(name)
        table[f"{name}_force"] = set_flag(f"{name}_force")
    return table


def _fifo_table() -> dict[str, Handler]:
    table: dict[str, Handler] = {}
    for prefix in ("", "vrrp_", "lvs_"):
        table[f"{prefix}notify_fifo"] = set_fifo(f"{prefix}notify_fifo")
        table[f"{prefix}notify_fifo_script"] = set_script(f"{prefix}notify_fifo_script")
    return table


GLOBAL_DEFS_TABLE: Mapping[str, Handler] = {
    # identity and e-mail
    "router_id": _router_id,
    "notification_email": _notification_email,
    "notification_email_from": _str_required("notification_email_from", "an address"),
    "smtp_server": _smtp_server,
    "smtp_helo_name": _smtp_helo_name,
    "smtp_connect_timeout": set_uint_clamped("smtp_connect_timeout", SECS_MAX, 1),
    "smtp_alert": _optional_bool("smtp_alert"),
    "smtp_alert_vrrp": _optional_bool("smtp_alert_vrrp"),
    "smtp_alert_checker": _optional_bool("smtp_alert_checker"),
    "no_email_faults": set_bare_flag("no_email_faults"),
    "checker_log_all_failures": set_flag("checker_log_all_failures"),
    "no_checker_emails": set_flag("no_checker_emails"),
    "rs_init_notifies": set_flag("rs_init_notifies"),
    # scripts
    "script_user": _script_user,
    "enable_script_security": set_bare_flag("enable_script_security"),
    "startup_script": set_script("startup_script"),
    "startup_script_timeout": set_int("startup_script_timeout", 1, 1000),
    "shutdown_script": set_script("shutdown_script"),
    "shutdown_script_timeout": set_int("shutdown_script_timeout", 1, 1000),
    "umask": _umask,
    # FIFOs
    **_fifo_table(),
    "fifo_write_vrrp_states_on_reload": set_bare_flag("fifo_write_vrrp_states_on_reload"),
    "vrrp_notify_priority_changes": set_flag("vrrp_notify_priority_changes"),
    # VRRP defaults
    "vrrp_version": _vrrp_version,
    "vrrp_mcast_group4": _mcast_group("vrrp_mcast_group4", 4),
    "vrrp_mcast_group6": _mcast_group("vrrp_mcast_group6", 6),
    "vrrp_strict": set_bare_flag("vrrp_strict"),
    "vrrp_skip_check_adv_addr": set_bare_flag("vrrp_skip_check_adv_addr"),
    "vrrp_check_unicast_src": set_bare_flag("vrrp_check_unicast_src"),
    "vrrp_down_timer_adverts": set_int("vrrp_down_timer_adverts", 1, 100),
    "vrrp_lower_prio_no_advert": set_flag("vrrp_lower_prio_no_advert"),
    "vrrp_higher_prio_send_advert": set_flag("vrrp_higher_prio_send_advert"),
    "log_unknown_vrids": set_bare_flag("log_unknown_vrids"),
    "default_interface": _str_required("default_interface", "an interface name"),
    # GARP / NA
    "vrrp_garp_master_delay": set_int("vrrp_garp_master_delay", 0, SECS_MAX),
    "vrrp_garp_master_repeat": set_uint_clamped("vrrp_garp_master_repeat", UINT_MAX, 1),
    "vrrp_garp_master_refresh": set_int("vrrp_garp_master_refresh", 0, UINT_MAX),
    "vrrp_garp_master_refresh_repeat": set_uint_clamped("vrrp_garp_master_refresh_repeat", UINT_MAX, 1),
    "vrrp_garp_lower_prio_delay": set_int("vrrp_garp_lower_prio_delay", 0, SECS_MAX),
    "vrrp_garp_lower_prio_repeat": set_int("vrrp_garp_lower_prio_repeat", 0, UINT_MAX),
    "vrrp_garp_interval": set_timer_range("vrrp_garp_interval", TIMER_MIN, TIMER_MAX),
    "vrrp_gna_interval": set_timer_range("vrrp_gna_interval", TIMER_MIN, TIMER_MAX),
    "vrrp_min_garp": set_flag("vrrp_min_garp"),
    "vrrp_garp_extra_if": _garp_extra_if,
    "vrrp_vmac_garp_intvl": deprecated("vrrp_garp_extra_if", _garp_extra_if),
    # firewall
    "vrrp_iptables": _vrrp_iptables,
    "nftables": _nftables("nftables", "keepalived"),
    "nftables_priority": set_int("nftables_priority", INT_MIN, INT_MAX),
    "nftables_counters": set_bare_flag("nftables_counters"),
    "nftables_ifindex": set_bare_flag("nftables_ifindex"),
    "nftables_ipvs": _nftables("nftables_ipvs", "keepalived_ipvs"),
    "nftables_ipvs_priority": set_int("nftables_ipvs_priority", INT_MIN, INT_MAX),
    "nftables_ipvs_start_fwmark": set_int("nftables_ipvs_start_fwmark", 1, UINT_MAX),
    "disable_local_igmp": set_bare_flag("disable_local_igmp"),
    # start-up and scheduling
    "vrrp_startup_delay": set_timer_range("vrrp_startup_delay", 0.001, TIMER_MAX),
    "max_auto_priority": _max_auto_priority,
    "min_auto_priority_delay": set_int("min_auto_priority_delay", 1, 10_000_000),
    **_process_table(),
    "lvs_process_name": _str_required("checker_process_name", "a name"),
    "process_names": set_bare_flag("process_names"),
    "process_name": _str_required("process_name", "a name"),
    # LVS
    "lvs_flush": set_bare_flag("lvs_flush"),
    "lvs_flush_on_stop": _lvs_flush_on_stop,
    "lvs_flush_onstop": _lvs_flush_on_stop,  # 2.2.7 accepts the old spelling silently
    "lvs_timeouts": _lvs_timeouts,
    "lvs_sync_daemon": _lvs_sync_daemon,
    # interfaces and netlink
    "dynamic_interfaces": _dynamic_interfaces,
    **_rcv_bufs_table(),
    "vrrp_rx_bufs_policy": _rx_bufs_policy,
    "vrrp_rx_bufs_multiplier": set_int("vrrp_rx_bufs_multiplier", 1, UINT_MAX),
    "vmac_prefix": _str_required("vmac_prefix", "a prefix"),
    "vmac_addr_prefix": _str_required("vmac_addr_prefix", "a prefix"),
    # SNMP and D-Bus
    "snmp_socket": _str_required("snmp_socket", "a socket name such as udp:1.2.3.4:705"),
    "enable_snmp_vrrp": set_bare_flag("enable_snmp_vrrp"),
    "enable_snmp_keepalived": set_bare_flag("enable_snmp_vrrp"),  # old name, accepted silently by 2.2.7
    "enable_snmp_checker": set_bare_flag("enable_snmp_checker"),
    "enable_snmp_rfc": _snmp_rfc,
    "enable_snmp_rfcv2": set_bare_flag("enable_snmp_rfcv2"),
    "enable_snmp_rfcv3": set_bare_flag("enable_snmp_rfcv3"),
    "enable_traps": set_bare_flag("enable_traps"),
    "enable_dbus": set_bare_flag("enable_dbus"),
    "dbus_service_name": _str_required("dbus_service_name", "a service name"),
    # reload, dumps, parsing
    "reload_check_config": _reload_check_config,
    "reload_time_file": _str_required("reload_time_file", "a file path"),
    "reload_repeat": set_bare_flag("reload_repeat"),
    "reload_file": _reload_file,
    "config_save_dir": _str_required("config_save_dir", "a directory"),
    "tmp_config_directory": _str_required("tmp_config_directory", "a directory"),
    "include_check": _include_check,
    "random_seed": set_int("random_seed", 0, UINT_MAX),
    "data_use_instance": set_flag("data_use_instance"),
}


# --- root handlers ---


def _global_defs(ctx: Context, node: Node, config: Config) -> None:
    """Several global_defs blocks are allowed: keepalived applies them in order."""
    if require_block(ctx, node):
        dispatch(ctx, node, GLOBAL_DEFS_TABLE, config.global_defs)


def _root(handler: Handler) -> RootHandler:
    def handle(ctx: Context, node: Node, config: Config) -> None:
        handler(ctx, node, config.global_defs)

    return handle


def _root_once(attr: str) -> RootHandler:
    """``net_namespace`` and ``instance``: a second definition is ignored with a warning."""

    def handle(ctx: Context, node: Node, config: Config) -> None:
        if not node.args:
            ctx.error(node, f"'{node.keyword}' needs a name")
            return
        if getattr(config.global_defs, attr) is not None:
            ctx.warning(node, f"duplicate {node.keyword} definition {node.args[0]} - ignoring")
            return
        setattr(config.global_defs, attr, node.args[0])

    return handle


def _net_namespace_ipvs(ctx: Context, node: Node, config: Config) -> None:
    config.global_defs.net_namespace_ipvs = node.args[0] if node.args else ""


ROOT_HANDLERS: dict[str, RootHandler] = {
    "global_defs": _global_defs,
    "net_namespace": _root_once("net_namespace"),
    "net_namespace_ipvs": _net_namespace_ipvs,
    "namespace_with_ipsets": _root(set_bare_flag("namespace_with_ipsets")),
    "use_pid_dir": _root(set_bare_flag("use_pid_dir")),
    "instance": _root_once("instance"),
    "child_wait_time": _root(set_int("child_wait_time", 0, UINT_MAX)),
    "linkbeat_use_polling": _root(set_bare_flag("linkbeat_use_polling")),
}


# --- whole-file and host checks ---


def finish(ctx: Context, config: Config, host: Host) -> None:
    """Cross-checks that need the whole file and the host (e.g. smtp_server must resolve)."""
    check_smtp_server(ctx, config.global_defs, host)
    check_script_security(ctx, config, host, script_files_for(host))


def check_smtp_server(ctx: Context, gd: GlobalDefs, host: Host) -> None:
    """keepalived -t: "Invalid smtp server NAME PORT" for a name it cannot resolve (exit non-zero).

    A warning, not an error: it fails ``config check`` like keepalived's ``-t``,
    but at run time keepalived logs it and runs on, and so must we: a node
    whose DNS is not up yet at boot must still hold its VIPs (the notifier
    resolves the name again for each mail).
    """
    server = gd.smtp_server
    if server is None or _is_ip(server.host) or host.resolves(server.host):
        return
    ctx.diagnostics.warning(
        server, f"Invalid smtp server {server.host} {server.port}: the name does not resolve"
    )


def _is_ip(word: str) -> bool:
    try:
        ipaddress.ip_address(word)
    except ValueError:
        return False
    return True
