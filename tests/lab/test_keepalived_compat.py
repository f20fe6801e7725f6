"""keepalived-compat mode beside the real keepalived 2.2.7: same config, same signals, same answers.

Two segments, each with a master (priority 200, a ``vrrp_script`` adding 10)
and a backup (100): one pair runs keepalived, the other lifeline with
``[keepalived_compat]``.  Each daemon is signalled the exporter's way (the
pid read from its pid file; SIGRTMIN+2, SIGUSR1, SIGUSR2) and its dumps are
read with the exporter's rules (``tests/support/keepalived_dump_parsers.py``).
keepalived writes its dumps to ``$TMPDIR`` (``/tmp`` by default), so each
daemon gets its own directory and nothing lands in the host's ``/tmp``.
Then both masters get SIGTERM and the backups take over: the counters
alerts are written against (become/release master, priority 0 received)
must agree, in the dumps and in ``lifeline metrics``.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nats
import pytest

from services.vrrp.keepalived_compat import SIGJSON
from shared.cli.metrics_collect import Collector
from shared.events import TrackerKind, TrackerResult
from shared.lab.daemon import Daemon, keepalived_binary
from shared.lab.nats import NatsProxy, NatsServer
from shared.lab.segment import Host, Segment
from shared.lab.wait import wait_until
from tests.lab.test_vrrp_service import REPO, Lab, VrrpProc
from tests.support.keepalived_dump_parsers import parse_data, parse_json, parse_stats

pytestmark = [pytest.mark.root, pytest.mark.timeout(90)]

SIGNALS = {SIGJSON: "keepalived.json", signal.SIGUSR1: "keepalived.data", signal.SIGUSR2: "keepalived.stats"}
EXPORTER_DATA = (
    "iname", "ifp_ifname", "vrid", "state", "wantstate", "garp_delay", "vips", "evips", "version",
    "base_priority", "effective_priority", "adver_int", "master_adver_int", "accept",
    "nopreempt", "vipset", "auth_type", "vmac_ifname",
)  # fmt: skip
"""JSON ``data`` fields compared value for value.

Not ``track_script`` (keepalived shows the script's resolved path), nor a
MASTER's ``master_priority`` (keepalived's internal leftover: 0 or its own
priority depending on how it got there; a BACKUP's is compared).
"""
TIMING_STATS = {"advert_rcvd", "advert_sent"}


def config(seg: Segment, role: str, priority: int) -> str:
    return f"""global_defs {{
    router_id {role}
}}
vrrp_script chk {{
    script "/bin/true"
    interval 1
    weight 10
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 42
    priority {priority}
    advert_int 0.2
    version 3
    track_script {{
        chk
    }}
    virtual_ipaddress {{
        {seg.address(100)}/32
        {seg.address(101)}/24 dev eth0 label eth0:1
    }}
    virtual_ipaddress_excluded {{
        {seg.address(102)}/32
    }}
}}
"""


class Side:
    """One daemon of the comparison: where its pid file and dumps are, how to ask it."""

    def __init__(self, seg: Segment, host: Host, work: Path) -> None:
        self.seg, self.host = seg, host
        self.work = work / host.name
        self.dumps = self.work / "tmp"
        self.dumps.mkdir(parents=True)
        self.pid_file = self.work / "keepalived.pid"
        self.vrrp_pid_file = self.work / "keepalived_vrrp.pid"

    def ask(self, sig: int, timeout: float = 10.0) -> str:
        """The exporter's way: the pid from the pid file, the signal, then the file (once it parses whole)."""
        path = self.dumps / SIGNALS[sig]
        path.unlink(missing_ok=True)
        os.kill(int(self.pid_file.read_text()), sig)
        got: list[str] = []

        def whole() -> bool:
            try:
                text = path.read_text()
                (parse_json if sig == SIGJSON else parse_stats if sig == signal.SIGUSR2 else parse_data)(text)
            except (OSError, ValueError, KeyError, IndexError):
                return False
            got[:] = [self.normal(text)]
            return True

        wait_until(f"{self.host.role} to write {path.name}", whole, timeout)
        return got[0]

    def instance(self) -> dict[str, Any]:
        rows = parse_json(self.ask(SIGJSON))
        assert len(rows) == 1
        return dict(rows[0])

    def normal(self, text: str) -> str:
        """The segment's own addresses replaced, so two segments' dumps compare."""
        return text.replace(f"{self.seg.subnet.network_address}"[:-1], "NET.")


def start_keepalived(side: Side, conf: str) -> Daemon:
    path = side.work / "keepalived.conf"
    path.write_text(conf)
    pids = ["-p", str(side.pid_file), "-r", str(side.vrrp_pid_file), "-c", str(side.work / "c.pid")]
    argv = [keepalived_binary(), "-n", "-l", "-D", "-f", str(path), *pids]
    env = {**os.environ, "TMPDIR": str(side.dumps)}
    return Daemon(argv, side.work / "keepalived.log", side.host.name, env=env).start()


class CompatProc(VrrpProc):
    """The vrrp service with a lifeline.toml that turns keepalived-compat mode on."""

    def __init__(self, side: Side, conf: str, workdir: Path, node: str, nats_url: str) -> None:
        super().__init__(side.host, conf, workdir, node, nats_url)
        self.settings = side.work / "lifeline.toml"
        self.settings.write_text(
            "[keepalived_compat]\nenabled = true\n"
            f'pid_file = "{side.pid_file}"\nvrrp_pid_file = "{side.vrrp_pid_file}"\n'
            f'dump_dir = "{side.dumps}"\n'
        )

    def start(self) -> CompatProc:
        argv = [sys.executable, "-m", "services.vrrp", "--config", str(self.conf), "--node", self.node]
        argv += ["--nats", self.nats_url, "--settings", str(self.settings)]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", self.host.name, *argv], cwd=REPO, stdout=log, stderr=subprocess.STDOUT
            )
        return self


