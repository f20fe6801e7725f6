"""keepalived 2.2.7's state dumps, rendered from what the vrrp service knows (pure: no IO, no clock).

Why: tools written against keepalived (mehdy/keepalived-exporter, checkmk's
agent plugin, home-made scripts) signal the pid in keepalived's pid file and
read ``/tmp/keepalived.json`` (the JSON signal), ``/tmp/keepalived.data``
(SIGUSR1) or ``/tmp/keepalived.stats`` (SIGUSR2).  After a swap to lifeline
they keep working only if these files say the same things in the same shape.
The layouts below were read from the files keepalived 2.2.7 writes
(docs/operations.md, "Tools that read keepalived's state"); the fields the
exporters parse are exact, the rest as faithful as lifeline knows them.
What lifeline has no counterpart for (file descriptors, netlink buffers,
SNMP) is left out rather than invented; the parsers skip what is absent.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence

import msgspec

STATE_NUMBERS = {"INIT": 0, "BACKUP": 1, "MASTER": 2, "FAULT": 3}
"""keepalived's state numbers (the JSON ``state``/``wantstate``); the text dump writes the names."""


class DumpStats(msgspec.Struct, frozen=True, kw_only=True):
    """One instance's counters, in keepalived's JSON order (``stats`` object, and the .stats file)."""

    advert_rcvd: int = 0
    advert_sent: int = 0
    become_master: int = 0
    release_master: int = 0
    packet_len_err: int = 0
    advert_interval_err: int = 0
    ip_ttl_err: int = 0
    invalid_type_rcvd: int = 0
    addr_list_err: int = 0
    invalid_authtype: int = 0
    authtype_mismatch: int = 0
    auth_failure: int = 0
    pri_zero_rcvd: int = 0
    pri_zero_sent: int = 0


DROP_CAUSES: Mapping[str, str] = {
    "bad_length": "packet_len_err",
    "ip_tot_len": "packet_len_err",
    "bad_ttl": "ip_ttl_err",
    "ttl_out_of_range": "ip_ttl_err",
    "bad_type": "invalid_type_rcvd",
    "interval_mismatch": "advert_interval_err",
    "addr_list_mismatch": "addr_list_err",
    "unsupported_ah": "invalid_authtype",
    "auth_type_mismatch": "authtype_mismatch",
    "auth_failure": "auth_failure",
    "ah_replay": "auth_failure",
}
"""lifeline's drop reasons (``services.vrrp.packet.DropReason``) → keepalived's per-cause stats counter.

A reason keepalived does not count (a bad checksum, a wrong version, an
unknown unicast source) has no entry: keepalived drops those uncounted too.
"""


def stats_from_counters(counters: Mapping[str, object]) -> DumpStats:
    """keepalived's counters from an instance's ``Counters`` (as ``msgspec.to_builtins`` gives them)."""

    def num(key: str, source: Mapping[str, object] = counters) -> int:
        value = source.get(key, 0)
        return value if isinstance(value, int) else 0

    drops = counters.get("drops")
    per_cause: dict[str, int] = {}
    if isinstance(drops, Mapping):
        for reason, cause in DROP_CAUSES.items():
            per_cause[cause] = per_cause.get(cause, 0) + num(reason, drops)
    return DumpStats(
        advert_rcvd=num("adverts_received"),
        advert_sent=num("adverts_sent"),
        become_master=num("become_master"),
        release_master=num("release_master"),
        pri_zero_rcvd=num("pri_zero_received"),
        pri_zero_sent=num("pri_zero_sent"),
        **per_cause,
    )


class DumpInstance(msgspec.Struct, frozen=True, kw_only=True):
    """What the dumps say about one VRRP instance (the vrrp service fills it from a running instance)."""

    iname: str
    interface: str
    vrid: int
    version: int
    state: str  # INIT | BACKUP | MASTER | FAULT
    wantstate: str
    base_priority: int
    effective_priority: int
    adver_int: float  # seconds
    master_adver_int: float
    last_transition: float  # wall-clock seconds
    src_ip: str
    vips: tuple[str, ...]  # keepalived's text form (``vip_text``)
    evips: tuple[str, ...] = ()
    vmac_ifname: str = ""
    master_router: str | None = None  # BACKUP: the master we follow
    master_priority: int = 0
    multicast_group: str | None = None  # None: unicast
    unicast_peers: tuple[str, ...] = ()
    accept: bool = True
    nopreempt: bool = False
    preempt_delay: float = 0.0
    dont_track_primary: bool = False
    skip_check_adv_addr: bool = False
    strict_mode: bool = False
    down_timer_adverts: int = 3
    garp_delay: float = 5.0
    garp_rep: int = 5
    garp_refresh: float = 0.0
    garp_refresh_rep: int = 1
    garp_lower_prio_delay: float = 5.0
    garp_lower_prio_rep: int = 5
    lower_prio_no_advert: bool = False
    higher_prio_send_advert: bool = False
    auth_type: int = 0  # 0 none, 1 PASS, 2 AH
    track_scripts: tuple[tuple[str, int], ...] = ()  # (name, weight)
    track_script_commands: tuple[str, ...] = ()
    stats: DumpStats = DumpStats()


