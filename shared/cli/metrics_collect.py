"""What ``lifeline metrics`` exports, built per scrape from the KV state and status replies.

Names follow the keepalived exporters so existing dashboards and alerts carry
over: cafebazaar/mehdy ``keepalived-exporter`` for VRRP (``keepalived_up``,
``keepalived_vrrp_state{iname,intf,vrid,ip_address}`` with keepalived's state
numbers, ``keepalived_advertisements_received_total`` ..., ``keepalived_script_status``), and the
``keepalived_lvs_*`` prefix of gen2brain's exporter for real servers.  Where
keepalived has no counterpart (effective priority, drops by reason, check
latency, pool quorum, notifier backlog, bus counters) the name says so: a
``keepalived_`` name when it describes keepalived-visible state, ``lifeline_``
for lifeline's own machinery.  The mapping table is in docs/operations.md.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import msgspec
import nats.errors
from nats.aio.client import Client

from services.vrrp.core.keepalived_dumps import DumpStats, stats_from_counters
from shared.cli.fleet import StateEntry, read_state
from shared.cli.metrics_text import Family, render
from shared.cli.restarts_file import ServiceRestarts, read_restarts
from shared.events import (
    InstanceState,
    PoolEvent,
    RealServerHealth,
    Service,
    ServiceStatus,
    TrackerResult,
    VrrpState,
    status_subject,
)

VRRP_STATE_NUMBER = {
    VrrpState.INIT: 0,
    VrrpState.BACKUP: 1,
    VrrpState.MASTER: 2,
    VrrpState.FAULT: 3,
    VrrpState.STOP: 4,
    VrrpState.DELETED: 5,
}
"""keepalived's numbering for 0-3 (docs/keepalived.md#signals), as the exporters export it; 4-5 are ours."""


EXPORTER_COUNTERS: tuple[tuple[str, str, str], ...] = (
    ("keepalived_become_master_total", "become_master", "transitions to MASTER"),
    ("keepalived_release_master_total", "release_master", "transitions out of MASTER"),
    ("keepalived_packet_length_errors_total", "packet_len_err", "adverts dropped for their length"),
    ("keepalived_advertisements_interval_errors_total", "advert_interval_err", "adverts, wrong interval"),
    ("keepalived_ip_ttl_errors_total", "ip_ttl_err", "adverts dropped for their TTL / hop limit"),
    ("keepalived_invalid_type_received_total", "invalid_type_rcvd", "packets of a type other than advert"),
    ("keepalived_address_list_errors_total", "addr_list_err", "adverts whose VIP list differs"),
    ("keepalived_authentication_invalid_total", "invalid_authtype", "adverts with an unsupported auth"),
    ("keepalived_authentication_mismatch_total", "authtype_mismatch", "adverts with another auth type"),
    ("keepalived_authentication_failure_total", "auth_failure", "adverts failing authentication"),
    ("keepalived_priority_zero_received_total", "pri_zero_rcvd", "priority-0 adverts received"),
    ("keepalived_priority_zero_sent_total", "pri_zero_sent", "priority-0 adverts sent"),
)
"""mehdy/keepalived-exporter's per-instance counters (iname, intf, vrid): name, ``DumpStats`` field, help.

The same numbers keepalived-compat mode writes to keepalived.stats/.json
(``services/vrrp/core/keepalived_dumps.py`` maps lifeline's drop reasons to
keepalived's causes), so alerts written against the exporter keep working.
"""