@pytest.fixture
def segments(netns_session: None) -> Iterator[tuple[Segment, Segment]]:
    with Segment(["ka", "kb"], observer=False) as k, Segment(["la", "lb"], observer=False) as life:
        yield k, life


def _script_ok(lab: Lab, proc: VrrpProc) -> None:
    """What the checker would publish for ``chk`` (``/bin/true`` succeeds): the tracker result, on the bus."""
    lab.publish_tracker(proc.node, TrackerResult(tracker="chk", kind=TrackerKind.SCRIPT, ok=True, weight=10))


def _scrape(server: NatsServer, node: str) -> list[str]:
    async def once() -> str:
        nc = await nats.connect(server.url)
        try:
            return await Collector(nc, node).scrape()
        finally:
            await nc.close()

    return asyncio.run(once()).splitlines()


def _compare_json(k: dict[str, Any], life: dict[str, Any]) -> None:
    assert list(life) == list(k) == ["data", "stats"]
    assert list(life["data"]) == list(k["data"]) and list(life["stats"]) == list(k["stats"])
    assert {f: life["data"][f] for f in EXPORTER_DATA} == {f: k["data"][f] for f in EXPORTER_DATA}
    same = {s: v for s, v in k["stats"].items() if s not in TIMING_STATS}
    assert {s: v for s, v in life["stats"].items() if s not in TIMING_STATS} == same


