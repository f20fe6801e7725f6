"""lvs_sync_daemon: master while the named instance is MASTER, backup otherwise; daemon codec round trip."""

from __future__ import annotations

from pathlib import Path

from services.lvs.core.sync import SYNC_BACKUP, SYNC_MASTER, DaemonSpec, sync_plan, wanted
from services.lvs.kernel import ipvs_codec as codec
from shared.config.load import load
from shared.events import VrrpState

SCENARIO = Path(__file__).parents[2] / "kernel" / "inside" / "scenario.conf"


def test_plan_takes_syncid_from_the_instance_vrid() -> None:
    plan = sync_plan(load(SCENARIO).config)
    assert plan is not None and plan.instance == "VI_1"
    assert plan.base.syncid == 51 and plan.base.interface == "eth0" and plan.base.port == 8848


def test_master_only_while_master() -> None:
    plan = sync_plan(load(SCENARIO).config)
    assert [d.state for d in wanted(plan, None)] == [SYNC_BACKUP]
    assert [d.state for d in wanted(plan, VrrpState.MASTER)] == [SYNC_MASTER]
    assert [d.state for d in wanted(plan, VrrpState.FAULT)] == [SYNC_BACKUP]
    assert wanted(None, VrrpState.MASTER) == set()


def test_kernel_defaults_match_unset_options() -> None:
    want = DaemonSpec(SYNC_MASTER, "eth0", 51)
    running = DaemonSpec(SYNC_MASTER, "eth0", 51, maxlen=1472, ttl=1, group="224.0.0.81")
    assert want.matches(running)
    assert not DaemonSpec(SYNC_MASTER, "eth0", 52).matches(running)
    assert not DaemonSpec(SYNC_MASTER, "eth0", 51, ttl=3).matches(running)


def test_daemon_round_trip() -> None:
    spec = DaemonSpec(SYNC_BACKUP, "eth1", 7, maxlen=1400, port=9000, ttl=2, group="239.1.2.3")
    payload = codec.daemon_attrs_bytes(spec)
    assert codec.decode_daemon(payload) == spec