def _families() -> dict[str, Family]:
    spec = [
        ("keepalived_up", "gauge", "1 when the vrrp service of this node answers its status endpoint"),
        ("lifeline_service_up", "gauge", "1 when the service answers its status endpoint on this node"),
        ("keepalived_vrrp_state", "gauge", "VRRP state: 0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT, 4 STOP"),
        ("keepalived_vrrp_effective_priority", "gauge", "priority after trackers"),
        ("keepalived_vrrp_base_priority", "gauge", "configured priority"),
        ("keepalived_vrrp_transitions_total", "counter", "state transitions since the service started"),
        ("keepalived_advertisements_received_total", "counter", "VRRP advertisements received"),
        ("keepalived_advertisements_sent_total", "counter", "VRRP advertisements sent"),
        ("keepalived_vrrp_drops_total", "counter", "received VRRP packets dropped, by reason"),
        ("keepalived_gratuitous_arp_sent_total", "counter", "gratuitous ARP / unsolicited NA sent"),
        ("keepalived_script_status", "gauge", "tracker result: 1 ok, 0 failed"),
        ("keepalived_script_contribution", "gauge", "priority a tracker adds (negative: removes)"),
        ("keepalived_lvs_rs_up", "gauge", "real server health: 1 up, 0 down"),
        ("keepalived_lvs_rs_weight", "gauge", "real server weight as last reported by its checker"),
        ("keepalived_lvs_rs_check_latency_seconds", "gauge", "duration of the last health check"),
        ("keepalived_lvs_rs_consecutive_failures", "gauge", "failed checks in a row"),
        ("keepalived_lvs_vs_weight_sum", "gauge", "sum of live real server weights of a virtual server"),
        ("keepalived_lvs_vs_quorum_up", "gauge", "1 when the virtual server has quorum"),
        ("keepalived_lvs_vs_sorry_active", "gauge", "1 when the sorry server is in use"),
        ("keepalived_lvs_vs_real_servers", "gauge", "real servers configured for the virtual server"),
        ("keepalived_lvs_vs_real_servers_alive", "gauge", "configured real servers whose checks pass"),
        (
            "keepalived_lvs_vs_kernel_real_servers",
            "gauge",
            "destinations the IPVS table holds for the virtual service (live reals or the sorry server)",
        ),
        ("lifeline_notifier_backlog", "gauge", "events not yet delivered to a sink (pending + unacked)"),
        ("lifeline_notifier_delivered_total", "counter", "events delivered by a sink"),
        ("lifeline_notifier_dead_lettered_total", "counter", "events a sink gave up on"),
        ("lifeline_bus_published_total", "counter", "events acknowledged by NATS, per service"),
        ("lifeline_bus_queued", "gauge", "events waiting in a service's outbox"),
        ("lifeline_bus_dropped_total", "counter", "events dropped by outbox overflow"),
        ("lifeline_bus_stored", "gauge", "events in a service's durable outbox file, not yet acknowledged"),
        ("lifeline_bus_failing", "gauge", "1 while publishing fails (NATS away, JetStream refusing writes)"),
        ("lifeline_bus_errors_total", "counter", "failed publish attempts"),
        (
            "lifeline_state_age_seconds",
            "gauge",
            "age of the newest KV entry per kind (heartbeats stop: it grows)",
        ),
        ("lifeline_bus_up", "gauge", "1 when the metrics endpoint is connected to NATS"),
        *((name, "counter", text) for name, _, text in EXPORTER_COUNTERS),
        ("keepalived_gratuitous_arp_delay_total", "counter", "garp_master_delay, seconds (exporter's name)"),
        ("lifeline_service_restarts_total", "counter", "times lifeline up restarted a service that died"),
        ("lifeline_service_restart_backoff_seconds", "gauge", "delay lifeline up gave the last death"),
        ("lifeline_service_last_exit_status", "gauge", "exit status of the last death (negative: signal)"),
    ]
    return {name: Family(name, kind, text) for name, kind, text in spec}


