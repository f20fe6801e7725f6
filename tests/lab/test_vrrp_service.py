"""The vrrp service end to end: real processes in namespaces, real adverts, real VIPs, real NATS.

Each test builds its own segment (``pair``/``trio``: unique namespaces on one
bridge, always deleted) and runs ``python -m services.vrrp`` inside each host
namespace with ``ip netns exec``, so SIGTERM and ``kill -9`` are real.  VIPs
are checked the operator's way (``ip -j addr`` in each namespace), states and
reasons on the bus (the JetStream event stream).

NATS runs in the root namespace; a host namespace has its own loopback, so a
tiny TCP forwarder (``shared.lab.nats.NatsProxy``) listens on 127.0.0.1 inside
each host namespace and relays to the server.  Stopping the server breaks the relayed
connections exactly as a server stop would.

Timings use VRRPv3 with short adverts (Master_Down_Interval = 3 x advert +
skew); bounds are generous protocol-level ones, and the measured times are
printed (``pytest -s``) for the report.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import msgspec
import nats
import nats.js.errors
import pytest
from nats.js.api import DeliverPolicy

from services.vrrp.core.timers import CS, master_down_interval
from shared.events import (
    MSG_ID_HEADER,
    InstanceState,
    TrackerKind,
    TrackerResult,
    decode,
    encode,
    tracker_subject,
)
from shared.exit_codes import Exit
from shared.lab.nats import NatsProxy, NatsServer
from shared.lab.segment import Host
from shared.lab.wait import LabTimeout, await_until, wait_until

pytestmark = [pytest.mark.root, pytest.mark.timeout(60)]

REPO = Path(__file__).resolve().parents[2]
VIP4 = "192.0.2.100"
VIP6 = "2001:db8::100"


def mdi(advert: float, priority: int, adverts: int = 3) -> float:
    """Master_Down_Interval of a v3 backup (the core's arithmetic): adverts x interval + skew."""
    return master_down_interval(3, priority, round(advert * CS), adverts)


# --------------------------------------------------------------------------- the service as a process


class VrrpProc:
    """``python -m services.vrrp`` inside a host namespace; its log in a file."""

    def __init__(self, host: Host, conf: str, workdir: Path, node: str, nats_url: str) -> None:
        self.host = host
        self.node = node
        self.conf = workdir / f"{node}.conf"
        self.conf.write_text(conf)
        self.log_path = workdir / f"{node}.log"
        self.nats_url = nats_url
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> VrrpProc:
        argv = [sys.executable, "-m", "services.vrrp", "--config", str(self.conf), "--node", self.node]
        argv += ["--nats", self.nats_url]
        env = os.environ | {"LIFELINE_STATE_DIR": str(self.log_path.parent / "state")}  # not the host's
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", self.host.name, *argv],
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        return self

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 5.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def has_vip(host: Host, vip: str) -> bool:
    return host.holds(vip)


def only_holder(hosts: list[Host], vip: str) -> list[str]:
    return [h.name for h in hosts if has_vip(h, vip)]


def instance(
    priority: int,
    *,
    advert: float = 0.1,
    vip: str = VIP4,
    extra: str = "",
    version: int = 3,
    name: str = "VI_1",
    vrid: int = 51,
) -> str:
    """A vrrp_instance block (GARP second burst off to keep logs short)."""
    return f"""
vrrp_instance {name} {{
    state BACKUP
    interface eth0
    virtual_router_id {vrid}
    priority {priority}
    advert_int {advert}
    version {version}
    garp_master_delay 0
{extra}
    virtual_ipaddress {{
        {vip}
    }}
}}
"""


class Lab:
    """Processes, relays and bus access of one test; everything stopped at the end."""

    def __init__(self, hosts: list[Host], workdir: Path, server: NatsServer) -> None:
        self.hosts = hosts
        self.workdir = workdir
        self.server = server
        self.procs: list[VrrpProc] = []
        self.proxies: list[NatsProxy] = []
        self.tag = f"t{time.monotonic_ns() % 10**9:x}"

    def node(self, host: Host) -> str:
        return f"{self.tag}-{host.role}"

    def service(self, host: Host, conf: str) -> VrrpProc:
        proxy = NatsProxy(host.name, self.server.port)
        self.proxies.append(proxy)
        proc = VrrpProc(host, conf, self.workdir, self.node(host), proxy.url)
        self.procs.append(proc)
        return proc.start()

    def master_then_backup(self, conf_a: str, conf_b: str, vip: str = VIP4) -> tuple[VrrpProc, VrrpProc]:
        """Start a, wait until it holds ``vip``, then b, and wait until b reports BACKUP.

        Deterministic roles: with both started at once, whichever process is
        up first becomes master for a moment and the event lists differ.
        """
        a, b = self.hosts[:2]
        pa = self.service(a, conf_a)
        wait_until("a to hold the VIP", lambda: has_vip(a, vip), 5)
        pb = self.service(b, conf_b)
        wait_until("b to report BACKUP", lambda: len(self.events(pb.node, 1, timeout=0.5)) == 1, 15)
        return pa, pb

    def close(self) -> None:
        for proc in self.procs:
            proc.stop()
        for proxy in self.proxies:
            proxy.close()

    def logs(self) -> str:
        return "\n".join(f"--- {p.node}\n{p.log()}" for p in self.procs)

    # bus helpers (the test's own connection, in the root namespace)

    def events(
        self, node: str, want: int, timeout: float = 10.0, subjects: str = "vrrp.>"
    ) -> list[InstanceState]:
        """The first ``want`` InstanceState events on ``lifeline.<node>.<subjects>``, in stream order.

        Fewer (or none) once ``timeout`` passes: a service that is slow to
        start on a loaded machine is a reason for the callers to poll, not a
        failure here.
        """

        async def read() -> list[InstanceState]:
            nc = await nats.connect(self.server.url)
            try:
                deadline = time.monotonic() + timeout
                subject = f"lifeline.{node}.{subjects}"
                sub = await self._subscribe_when_stored(nc.jetstream(), subject, timeout)
                out: list[InstanceState] = []
                if sub is None:  # the node has not published yet: nothing to read (callers poll)
                    return out
                while len(out) < want and time.monotonic() < deadline:
                    with contextlib.suppress(nats.errors.TimeoutError):
                        msg = await sub.next_msg(timeout=0.5)
                        event = decode(msg.data)  # the stream also holds control/split-brain events
                        if isinstance(event, InstanceState):
                            out.append(event)
                return out
            finally:
                await nc.close()

        return asyncio.run(read())

    @staticmethod
    async def _subscribe_when_stored(js: Any, subject: str, timeout: float) -> Any:
        """The stream takes a node's subjects when that node's publisher first connects: wait for it.

        None when it has not within ``timeout``: a slow start is not an error
        here, the callers poll and fail with their own message.
        """
        subs: list[Any] = []

        async def stored() -> bool:
            try:
                sub = await js.subscribe(subject, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL)
            except nats.js.errors.NotFoundError:
                return False
            subs.append(sub)
            return True

        with contextlib.suppress(LabTimeout):
            await await_until(f"the stream to hold {subject}", stored, timeout, 0.1)
        return subs[0] if subs else None

    def publish_tracker(self, node: str, result: TrackerResult) -> None:
        async def send() -> None:
            nc = await nats.connect(self.server.url)
            try:
                stamped = msgspec.structs.replace(result, node=node)  # as the checker's Publisher stamps it
                headers = {MSG_ID_HEADER: f"test:{time.monotonic_ns()}"}
                await nc.publish(tracker_subject(node, result.tracker), encode(stamped), headers=headers)
                await nc.flush()
            finally:
                await nc.close()

        asyncio.run(send())

    def status(self, node: str) -> dict[str, object]:
        async def ask() -> dict[str, object]:
            nc = await nats.connect(self.server.url)
            try:
                reply = await nc.request(f"lifeline.{node}.ctl.vrrp.status", b"", timeout=2)
                return dict(json.loads(reply.data)["detail"])
            finally:
                await nc.close()

        return asyncio.run(ask())


def states(events: list[InstanceState]) -> list[tuple[str, str]]:
    return [(e.state.value, e.reason.value) for e in events]


# --------------------------------------------------------------------------- tests


def test_election_link_failover_and_preempt(lab: Lab) -> None:
    """Higher priority wins and alone holds the VIP; link cut → backup within MDI; link back → preempt."""
    a, b = lab.hosts
    pa = lab.service(a, instance(150))
    lab.service(b, instance(100))
    wait_until("a to hold the VIP", lambda: has_vip(a, VIP4), 5)
    time.sleep(0.5)  # several advert intervals: b must stay backup
    assert only_holder(lab.hosts, VIP4) == [a.name]

    a.ip("link", "set", "eth0", "down")
    took = wait_until("b to take the VIP", lambda: has_vip(b, VIP4), 5)
    print(f"\nlink-loss failover: {took:.3f} s (MDI {mdi(0.1, 100):.3f} s)")
    assert took < mdi(0.1, 100) + 1.0
    wait_until("a (FAULT) to drop the VIP", lambda: not has_vip(a, VIP4), 2)

    a.ip("link", "set", "eth0", "up")
    back = wait_until("a to preempt back", lambda: has_vip(a, VIP4) and not has_vip(b, VIP4), 5)
    print(f"preempt back after link up: {back:.3f} s")
    got = states(lab.events(pa.node, 5))
    assert got[1][0] == "MASTER" and got[1][1] in {"master_down_timer", "preempt"}, got  # b may start first
    assert got[:1] + got[2:] == [
        ("BACKUP", "startup"),
        ("FAULT", "interface_down"),
        ("BACKUP", "interface_up"),
        ("MASTER", "preempt"),
    ], got


def test_kill9_failover_and_restart_clears_stale_vip(lab: Lab) -> None:
    """kill -9 of the master → backup within MDI; the restarted node removes its stale VIP first."""
    a, b = lab.hosts
    pa, _ = lab.master_then_backup(instance(150), instance(100))
    pa.signal(signal.SIGKILL)
    pa.wait()
    took = wait_until("b to take the VIP", lambda: has_vip(b, VIP4), 5)
    print(f"\nkill -9 failover: {took:.3f} s (MDI {mdi(0.1, 100):.3f} s)")
    assert took < mdi(0.1, 100) + 1.0
    assert has_vip(a, VIP4), "a crashed: its VIP is still on its interface (the stale one)"
    pa.start()
    wait_until("the restarted a to remove its stale VIP", lambda: not has_vip(a, VIP4), 5)
    wait_until("a to preempt back", lambda: has_vip(a, VIP4) and not has_vip(b, VIP4), 5)
    assert "removed 1 stale VIP" in pa.log()


def test_sigterm_hands_over_after_skew(lab: Lab) -> None:
    """SIGTERM: priority 0 advert, VIP removed, exit 0; the backup takes over after skew, not MDI."""
    a, b = lab.hosts
    advert = 0.5  # MDI 1.80 s, skew 0.30 s: far enough apart to tell which one ran
    pa, pb = lab.master_then_backup(instance(150, advert=advert), instance(100, advert=advert))
    time.sleep(0.3)
    start = time.monotonic()
    pa.signal(signal.SIGTERM)
    took = wait_until("b to take the VIP", lambda: has_vip(b, VIP4), 5)
    assert pa.wait() == 0
    print(
        f"\ngraceful handover: {took:.3f} s (skew {156 * advert / 256:.3f} s, MDI {mdi(advert, 100):.3f} s)"
    )
    assert took < mdi(advert, 100) - 0.5
    assert not has_vip(a, VIP4)
    assert time.monotonic() - start < 3
    got = states(lab.events(pa.node, 3))
    assert got[-1] == ("STOP", "shutdown"), got
    assert states(lab.events(pb.node, 2)) == [("BACKUP", "startup"), ("MASTER", "priority_zero_seen")]


def test_nopreempt_keeps_the_current_master(lab: Lab) -> None:
    """b is master alone; a higher-priority a with nopreempt joins and stays backup."""
    a, b = lab.hosts
    lab.service(b, instance(100, extra="    nopreempt"))
    wait_until("b to hold the VIP", lambda: has_vip(b, VIP4), 5)
    pa = lab.service(a, instance(150, extra="    nopreempt"))
    wait_until("a to report BACKUP", lambda: len(lab.events(pa.node, 1, timeout=0.5)) == 1, 5)
    time.sleep(4 * mdi(0.1, 150))
    assert only_holder(lab.hosts, VIP4) == [b.name]


def test_unicast_peers(lab: Lab) -> None:
    """unicast_peer / unicast_src_ip: election and failover without multicast."""
    a, b = lab.hosts

    def conf(me: Host, peer: Host, prio: int) -> str:
        extra = f"    unicast_src_ip {me.ipv4}\n    unicast_peer {{\n        {peer.ipv4}\n    }}"
        return instance(prio, extra=extra)

    pa, _ = lab.master_then_backup(conf(a, b, 150), conf(b, a, 100))
    time.sleep(0.5)
    assert only_holder(lab.hosts, VIP4) == [a.name]
    pa.signal(signal.SIGKILL)
    took = wait_until("b to take the VIP", lambda: has_vip(b, VIP4), 5)
    print(f"\nunicast kill -9 failover: {took:.3f} s")
    assert took < mdi(0.1, 100) + 1.0


def test_ipv6_vip_moves(lab: Lab) -> None:
    """VRRPv3 over IPv6 (ff02::12 from the link-local): the v6 VIP moves on a graceful stop."""
    a, b = lab.hosts
    pa, _ = lab.master_then_backup(instance(150, vip=f"{VIP6}/64"), instance(100, vip=f"{VIP6}/64"), VIP6)
    time.sleep(0.5)
    assert only_holder(lab.hosts, VIP6) == [a.name]
    pa.signal(signal.SIGTERM)
    took = wait_until("b to take the IPv6 VIP", lambda: has_vip(b, VIP6), 5)
    print(f"\nIPv6 graceful handover: {took:.3f} s")
    assert pa.wait() == 0
    assert not has_vip(a, VIP6)


def test_auth_mismatch_is_ignored(lab: Lab) -> None:
    """v2 PASS with different passwords: each drops the other's adverts (counted), both go MASTER."""
    a, b = lab.hosts

    def conf(prio: int, password: str) -> str:
        auth = f"    authentication {{\n        auth_type PASS\n        auth_pass {password}\n    }}"
        return instance(prio, advert=1, version=2, extra=auth)

    lab.service(a, conf(150, "secretAA"))
    pb = lab.service(b, conf(100, "secretBB"))
    wait_until("a to hold the VIP", lambda: has_vip(a, VIP4), 6)
    took = wait_until("b to ignore a and hold the VIP too", lambda: has_vip(b, VIP4), 8)
    print(f"\nauth mismatch: b master after {took:.3f} s more")
    status = lab.status(pb.node)
    vi = status["instances"]["VI_1"]  # type: ignore[index]
    assert vi["state"] == "MASTER"
    assert vi["counters"]["drops"]["auth_failure"] >= 1
    assert vi["counters"]["adverts_received"] == 0


def test_tracker_result_on_the_bus_moves_mastership(lab: Lab) -> None:
    """A failed weighted script, published by the 'checker', drops a's priority below b's."""
    a, b = lab.hosts
    script = "vrrp_script chk {\n    script /bin/true\n    weight -60\n}\n"
    pa, _ = lab.master_then_backup(
        script + instance(150, extra="    track_script {\n        chk\n    }"), instance(100)
    )
    wait_until("a's bus link", lambda: "VI_1" in lab.status(pa.node)["instances"], 5)  # type: ignore[operator]
    failed = TrackerResult(tracker="chk", kind=TrackerKind.SCRIPT, ok=False, weight=-60, node=pa.node)
    lab.publish_tracker(pa.node, failed)
    took = wait_until("b to take over", lambda: has_vip(b, VIP4) and not has_vip(a, VIP4), 5)
    print(f"\ntracker-driven handover: {took:.3f} s")
    vi = lab.status(pa.node)["instances"]["VI_1"]  # type: ignore[index]
    assert (vi["state"], vi["effective_priority"]) == ("BACKUP", 90)
    assert vi["trackers"] == [
        {
            "name": "chk",
            "kind": "script",
            "known": True,
            "ok": False,
            "value": None,
            "age": vi["trackers"][0]["age"],
            "stale": False,
        }
    ]


def test_bad_config_exits_78_without_traceback(tmp_path: Path) -> None:
    conf = tmp_path / "bad.conf"
    conf.write_text("vrrp_instance VI_1 {\n    priority 300\n}\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.vrrp",
            "--config",
            str(conf),
            "--node",
            "x",
            "--nats",
            "nats://127.0.0.1:1",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == Exit.CONFIG
    assert "Traceback" not in proc.stderr
    assert f"{conf}:" in proc.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "services.vrrp", "--config", str(tmp_path / "nope.conf"), "--node", "x"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert missing.returncode == Exit.CONFIG
    assert "Traceback" not in missing.stderr
