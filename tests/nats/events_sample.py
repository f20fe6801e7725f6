"""One example of every event type, shared by the bus tests."""

from __future__ import annotations

from shared.events import (
    CheckerKind,
    Event,
    Family,
    GroupState,
    InstanceControl,
    InstanceEvent,
    InstanceEventKind,
    InstanceState,
    OutboxOverflow,
    PoolEvent,
    PoolEventKind,
    RealServerHealth,
    ReloadTrigger,
    ServiceReload,
    SplitBrain,
    TrackerKind,
    TrackerResult,
    TransitionReason,
    VrrpState,
    fwmark_virtual_server_key,
    real_server_key,
    virtual_server_key,
)

VS = virtual_server_key("172.16.0.100", 80, "tcp")
RS = real_server_key("192.168.200.2", 8080)


def instance(name: str = "VI_1", state: VrrpState = VrrpState.MASTER, n: int = 0) -> InstanceState:
    return InstanceState(
        instance=name,
        vrid=51,
        interface="eth0",
        family=Family.INET,
        version=3,
        state=state,
        previous=VrrpState.BACKUP,
        base_priority=100,
        effective_priority=100 - n % 50,
        reason=TransitionReason.MASTER_DOWN_TIMER,
        detail=f"event {n}",
        master_address="10.0.0.1",
        vips=("10.0.0.100/24", "2001:db8::100/64"),
        group="G1",
    )


def every_event() -> list[Event]:
    return [
        instance(),
        GroupState(
            group="G1",
            state=VrrpState.MASTER,
            previous=VrrpState.BACKUP,
            members=("VI_1", "VI_2"),
            reason=TransitionReason.SYNC_GROUP,
        ),
        InstanceControl(
            instance="VI_1",
            action="maintenance",
            requested_by="alice@lb1",
            base_priority=100,
            maintenance_until=1_900_000_000_000_000_000,
        ),
        SplitBrain(
            instance="VI_1",
            vrid=51,
            interface="eth0",
            peer="10.0.0.2",
            peer_priority=100,
            own_priority=150,
            count=3,
            suppressed=2,
        ),
        InstanceEvent(
            instance="VI_1",
            vrid=51,
            interface="eth0",
            kind=InstanceEventKind.PRIORITY_CHANGED,
            state=VrrpState.MASTER,
            effective_priority=90,
            previous_priority=150,
        ),
        TrackerResult(
            tracker="chk haproxy.sh",
            kind=TrackerKind.SCRIPT,
            ok=False,
            weight=-20,
            contribution=-20,
            exit_code=1,
            detail="exit 1",
        ),
        RealServerHealth(
            virtual=VS,
            real=RS,
            up=False,
            checker=CheckerKind.HTTP_GET,
            detail="status 503",
            latency_ms=1.5,
            weight=3,
            consecutive_failures=3,
        ),
        PoolEvent(
            virtual=fwmark_virtual_server_key(7),
            kind=PoolEventKind.QUORUM_DOWN,
            real=RS,
            weight=0,
            weight_sum=1,
            quorum=2,
            hysteresis=1,
            quorum_up=False,
            sorry_active=True,
        ),
        ServiceReload(
            service="checker",
            ok=False,
            trigger=ReloadTrigger.SIGNAL,
            config="/etc/keepalived/keepalived.conf",
            errors=("/etc/keepalived/keepalived.conf:12: error: unknown keyword 'virtual_router'",),
        ),
        OutboxOverflow(service="vrrp", dropped=12, bound=10_000, detail="NATS could not take events"),
    ]