def _int(value: object) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def add_state(fams: dict[str, Family], entries: list[StateEntry], now: float) -> None:
    """Gauges from the KV bucket: they exist even while the producing service is stopped."""
    newest: dict[str, float] = {}
    for e in entries:
        ev = e.event
        newest[e.kind] = min(newest.get(e.kind, float("inf")), max(0.0, now - ev.ts / 1e9))
        match ev:
            case InstanceState():
                base = {"iname": ev.instance, "intf": ev.interface, "vrid": str(ev.vrid)}
                for vip in ev.vips or ("",):
                    state = VRRP_STATE_NUMBER[ev.state]
                    fams["keepalived_vrrp_state"].add(state, **base, ip_address=vip_label(vip))
                fams["keepalived_vrrp_effective_priority"].add(ev.effective_priority, **base)
                fams["keepalived_vrrp_base_priority"].add(ev.base_priority, **base)
            case TrackerResult():
                fams["keepalived_script_status"].add(1 if ev.ok else 0, name=ev.tracker, kind=ev.kind.value)
                fams["keepalived_script_contribution"].add(ev.contribution, name=ev.tracker)
            case RealServerHealth() if e.kind == "check":
                labels = {"virtual": ev.virtual, "real": ev.real, "checker": ev.checker.value}
                fams["keepalived_lvs_rs_up"].add(1 if ev.up else 0, **labels)
                if ev.weight is not None:
                    fams["keepalived_lvs_rs_weight"].add(ev.weight, virtual=ev.virtual, real=ev.real)
                if ev.latency_ms is not None:
                    fams["keepalived_lvs_rs_check_latency_seconds"].add(ev.latency_ms / 1000, **labels)
                fams["keepalived_lvs_rs_consecutive_failures"].add(ev.consecutive_failures, **labels)
            case PoolEvent():
                fams["keepalived_lvs_vs_weight_sum"].add(ev.weight_sum, virtual=ev.virtual)
                fams["keepalived_lvs_vs_quorum_up"].add(1 if ev.quorum_up else 0, virtual=ev.virtual)
                fams["keepalived_lvs_vs_sorry_active"].add(1 if ev.sorry_active else 0, virtual=ev.virtual)
            case _:
                pass
    for kind, age in sorted(newest.items()):
        fams["lifeline_state_age_seconds"].add(round(age, 3), kind=kind)


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def add_vrrp(fams: dict[str, Family], detail: dict[str, Any]) -> None:
    """Counters only the running vrrp service knows (they restart with it, as counters may)."""
    for name, raw in _dict(detail.get("instances")).items():
        inst = _dict(raw)
        counters = _dict(inst.get("counters"))
        base = {"iname": str(name), "intf": str(inst.get("interface", "")), "vrid": str(inst.get("vrid", ""))}
        fams["keepalived_vrrp_transitions_total"].add(_int(counters.get("transitions")), **base)
        fams["keepalived_gratuitous_arp_sent_total"].add(_int(counters.get("garps_sent")), **base)
        with_state = {**base, "state": str(inst.get("state", ""))}
        fams["keepalived_advertisements_received_total"].add(
            _int(counters.get("adverts_received")), **with_state
        )
        fams["keepalived_advertisements_sent_total"].add(_int(counters.get("adverts_sent")), **with_state)
        add_exporter_counters(fams, stats_from_counters(counters), base)
        if "garp_delay" in inst:
            fams["keepalived_gratuitous_arp_delay_total"].add(round(_int(inst.get("garp_delay"))), **base)
    for raw in detail.get("receivers") or []:
        rx = _dict(raw)
        for reason, count in _dict(rx.get("drops")).items():
            fams["keepalived_vrrp_drops_total"].add(
                _int(count),
                intf=str(rx.get("interface", "")),
                mode=str(rx.get("mode", "")),
                reason=str(reason),
            )


def add_exporter_counters(fams: dict[str, Family], stats: DumpStats, labels: dict[str, str]) -> None:
    for name, field, _ in EXPORTER_COUNTERS:
        fams[name].add(getattr(stats, field), **labels)


def vip_label(vip: str) -> str:
    """A VIP as the exporter's ``ip_address`` label has it (keepalived's text: no /32 or /128)."""
    host, _, prefix = vip.partition("/")
    return host if prefix == ("128" if ":" in host else "32") else vip


def add_lvs(fams: dict[str, Family], detail: dict[str, Any]) -> None:
    """Pool sizes from the lvs service: configured, alive, and what the kernel really holds."""
    for virtual, raw in _dict(detail.get("pools")).items():
        pool = _dict(raw)
        reals = _dict(pool.get("reals"))
        alive = sum(1 for r in reals.values() if _dict(r).get("alive") is True)
        fams["keepalived_lvs_vs_real_servers"].add(len(reals), virtual=str(virtual))
        fams["keepalived_lvs_vs_real_servers_alive"].add(alive, virtual=str(virtual))
        for service, count in _dict(pool.get("kernel_dests")).items():
            fams["keepalived_lvs_vs_kernel_real_servers"].add(
                _int(count), virtual=str(virtual), service=str(service)
            )


