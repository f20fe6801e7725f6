"""Whole-file LVS checks and inheritance, run once every root block has been read.

keepalived prints most of these without a line number ("Virtual server
[10.0.0.1]:tcp:80: no protocol set"); we pin each to the block or keyword that
caused it.  Resolution fills every inherited field, so services read plain values:
virtual_server -> real_server -> checker -> per-checker default (docs/keepalived.md#health-checks).
"""

from __future__ import annotations

from shared.config.check_kinds import expand_smtp_hosts
from shared.config.context import Context
from shared.config.host import Host
from shared.config.model import Config
from shared.config.model_lvs import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_DELAY_BEFORE_RETRY,
    DEFAULT_PROTOCOL,
    DEFAULT_RETRY,
    BfdCheck,
    Checker,
    DnsCheck,
    FileCheck,
    HttpGetCheck,
    LvsMethod,
    MiscCheck,
    RealServer,
    VirtualServer,
    VirtualServerGroup,
    Where,
)

TRACK_FILE_ATTRS = ("track_files", "track_file", "vrrp_track_files")
BFD_ATTRS = ("bfd_instances", "bfd")


def finish(ctx: Context, config: Config, host: Host) -> None:
    groups = config.lvs.virtual_server_groups
    track_files = defined_names(config, TRACK_FILE_ATTRS)
    bfds = defined_names(config, BFD_ATTRS)
    kept: list[VirtualServer] = []
    for vs in config.lvs.virtual_servers:
        group = groups.get(vs.group) if vs.group is not None else None
        if vs.group is not None and group is None:
            continue  # keepalived silently drops a service whose group is not defined
        _check_service(ctx, vs, group)
        _check_real_servers(ctx, vs, group)
        if not vs.real_servers:
            ctx.diagnostics.warning(vs.where, f"virtual server {vs.name} has no real servers - ignoring it")
            continue
        _check_quorum(ctx, vs)
        for rs in vs.real_servers:
            expand_smtp_hosts(rs)
            rs.checkers = [c for c in rs.checkers if _check_refs(ctx, c, host, track_files, bfds)]
            _resolve(vs, rs)
            if config.global_defs.checker_log_all_failures:  # keepalived ORs the two at every failure
                for check in rs.checkers:
                    check.log_all_failures = True
        kept.append(vs)
    config.lvs.virtual_servers = kept


def defined_names(config: Config, attrs: tuple[str, ...]) -> set[str] | None:
    """Names of blocks another domain parses (track_file, bfd_instance); None when it keeps none we know."""
    for holder in (config.vrrp, config.global_defs, config):
        for attr in attrs:
            value = getattr(holder, attr, None)
            if isinstance(value, dict):
                return {str(k) for k in value}
            if isinstance(value, list | tuple | set):
                return {str(getattr(v, "name", v)) for v in value}
    return None


def _is_fwmark(vs: VirtualServer, group: VirtualServerGroup | None) -> bool:
    return vs.fwmark is not None or (group is not None and not group.has_addresses)


def _at(vs: VirtualServer, keyword: str) -> Where:
    line = vs.lines.get(keyword)
    return Where(file=vs.where.file, line=line) if line else vs.where


def _check_service(ctx: Context, vs: VirtualServer, group: VirtualServerGroup | None) -> None:
    """Protocol, port, scheduler and method defaults, each with keepalived's warning."""
    if _is_fwmark(vs, group):
        if vs.protocol is not None:
            ctx.diagnostics.warning(
                _at(vs, "protocol"), f"{vs.name}: protocol is ignored for fwmark services"
            )
    elif vs.protocol is None and (vs.address is not None or group is not None):
        ctx.diagnostics.warning(vs.where, f"{vs.name}: no protocol set - defaulting to {DEFAULT_PROTOCOL}")
        vs.protocol = DEFAULT_PROTOCOL
    if vs.address is not None and vs.port == 0 and vs.persistence_timeout is None:
        ctx.diagnostics.warning(vs.where, f"{vs.name}: a service without a port must be persistent")
    if vs.lb_algo is None:
        ctx.diagnostics.warning(vs.where, f"{vs.name}: no lb_algo/lvs_sched set - using wlc")
        vs.lb_algo = "wlc"
    if vs.lvs_method is None:
        ctx.diagnostics.warning(vs.where, f"{vs.name}: no lb_kind/lvs_method set - using NAT")
        vs.lvs_method = LvsMethod()
    if vs.ops and vs.protocol != "UDP":
        ctx.diagnostics.warning(_at(vs, "ops"), f"{vs.name}: ops needs protocol UDP - ignored")
        vs.ops = False


def _family(vs: VirtualServer, group: VirtualServerGroup | None) -> int | None:
    if vs.address is not None:
        return vs.address.version
    if group is not None:
        versions = {e.first.version for e in group.entries if e.first is not None}
        return versions.pop() if len(versions) == 1 else None
    return None