class DumpScript(msgspec.Struct, frozen=True, kw_only=True):
    """One ``vrrp_script`` as the .data file shows it; ``ok`` None: no result yet."""

    name: str
    command: str
    interval: float
    timeout: float
    weight: int
    rise: int
    fall: int
    ok: bool | None
    instances: tuple[tuple[str, int], ...] = ()  # (instance, weight)


def vip_text(address: str, dev: str, *, scope: str = "global", brd: str | None = None,
             label: str | None = None, installed: bool = False) -> str:  # fmt: skip
    """An address as keepalived lists it: ``10.0.0.1 dev eth0 scope global set`` (/32 and /128 unwritten).

    ``installed``: keepalived appends ``set`` while it holds the address (MASTER).
    """
    host, _, prefix = address.partition("/")
    full = "128" if ":" in host else "32"
    text = host if prefix in ("", full) else f"{host}/{prefix}"
    if brd is not None:
        text += f" brd {brd}"
    text += f" dev {dev} scope {scope}"
    if label is not None:
        text += f" label {label}"
    return text + (" set" if installed else "")


# --------------------------------------------------------------------------- JSON


def _json_data(i: DumpInstance) -> dict[str, object]:
    """The ``data`` object, keys in keepalived 2.2.7's order."""
    return {
        "iname": i.iname,
        "dont_track_primary": int(i.dont_track_primary),
        "skip_check_adv_addr": int(i.skip_check_adv_addr),
        "strict_mode": int(i.strict_mode),
        "vmac_ifname": i.vmac_ifname,
        "ifp_ifname": i.interface,
        "master_priority": i.master_priority,
        "last_transition": round(i.last_transition, 6),
        "garp_delay": round(i.garp_delay),
        "garp_refresh": round(i.garp_refresh),
        "garp_rep": i.garp_rep,
        "garp_refresh_rep": i.garp_refresh_rep,
        "garp_lower_prio_delay": round(i.garp_lower_prio_delay),
        "garp_lower_prio_rep": i.garp_lower_prio_rep,
        "lower_prio_no_advert": int(i.lower_prio_no_advert),
        "higher_prio_send_advert": int(i.higher_prio_send_advert),
        "vrid": i.vrid,
        "base_priority": i.base_priority,
        "effective_priority": i.effective_priority,
        "vipset": i.state == "MASTER",
        "promote_secondaries": False,
        "adver_int": i.adver_int,
        "master_adver_int": i.master_adver_int,
        "accept": int(i.accept),
        "nopreempt": i.nopreempt,
        "preempt_delay": round(i.preempt_delay),
        "state": STATE_NUMBERS[i.state],
        "wantstate": STATE_NUMBERS[i.wantstate],
        "version": i.version,
        "smtp_alert": False,
        "notify_deleted": False,
        "vips": list(i.vips),
        "evips": list(i.evips),
        "track_script": list(i.track_script_commands),
        "auth_type": i.auth_type,
    }


def render_json(instances: Iterable[DumpInstance]) -> bytes:
    """``/tmp/keepalived.json``: one line, an array of ``{"data": ..., "stats": ...}``, then a newline."""
    rows = [{"data": _json_data(i), "stats": msgspec.to_builtins(i.stats)} for i in instances]
    return msgspec.json.encode(rows) + b"\n"


# --------------------------------------------------------------------------- stats


def render_stats(instances: Iterable[DumpInstance]) -> bytes:
    """``/tmp/keepalived.stats``: the counters per instance, in keepalived's sections and indents."""
    lines: list[str] = []
    for i in instances:
        s = i.stats
        lines += [
            f"VRRP Instance: {i.iname}",
            "  Advertisements:",
            f"    Received: {s.advert_rcvd}",
            f"    Sent: {s.advert_sent}",
            f"  Became master: {s.become_master}",
            f"  Released master: {s.release_master}",
            "  Packet Errors:",
            f"    Length: {s.packet_len_err}",
            f"    TTL: {s.ip_ttl_err}",
            f"    Invalid Type: {s.invalid_type_rcvd}",
            f"    Advertisement Interval: {s.advert_interval_err}",
            f"    Address List: {s.addr_list_err}",
            "  Authentication Errors:",
            f"    Invalid Type: {s.invalid_authtype}",
            f"    Type Mismatch: {s.authtype_mismatch}",
            f"    Failure: {s.auth_failure}",
            "  Priority Zero:",
            f"    Received: {s.pri_zero_rcvd}",
            f"    Sent: {s.pri_zero_sent}",
        ]
    return "".join(f"{line}\n" for line in lines).encode()


# --------------------------------------------------------------------------- data


def _bool(flag: bool, yes: str = "true", no: str = "false") -> str:
    return yes if flag else no