def test_same_signals_same_answers_as_keepalived(
    segments: tuple[Segment, Segment], tmp_path: Path, nats_server: NatsServer
) -> None:
    kseg, lseg = segments
    ka, kb = (Side(kseg, h, tmp_path) for h in kseg.hosts)
    la, lb = (Side(lseg, h, tmp_path) for h in lseg.hosts)
    lab = Lab(lseg.hosts, tmp_path, nats_server)
    daemons: list[Daemon] = []
    explain: Callable[[], str] = lambda: lab.logs() + "".join(d.tail(20) for d in daemons)  # noqa: E731
    try:
        daemons.append(start_keepalived(ka, config(kseg, "ka", 200)))
        pla = _lifeline(lab, la, config(lseg, "la", 200))
        wait_until("both masters to hold their VIP", lambda: ka.host.holds(kseg.address(100))
                   and la.host.holds(lseg.address(100)), 15, explain=explain)  # fmt: skip
        daemons.append(start_keepalived(kb, config(kseg, "kb", 100)))
        _lifeline(lab, lb, config(lseg, "lb", 100))
        for side in (kb, lb):  # BACKUP, following a master at 210 (its script has passed)
            wait_until(f"{side.host.role} to follow the master", lambda s=side: s.instance()["data"]
                       ["master_priority"] == 210 and s.instance()["data"]["effective_priority"] == 110,
                       15, explain=explain)  # fmt: skip

        for k, life in ((ka, la), (kb, lb)):
            kj, lj = k.instance(), life.instance()
            _compare_json(kj, lj)
            if k is kb:
                assert lj["data"]["master_priority"] == kj["data"]["master_priority"] == 210
            assert kj["stats"]["advert_sent" if k is ka else "advert_rcvd"] > 0
            assert lj["stats"]["advert_sent" if life is la else "advert_rcvd"] > 0
            k_stats, l_stats = k.ask(signal.SIGUSR2), life.ask(signal.SIGUSR2)
            assert re.sub(r"\d+", "N", l_stats) == re.sub(r"\d+", "N", k_stats)  # the same lines, in order
            assert parse_data(life.ask(signal.SIGUSR1)) == parse_data(k.ask(signal.SIGUSR1))
        assert parse_data(la.ask(signal.SIGUSR1))[1] == {"chk": {"status": "GOOD", "state": "idle"}}
        assert {f.stat().st_mode & 0o777 for f in la.dumps.iterdir()} == {0o600}  # keepalived's mode

        # failover: SIGTERM to both masters (keepalived's priority-0 goodbye, and ours)
        os.kill(int(ka.pid_file.read_text()), signal.SIGTERM)
        pla.signal(signal.SIGTERM)
        wait_until("both backups to take over", lambda: kb.host.holds(kseg.address(100))
                   and lb.host.holds(lseg.address(100)), 15, explain=explain)  # fmt: skip
        assert pla.wait(10) == 0 and not la.pid_file.exists() and not la.vrrp_pid_file.exists()
        kj, lj = kb.instance(), lb.instance()
        _compare_json(kj, lj)
        assert (lj["data"]["state"], lj["stats"]["become_master"], lj["stats"]["pri_zero_rcvd"]) == (2, 1, 1)

        metrics = _scrape(nats_server, lab.node(lb.host))
        labels = '{iname="VI_1",intf="eth0",vrid="42"}'
        for name, stat in [
            ("keepalived_become_master_total", "become_master"),
            ("keepalived_release_master_total", "release_master"),
            ("keepalived_priority_zero_received_total", "pri_zero_rcvd"),
            ("keepalived_ip_ttl_errors_total", "ip_ttl_err"),
            ("keepalived_authentication_failure_total", "auth_failure"),
        ]:
            assert f"{name}{labels} {kj['stats'][stat]}" in metrics, name
        assert f"keepalived_gratuitous_arp_delay_total{labels} {kj['data']['garp_delay']}" in metrics
        vip = (
            f'keepalived_vrrp_state{{iname="VI_1",intf="eth0",ip_address="{lseg.address(100)}",vrid="42"}} 2'
        )
        assert vip in metrics
    except BaseException:
        print(explain())
        raise
    finally:
        lab.close()
        for d in daemons:
            d.kill()


def _lifeline(lab: Lab, side: Side, conf: str) -> VrrpProc:
    proxy = NatsProxy(side.host.name, lab.server.port)
    lab.proxies.append(proxy)
    proc = CompatProc(side, conf, lab.workdir, lab.node(side.host), proxy.url).start()
    lab.procs.append(proc)
    wait_until(f"{side.host.role}'s pid file", side.pid_file.exists, 15, explain=proc.log)
    wait_until(f"{side.host.role} on the bus", lambda: _bus_ready(lab, proc), 15, explain=proc.log)
    _script_ok(lab, proc)
    return proc


def _bus_ready(lab: Lab, proc: VrrpProc) -> bool:
    try:
        return "VI_1" in lab.status(proc.node)["instances"]  # type: ignore[operator]
    except Exception:
        return False


def test_live_keepalived_pid_file_is_refused(pair: list[Host], tmp_path: Path) -> None:
    """A keepalived still running: lifeline exits at once, says whose the file is, and touches nothing."""
    a, _ = pair
    seg = a.segment
    side = Side(seg, a, tmp_path)
    keepalived = start_keepalived(side, config(seg, "a", 200))
    try:
        wait_until(
            "keepalived to hold the VIP", lambda: a.holds(seg.address(100)), 15, explain=keepalived.tail
        )
        owner = side.pid_file.read_text()
        side.vrrp_pid_file.unlink()  # only the parent's file names keepalived now: ours must not appear
        proc = CompatProc(side, config(seg, "a", 200), tmp_path, "refused", "nats://127.0.0.1:9").start()
        assert proc.wait(20) != 0
        log = proc.log()
        assert f"{side.pid_file} names running process {owner.strip()} (keepalived)" in log, log
        assert "Traceback" not in log
        assert side.pid_file.read_text() == owner and not side.vrrp_pid_file.exists()
        assert a.holds(seg.address(100)) and keepalived.running  # its VIP was never touched
    finally:
        keepalived.kill()