def _check_real_servers(ctx: Context, vs: VirtualServer, group: VirtualServerGroup | None) -> None:
    """Drop family mismatches and duplicates; DR/TUN ports follow the service's."""
    family = _family(vs, group)
    seen: set[tuple[object, int | None]] = set()
    kept: list[RealServer] = []
    for rs in vs.real_servers:
        method = rs.lvs_method or vs.lvs_method or LvsMethod()
        if method.kind != "TUN" and family is not None and rs.address.version != family:
            ctx.diagnostics.error(
                rs.where_end or rs.where, f"real server {rs.address}: family differs from {vs.name}"
            )
            continue
        _check_port(ctx, vs, rs, method)
        key = (rs.address, rs.port)
        if key in seen:
            ctx.diagnostics.warning(rs.where, f"{vs.name}: real server {rs.address} {rs.port} is duplicated")
            continue
        seen.add(key)
        kept.append(rs)
    vs.real_servers = kept


def _check_port(ctx: Context, vs: VirtualServer, rs: RealServer, method: LvsMethod) -> None:
    if method.kind != "NAT" and rs.port is not None and vs.port and rs.port != vs.port:
        ctx.diagnostics.warning(
            rs.where, f"{method.kind} real server port {rs.port} != {vs.name} port - using {vs.port}"
        )
        rs.port = vs.port
    if rs.port is None and vs.port:
        rs.port = vs.port


def _check_quorum(ctx: Context, vs: VirtualServer) -> None:
    """keepalived caps quorum at the total weight, then hysteresis below quorum."""
    total = sum(vs.weight if rs.weight is None else rs.weight for rs in vs.real_servers)
    if vs.quorum > total:
        ctx.diagnostics.warning(
            _at(vs, "quorum"), f"{vs.name}: quorum {vs.quorum} > total weight {total} - using {total}"
        )
        vs.quorum = total
    if vs.hysteresis >= vs.quorum and ("hysteresis" in vs.lines or "quorum" in vs.lines):
        limit = max(vs.quorum - 1, 0)
        ctx.diagnostics.warning(
            _at(vs, "hysteresis"),
            f"{vs.name}: hysteresis {vs.hysteresis} >= quorum {vs.quorum}, using {limit}",
        )
        vs.hysteresis = limit


def _check_refs(
    ctx: Context, check: Checker, host: Host, track_files: set[str] | None, bfds: set[str] | None
) -> bool:
    """Names a checker points at must exist: track_file blocks, bfd_instances, script users."""
    if isinstance(check, FileCheck) and track_files is not None and check.track_file not in track_files:
        ctx.diagnostics.error(check.where_ref or check.where, f"track_file {check.track_file} not found")
        if check.where_end is not None:
            ctx.diagnostics.warning(check.where_end, "FILE_CHECK has no usable track_file - ignored")
        return False
    if isinstance(check, BfdCheck) and bfds is not None and check.name not in bfds:
        ctx.diagnostics.error(check.where_ref or check.where, f"BFD_CHECK: no bfd_instance {check.name}")
        return False
    if isinstance(check, MiscCheck) and check.user is not None and not host.has_user(check.user):
        ctx.diagnostics.error(check.where_user or check.where, f"MISC_CHECK: no user '{check.user}'")
        return False
    return True


def _resolve(vs: VirtualServer, rs: RealServer) -> None:
    """Fill what the file left to inheritance: virtual_server -> real_server -> checker."""
    rs.weight = vs.weight if rs.weight is None else rs.weight
    rs.lvs_method = rs.lvs_method or vs.lvs_method
    rs.inhibit_on_failure = vs.inhibit_on_failure if rs.inhibit_on_failure is None else rs.inhibit_on_failure
    rs.alpha = vs.alpha if rs.alpha is None else rs.alpha
    rs.virtualhost = rs.virtualhost or vs.virtualhost
    for attr in ("connect_timeout", "retry", "delay_before_retry", "warmup"):
        if getattr(rs, attr) is None:
            setattr(rs, attr, getattr(vs, attr))
    rs.delay_loop = vs.delay_loop if rs.delay_loop is None else rs.delay_loop
    for check in rs.checkers:
        _resolve_check(rs, check)


def _resolve_check(rs: RealServer, check: Checker) -> None:
    check.connect_ip = check.connect_ip or rs.address
    check.connect_port = check.connect_port or rs.port
    check.alpha = rs.alpha if check.alpha is None else check.alpha
    check.delay_loop = check.delay_loop or rs.delay_loop
    delay_loop = check.delay_loop or 0.0
    check.warmup = _first(check.warmup, rs.warmup, delay_loop)
    check.connect_timeout = _first(check.connect_timeout, rs.connect_timeout, DEFAULT_CONNECT_TIMEOUT)
    retry_default = 3 if isinstance(check, DnsCheck) else 0 if isinstance(check, MiscCheck) else DEFAULT_RETRY
    check.retry = _first_int(check.retry, rs.retry, retry_default)
    dbr_default = (
        3.0
        if isinstance(check, HttpGetCheck)
        else delay_loop
        if isinstance(check, DnsCheck)
        else DEFAULT_DELAY_BEFORE_RETRY
    )
    check.delay_before_retry = _first(check.delay_before_retry, rs.delay_before_retry, dbr_default)
    if isinstance(check, HttpGetCheck):
        check.virtualhost = check.virtualhost or rs.virtualhost
    if isinstance(check, MiscCheck) and check.misc_timeout is None:
        check.misc_timeout = delay_loop


def _first(*values: float | None) -> float:
    return next(float(v) for v in values if v is not None)


def _first_int(*values: int | None) -> int:
    return next(v for v in values if v is not None)