def wall_text(seconds: float) -> str:
    """keepalived's timestamp: ``1796652161.353279 (Mon Dec  7 14:02:41.353279 2026)``, local time."""
    whole = int(seconds)
    micros = round((seconds - whole) * 1e6)
    if micros == 1_000_000:
        whole, micros = whole + 1, 0
    t = time.localtime(whole)
    return f"{whole}.{micros:06d} ({time.strftime('%a %b %e %H:%M:%S', t)}.{micros:06d} {t.tm_year})"


def _interval_ms(seconds: float) -> int:
    return round(seconds * 1000)


def _instance_lines(i: DumpInstance) -> list[str]:
    lines = [f" VRRP Instance = {i.iname}", f"   VRRP Version = {i.version}", f"   State = {i.state}"]
    if i.state == "BACKUP" and i.master_router is not None:
        lines += [
            f"   Master router = {i.master_router}",
            f"   Master priority = {i.master_priority}",
            f"   Master advert int = {i.master_adver_int:.2f} sec",
        ]
    lines += [
        "   Flags: none",
        f"   Wantstate = {i.wantstate}",
        f"   Last transition = {wall_text(i.last_transition)}",
        f"   Interface = {i.interface}",
    ]
    if i.vmac_ifname:
        lines.append(f"   VMAC interface = {i.vmac_ifname}")
    lines.append(f"   Using src_ip = {i.src_ip}")
    if i.multicast_group is not None:
        lines.append(f"   Multicast address {i.multicast_group}")
    else:
        lines += ["   Unicast Peer :"] + [f"     {peer}" for peer in i.unicast_peers]
    lines += [
        f"   Gratuitous ARP delay = {round(i.garp_delay)}",
        f"   Gratuitous ARP repeat = {i.garp_rep}",
        f"   Gratuitous ARP refresh = {round(i.garp_refresh)}",
        f"   Gratuitous ARP refresh repeat = {i.garp_refresh_rep}",
        f"   Gratuitous ARP lower priority delay = {round(i.garp_lower_prio_delay)}",
        f"   Gratuitous ARP lower priority repeat = {i.garp_lower_prio_rep}",
        f"   Down timer adverts = {i.down_timer_adverts}",
        f"   Send advert after receive lower priority advert = {_bool(not i.lower_prio_no_advert)}",
        f"   Send advert after receive higher priority advert = {_bool(i.higher_prio_send_advert)}",
        f"   Virtual Router ID = {i.vrid}",
        f"   Priority = {i.base_priority}",
        f"   Effective priority = {i.effective_priority}",
        f"   Total priority = {i.effective_priority}",
        f"   Advert interval = {_interval_ms(i.adver_int)} milli-sec",
    ]
    if i.state == "BACKUP":
        lines.append(f"   Master advert interval = {_interval_ms(i.master_adver_int)} milli-sec")
    lines += [
        f"   Accept = {_bool(i.accept, 'enabled', 'disabled')}",
        f"   Preempt = {_bool(not i.nopreempt, 'enabled', 'disabled')}",
    ]
    if i.preempt_delay:
        lines.append(f"   Preempt delay = {i.preempt_delay:g} secs")
    lines.append("   Promote_secondaries = disabled")
    if i.vips:
        lines += [f"   Virtual IP ({len(i.vips)}):"] + [f"     {v}" for v in i.vips]
    if i.evips:
        lines += ["   Virtual IP Excluded :"] + [f"     {v}" for v in i.evips]
    if i.track_scripts:
        lines += ["   Tracked scripts :"] + [f"     {n} weight {w}" for n, w in i.track_scripts]
    return lines


def _script_lines(s: DumpScript) -> list[str]:
    lines = [
        f" VRRP Script = {s.name}",
        f"   Command = {s.command}",
        f"   Interval = {s.interval:g} sec",
        f"   Timeout = {s.timeout:g} sec",
        f"   Weight = {s.weight}",
        f"   Rise = {s.rise}",
        f"   Fall = {s.fall}",
        f"   Status = {'GOOD' if s.ok else 'BAD'}",
        "   VRRP instances :",
        "   Tracking instances :",
    ]
    lines += [f"     {name}, weight {weight}" for name, weight in s.instances]
    return [*lines, "   State = idle"]


def render_data(
    instances: Sequence[DumpInstance], scripts: Sequence[DumpScript], *, router_id: str, namespace: str | None
) -> bytes:
    """``/tmp/keepalived.data``: global definitions, VRRP topology, VRRP scripts (keepalived's order).

    The section lines matter to parsers: an instance's block ends at the next
    line that is not indented, so the scripts' ``State = idle`` is never read
    as an instance state.
    """
    lines = [
        "------< Global definitions >------",
        f" Network namespace = {namespace or '(default)'}",
        f" Router ID = {router_id}",
        "------< VRRP Topology >------",
    ]
    for i in instances:
        lines += _instance_lines(i)
    if scripts:
        lines.append("------< VRRP Scripts >------")
        for s in scripts:
            lines += _script_lines(s)
    return "".join(f"{line}\n" for line in lines).encode()
