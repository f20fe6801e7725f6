"""keepalived-compat mode's formatter and pid files: keepalived 2.2.7's layouts, read by the exporter's rules.

The expected texts are what keepalived 2.2.7 wrote in the lab for the same
instance (tests/lab/test_keepalived_compat.py runs both side by side).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from services.vrrp.core.keepalived_dumps import (
    DumpInstance,
    DumpScript,
    DumpStats,
    render_data,
    render_json,
    render_stats,
    stats_from_counters,
    vip_text,
    wall_text,
)
from services.vrrp.core.trackers import TrackerBook
from services.vrrp.keepalived_compat import (
    DUMP_FILES,
    KeepalivedCompat,
    PidFileTaken,
    claim_pid_file,
    release_pid_file,
)
from shared.cli.metrics_collect import build
from shared.config.model import Config
from shared.events import ServiceStatus
from shared.lab.wait import await_until
from shared.safe_files import UnsafeFile
from shared.settings import KeepalivedCompatSettings
from tests.support.keepalived_dump_parsers import parse_data, parse_json, parse_stats

KEEPALIVED_227_DATA_KEYS = [
    "iname", "dont_track_primary", "skip_check_adv_addr", "strict_mode", "vmac_ifname", "ifp_ifname",
    "master_priority", "last_transition", "garp_delay", "garp_refresh", "garp_rep", "garp_refresh_rep",
    "garp_lower_prio_delay", "garp_lower_prio_rep", "lower_prio_no_advert", "higher_prio_send_advert",
    "vrid", "base_priority", "effective_priority", "vipset", "promote_secondaries", "adver_int",
    "master_adver_int", "accept", "nopreempt", "preempt_delay", "state", "wantstate", "version",
    "smtp_alert", "notify_deleted", "vips", "evips", "track_script", "auth_type",
]  # fmt: skip
"""The ``data`` keys of /tmp/keepalived.json as keepalived 2.2.7 writes them, in its order."""

KEEPALIVED_227_STATS_KEYS = [
    "advert_rcvd", "advert_sent", "become_master", "release_master", "packet_len_err", "advert_interval_err",
    "ip_ttl_err", "invalid_type_rcvd", "addr_list_err", "invalid_authtype", "authtype_mismatch",
    "auth_failure", "pri_zero_rcvd", "pri_zero_sent",
]  # fmt: skip

KEEPALIVED_227_STATS = """\
VRRP Instance: VI_1
  Advertisements:
    Received: 22
    Sent: 17
  Became master: 1
  Released master: 0
  Packet Errors:
    Length: 2
    TTL: 3
    Invalid Type: 0
    Advertisement Interval: 0
    Address List: 0
  Authentication Errors:
    Invalid Type: 0
    Type Mismatch: 0
    Failure: 4
  Priority Zero:
    Received: 1
    Sent: 0