def add_notifier(fams: dict[str, Family], detail: dict[str, Any]) -> None:
    for sink, raw in _dict(detail.get("sinks")).items():
        row = _dict(raw)
        for stream, backlog in _dict(row.get("backlog")).items():
            b = _dict(backlog)
            if "pending" in b:
                total = _int(b.get("pending")) + _int(b.get("unacked"))
                fams["lifeline_notifier_backlog"].add(total, sink=str(sink), stream=str(stream))
        fams["lifeline_notifier_delivered_total"].add(_int(row.get("delivered")), sink=str(sink))
        fams["lifeline_notifier_dead_lettered_total"].add(_int(row.get("dead_lettered")), sink=str(sink))


def add_status(fams: dict[str, Family], statuses: dict[str, ServiceStatus | None]) -> None:
    """Per-service liveness, bus counters and service detail."""
    for service, st in statuses.items():
        fams["lifeline_service_up"].add(0 if st is None else 1, service=service)
        if service == Service.VRRP:
            fams["keepalived_up"].add(0 if st is None else 1)
        if st is None:
            continue
        if st.bus is not None:
            fams["lifeline_bus_published_total"].add(st.bus.published, service=service)
            fams["lifeline_bus_queued"].add(st.bus.queued, service=service)
            fams["lifeline_bus_dropped_total"].add(st.bus.dropped, service=service)
            fams["lifeline_bus_stored"].add(st.bus.stored, service=service)
            fams["lifeline_bus_failing"].add(1 if st.bus.failing else 0, service=service)
            fams["lifeline_bus_errors_total"].add(st.bus.errors, service=service)
        if service == Service.VRRP:
            add_vrrp(fams, st.detail)
        elif service == Service.NOTIFIER:
            add_notifier(fams, st.detail)
        elif service == Service.LVS:
            add_lvs(fams, st.detail)


def add_restarts(fams: dict[str, Family], restarts: dict[str, ServiceRestarts]) -> None:
    """What ``lifeline up`` says of its restarts (``shared.cli.restarts_file``), per supervised process."""
    for name, row in restarts.items():
        fams["lifeline_service_restarts_total"].add(row.restarts, service=name)
        fams["lifeline_service_restart_backoff_seconds"].add(row.backoff, service=name)
        if row.last_exit is not None:
            fams["lifeline_service_last_exit_status"].add(row.last_exit, service=name)


def build(
    entries: list[StateEntry],
    statuses: dict[str, ServiceStatus | None],
    now: float,
    bus_up: bool = True,
    restarts: dict[str, ServiceRestarts] | None = None,
) -> str:
    """The whole exposition for one node (pure: the tests feed it directly)."""
    fams = _families()
    fams["lifeline_bus_up"].add(1 if bus_up else 0)
    add_state(fams, entries, now)
    add_status(fams, statuses)
    add_restarts(fams, restarts or {})
    return render(list(fams.values()))


class Collector:
    """Scrapes the bus for one node; ``nc`` may be None (or disconnected) while NATS is away."""

    def __init__(
        self, nc: Client | None, node: str, timeout: float = 1.0, restarts: Path | None = None
    ) -> None:
        self.nc = nc
        self.node = node
        self.timeout = timeout
        self.restarts = restarts
        """``lifeline up``'s restarts file (``restarts_path``), read at each scrape, bus or not."""

    async def _status(self, service: str) -> ServiceStatus | None:
        assert self.nc is not None
        try:
            msg = await self.nc.request(status_subject(self.node, service), b"", timeout=self.timeout)
            return msgspec.json.decode(msg.data, type=ServiceStatus)
        except (nats.errors.Error, TimeoutError, msgspec.DecodeError):
            return None

    async def scrape(self) -> str:
        now = time.time()
        restarts = read_restarts(self.restarts) if self.restarts is not None else {}
        if self.nc is None or not self.nc.is_connected:
            return build([], {}, now, bus_up=False, restarts=restarts)
        services = [s.value for s in Service]
        entries = await read_state(self.nc, timeout=self.timeout)
        statuses = await asyncio.gather(*(self._status(s) for s in services))
        mine = [e for e in entries if e.node == self.node]
        return build(mine, dict(zip(services, statuses, strict=True)), now, restarts=restarts)