"""


def master(**changes: object) -> DumpInstance:
    base = DumpInstance(
        iname="VI_1",
        interface="eth0",
        vrid=42,
        version=3,
        state="MASTER",
        wantstate="MASTER",
        base_priority=200,
        effective_priority=210,
        adver_int=0.2,
        master_adver_int=0.2,
        last_transition=1796652161.353279,
        src_ip="10.0.0.1",
        vips=("10.0.0.100 dev eth0 scope global set", "10.0.0.101/24 dev eth0 scope global label eth0:1 set"),
        evips=("10.0.0.102 dev eth0 scope global set",),
        multicast_group="224.0.0.18",
        track_scripts=(("chk", 10),),
        track_script_commands=("'/bin/true'",),
        stats=DumpStats(advert_rcvd=22, advert_sent=17, become_master=1, packet_len_err=2, ip_ttl_err=3,
                        auth_failure=4, pri_zero_rcvd=1),
    )  # fmt: skip
    return msgspec.structs.replace(base, **changes)


def test_stats_file_is_keepalived_227_layout_byte_for_byte() -> None:
    assert render_stats([master()]).decode() == KEEPALIVED_227_STATS
    assert parse_stats(KEEPALIVED_227_STATS)["VI_1"] == {
        "advert_rcvd": 22, "advert_sent": 17, "become_master": 1, "release_master": 0, "packet_len_err": 2,
        "ip_ttl_err": 3, "invalid_type_rcvd": 0, "advert_interval_err": 0, "addr_list_err": 0,
        "invalid_authtype": 0, "authtype_mismatch": 0, "auth_failure": 4, "pri_zero_rcvd": 1,
        "pri_zero_sent": 0,
    }  # fmt: skip


def test_json_has_keepalived_227_keys_in_order_and_state_numbers() -> None:
    raw = render_json([master(), master(iname="VI_2", state="BACKUP", wantstate="BACKUP")])
    assert raw.endswith(b"]\n") and raw.count(b"\n") == 1  # one line, as keepalived writes it
    rows = parse_json(raw.decode())
    assert [list(r) for r in rows] == [["data", "stats"]] * 2
    assert list(rows[0]["data"]) == KEEPALIVED_227_DATA_KEYS
    assert list(rows[0]["stats"]) == KEEPALIVED_227_STATS_KEYS
    assert [(r["data"]["state"], r["data"]["vipset"]) for r in rows] == [(2, True), (1, False)]
    assert rows[0]["data"]["vips"][1] == "10.0.0.101/24 dev eth0 scope global label eth0:1 set"
    assert rows[0]["data"]["last_transition"] == 1796652161.353279
    assert rows[0]["stats"]["pri_zero_rcvd"] == 1


def test_data_file_reads_as_the_exporter_reads_keepalived() -> None:
    backup = master(iname="VI_2", vrid=43, state="BACKUP", wantstate="BACKUP", master_router="10.0.0.9")
    script = DumpScript(name="chk", command="'/bin/true'", interval=1, timeout=0, weight=10, rise=1, fall=1,
                        ok=True, instances=(("VI_1", 10),))  # fmt: skip
    text = render_data([master(), backup], [script], router_id="a", namespace=None).decode()
    instances, scripts = parse_data(text)
    assert instances["VI_1"] == {
        "state": 2, "wantstate": 2, "intf": "eth0", "Gratuitous ARP delay": 5, "Virtual Router ID": 42,
        "vips": list(master().vips),
        "evips": ["10.0.0.102 dev eth0 scope global set"],
    }  # fmt: skip
    assert (instances["VI_2"]["state"], instances["VI_2"]["Virtual Router ID"]) == (1, 43)
    assert scripts == {"chk": {"status": "GOOD", "state": "idle"}}
    assert "   Master router = 10.0.0.9\n   Master priority = 0\n   Master advert int = 0.20 sec\n" in text
    assert "   Advert interval = 200 milli-sec\n" in text


def test_data_file_scripts_follow_a_section_line() -> None:
    """Without the section line the exporter reads the script's ``State = idle`` as the instance's."""
    script = DumpScript(name="chk", command="x", interval=1, timeout=0, weight=0, rise=1, fall=1, ok=None)
    text = render_data([master()], [script], router_id="a", namespace="blue").decode()
    assert parse_data(text)[1] == {"chk": {"status": "BAD", "state": "idle"}}
    assert " Network namespace = blue\n" in text
    with pytest.raises(ValueError, match="unknown state 'idle'"):
        parse_data(text.replace("------< VRRP Scripts >------\n", ""))


def test_vip_text_is_keepalived_s() -> None:
    assert vip_text("10.0.0.1/32", "eth0", installed=True) == "10.0.0.1 dev eth0 scope global set"
    assert vip_text("10.0.0.1/24", "eth0", label="eth0:1") == "10.0.0.1/24 dev eth0 scope global label eth0:1"
    assert vip_text("fd00::1/128", "vrrp.42") == "fd00::1 dev vrrp.42 scope global"
    assert vip_text("fd00::1/64", "eth0", scope="link") == "fd00::1/64 dev eth0 scope link"
    assert (
        vip_text("10.0.0.1/24", "eth0", brd="10.0.0.255")
        == "10.0.0.1/24 brd 10.0.0.255 dev eth0 scope global"
    )


def test_wall_text_is_keepalived_s_timestamp() -> None:
    ts = time.mktime((2026, 12, 7, 14, 2, 41, 0, 0, -1)) + 0.353279
    assert wall_text(ts) == f"{int(ts)}.353279 (Mon Dec  7 14:02:41.353279 2026)"


def test_stats_from_counters_maps_drop_reasons_to_keepalived_causes() -> None:
    counters = {
        "adverts_received": 5, "adverts_sent": 6, "become_master": 2, "release_master": 1,
        "pri_zero_received": 1, "pri_zero_sent": 3,
        "drops": {"bad_length": 1, "ip_tot_len": 2, "bad_ttl": 3, "ttl_out_of_range": 4, "bad_type": 5,
                  "interval_mismatch": 6, "addr_list_mismatch": 7, "unsupported_ah": 8,
                  "auth_type_mismatch": 9, "auth_failure": 10, "ah_replay": 11, "bad_checksum": 99},
    }  # fmt: skip
    assert stats_from_counters(counters) == DumpStats(
        advert_rcvd=5, advert_sent=6, become_master=2, release_master=1, packet_len_err=3, ip_ttl_err=7,
        invalid_type_rcvd=5, advert_interval_err=6, addr_list_err=7, invalid_authtype=8, authtype_mismatch=9,
        auth_failure=21, pri_zero_rcvd=1, pri_zero_sent=3,
    )  # fmt: skip


def test_metrics_carry_the_exporter_names_after_a_failover() -> None:
    """A backup that took over: exporter names, exporter labels (iname, intf, vrid), keepalived's numbers."""
    counters = {"adverts_received": 40, "adverts_sent": 12, "transitions": 2, "become_master": 1,
                "pri_zero_received": 1, "drops": {"bad_ttl": 2, "auth_failure": 1}}  # fmt: skip
    vrrp = ServiceStatus(
        node="n1",
        service="vrrp",
        boot_id="b",
        detail={
            "instances": {"VI_1": {"interface": "eth0", "vrid": 42, "garp_delay": 5.0, "counters": counters}}
        },
    )
    lines = build([], {"vrrp": vrrp}, time.time()).splitlines()
    labels = '{iname="VI_1",intf="eth0",vrid="42"}'
    for name, value in [
        ("keepalived_become_master_total", 1),
        ("keepalived_release_master_total", 0),
        ("keepalived_priority_zero_received_total", 1),
        ("keepalived_ip_ttl_errors_total", 2),
        ("keepalived_authentication_failure_total", 1),
        ("keepalived_advertisements_interval_errors_total", 0),
        ("keepalived_gratuitous_arp_delay_total", 5),
    ]:
        assert f"{name}{labels} {value}" in lines
    assert "# TYPE keepalived_become_master_total counter" in lines


# --------------------------------------------------------------------------- pid files


@pytest.fixture
def other_process() -> Iterator[int]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def test_pid_file_of_a_live_process_is_never_taken(tmp_path: Path, other_process: int) -> None:
    path = tmp_path / "keepalived.pid"
    path.write_text(f"{other_process}\n")
    with pytest.raises(PidFileTaken, match=f"names running process {other_process} "):
        claim_pid_file(path, 4242)
    assert path.read_text() == f"{other_process}\n"
    release_pid_file(path, 4242)  # not ours: left alone
    assert path.read_text() == f"{other_process}\n"


def test_stale_or_own_pid_file_is_claimed_and_released(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "import os; print(os.getpid())"]
    dead = subprocess.run(argv, capture_output=True, text=True, check=True)
    path = tmp_path / "keepalived.pid"
    path.write_text(dead.stdout)
    claim_pid_file(path, 4242)
    assert path.read_text() == "4242\n" and path.stat().st_mode & 0o777 == 0o644
    claim_pid_file(path, 4242)  # our own: fine (a reload, a second claim)
    release_pid_file(path, 4242)
    assert not path.exists()


def test_pid_file_symlink_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    link = tmp_path / "keepalived.pid"
    link.symlink_to(victim)
    with pytest.raises(UnsafeFile):
        claim_pid_file(link, 4242)
    assert victim.read_text() == "precious\n"


# --------------------------------------------------------------------------- the signal shell


def test_shell_answers_signals_then_ignores_them_after_stop(tmp_path: Path) -> None:
    """Real signals to this process: a dump per signal while running; after stop no file, no death."""
    settings = KeepalivedCompatSettings(
        enabled=True,
        pid_file=str(tmp_path / "keepalived.pid"),
        vrrp_pid_file=str(tmp_path / "keepalived_vrrp.pid"),
        dump_dir=str(tmp_path),
    )
    dumps = {name: tmp_path / name for name in DUMP_FILES.values()}

    async def scenario() -> None:
        compat = KeepalivedCompat(settings, {}, Config, TrackerBook(time.monotonic))
        compat.start()
        try:
            assert {p.read_text() for p in compat.pid_files} == {f"{os.getpid()}\n"}
            for sig, name in DUMP_FILES.items():
                os.kill(os.getpid(), sig)
                await await_until(f"{name} written", dumps[name].exists, 5)
            assert dumps["keepalived.json"].read_text() == "[]\n"
            assert dumps["keepalived.data"].read_text().startswith("------< Global definitions >------\n")
        finally:
            compat.stop()
        assert not any(p.exists() for p in compat.pid_files)
        for path in dumps.values():
            path.unlink()
        for sig in DUMP_FILES:
            os.kill(os.getpid(), sig)  # ignored now: the test process lives on
        await asyncio.sleep(0)
        assert not any(p.exists() for p in dumps.values())

    previous = {sig: signal.getsignal(sig) for sig in DUMP_FILES}
    try:
        asyncio.run(scenario())
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
