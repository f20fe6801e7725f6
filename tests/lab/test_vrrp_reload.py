"""Reload without flaps, end to end: 50 reloads under a master with a steady ping to its VIP.

Three namespaces on one bridge: a (master, priority 150), b (backup, 100),
c pinging the VIP every 20 ms.  a is reloaded 50 times, by SIGHUP and by the
bus ``reload`` endpoint in turn, with the file unchanged and with harmless
changes (a second VIP added and removed, a notify script changed).  Checked
the operator's way: every echo request answered (ICMP from c's namespace),
a's adverts captured on c's interface with kernel timestamps (the cadence
never shortens: no extra advert, never priority 0), and the event stream
holds no transition besides the start-up ones.  Then a broken file is refused
whole, and a priority change through reload moves mastership with exactly one
transition per node.  Measured numbers are printed (``pytest -s``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import socket
import struct
import threading
import time
from ipaddress import IPv4Address

import msgspec
import nats
import pytest
from nats.js.api import DeliverPolicy
from pyroute2 import netns as pr_netns

from shared.events import Event, InstanceState, ReloadReply, decode, reload_subject
from shared.lab.capture import ETH_P_IP, Capture, adverts
from shared.lab.wait import wait_until
from tests.lab.test_vrrp_service import VIP4, Lab, VrrpProc, has_vip, instance

pytestmark = [pytest.mark.root, pytest.mark.timeout(180)]

VIP2 = "192.0.2.101"
RELOADS = 50
PING_INTERVAL = 0.02
ADVERT = 0.1
"""Linux: kernel receive time (struct timespec) with each packet (not in typeshed's socket)."""


def conf(priority: int, *, vip2: bool = False, notify: bool = False, skip: bool = False) -> str:
    """a's or b's file; ``vip2`` adds a second VIP, ``notify`` a notify script (harmless changes).

    ``skip``: ``skip_check_adv_addr``, so b keeps following a whose reload changed its VIP list
    (keepalived 2.2.7 drops an advert with another VIP list; tests/lab/test_vrrp_adv_checks.py).
    """
    vips = f"{VIP4}\n        {VIP2}" if vip2 else VIP4
    extra = "    notify_master /bin/true" if notify else ""
    extra += "\n    skip_check_adv_addr" if skip else ""
    return instance(priority, advert=ADVERT, vip=vips, extra=extra)


def ask_reload(lab: Lab, node: str) -> ReloadReply:
    async def ask() -> ReloadReply:
        nc = await nats.connect(lab.server.url)
        try:
            reply = await nc.request(reload_subject(node, "vrrp"), b"", timeout=5)
            return msgspec.json.decode(reply.data, type=ReloadReply)
        finally:
            await nc.close()

    return asyncio.run(ask())


def stream_events(lab: Lab, node: str, idle: float = 1.0) -> list[Event]:
    """Every event of ``node`` in the stream (vrrp kinds), in order, until ``idle`` s pass without one."""

    async def read() -> list[Event]:
        nc = await nats.connect(lab.server.url)
        try:
            sub = await nc.jetstream().subscribe(
                f"lifeline.{node}.vrrp.>", ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
            )
            out: list[Event] = []
            with contextlib.suppress(nats.errors.TimeoutError):
                while True:
                    out.append(decode((await sub.next_msg(timeout=idle)).data))
            return out
        finally:
            await nc.close()

    return asyncio.run(read())


def transitions(events: list[Event]) -> list[tuple[str, str]]:
    return [(e.state.value, e.reason.value) for e in events if isinstance(e, InstanceState)]


def _checksum(data: bytes) -> int:
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    return ~(total + (total >> 16)) & 0xFFFF


class Ping:
    """An ICMP echo every 20 ms from c's namespace to the VIP; which sequence numbers were answered."""

    def __init__(self, host_name: str, target: str) -> None:
        self.sock: socket.socket = pr_netns.create_socket(
            host_name, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP
        )
        self.sock.settimeout(0.2)
        self.target, self.ident = target, os.getpid() & 0xFFFF
        self.sent = 0
        self.answered: set[int] = set()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=f, daemon=True) for f in (self._send, self._receive)]
        for thread in self._threads:
            thread.start()

    def _send(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            self.sent += 1
            header = struct.pack("!BBHHH", 8, 0, 0, self.ident, self.sent & 0xFFFF)
            payload = b"lifeline-reload!"
            packet = struct.pack("!BBHHH", 8, 0, _checksum(header + payload), self.ident, self.sent & 0xFFFF)
            self.sock.sendto(packet + payload, (self.target, 0))
            next_at += PING_INTERVAL
            time.sleep(max(0.0, next_at - time.monotonic()))

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(2048)
            except TimeoutError:
                continue
            icmp = data[(data[0] & 0x0F) * 4 :]
            kind, _code, _sum, ident, seq = struct.unpack("!BBHHH", icmp[:8])
            if kind == 0 and ident == self.ident:
                self.answered.add(seq)

    def stop(self) -> tuple[int, list[int]]:
        """(echo requests sent, sequence numbers not answered), allowing the last ones 0.5 s."""
        self._stop.set()
        self._threads[0].join(2)
        time.sleep(0.5)
        self._threads[1].join(2)
        self.sock.close()
        return self.sent, [s for s in range(1, self.sent + 1) if s not in self.answered]


class AdvertTap:
    """a's adverts as c sees them: kernel receive time and priority of each."""

    def __init__(self, host_name: str, ifname: str, src: IPv4Address) -> None:
        self.capture = Capture(host_name, ifname, ETH_P_IP)
        self.src = str(src)
        self.seen: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for advert in adverts(self.capture.drain(wait=0.2)):
                if advert.src == self.src:
                    self.seen.append((advert.ts_ns / 1e9, advert.priority))

    def stop(self) -> list[tuple[float, int]]:
        self._stop.set()
        self._thread.join(2)
        self.capture.close()
        return self.seen


def reload_once(lab: Lab, pa: VrrpProc, index: int) -> str:
    """SIGHUP on even ``index``, the bus endpoint on odd; waits until the reload is done; its summary."""
    if index % 2:
        reply = ask_reload(lab, pa.node)
        assert reply.ok, reply
        return reply.detail
    done = pa.log().count("reload applied")
    pa.signal(signal.SIGHUP)
    wait_until("the reload to finish", lambda: pa.log().count("reload applied") > done, 5)
    return pa.log().rsplit("reload applied: ", 1)[1].splitlines()[0]


def test_fifty_reloads_under_a_master_lose_no_ping_and_no_advert(lab3: Lab) -> None:
    try:
        fifty_reloads(lab3)
    except BaseException:
        print(lab3.logs())  # lab3 keeps logs in tmp_path only
        raise


def fifty_reloads(lab: Lab) -> None:
    a, b, c = lab.hosts
    c.ip("route", "add", "192.0.2.0/24", "dev", "eth0")
    pa, pb = lab.master_then_backup(conf(150), conf(100, skip=True))
    ping = Ping(c.name, VIP4)
    wait_until("c's first ping reply", lambda: bool(ping.answered), 5)
    tap = AdvertTap(c.name, "eth0", a.ipv4)
    time.sleep(0.5)

    variants = [{}, {"vip2": True}, {"vip2": True, "notify": True}, {"notify": True}]
    details: list[str] = []
    started = time.monotonic()
    for index in range(RELOADS):
        variant = variants[(index // 2) % len(variants)]  # every change is followed by an unchanged reload
        pa.conf.write_text(conf(150, **variant))
        details.append(reload_once(lab, pa, index))
        wanted = bool(variant.get("vip2"))

        def vip2_as_wanted(w: bool = wanted) -> bool:
            return has_vip(a, VIP2) == w

        wait_until(f"VIP2 {'on' if wanted else 'off'} a", vip2_as_wanted, 2)
        assert has_vip(a, VIP4) and not has_vip(b, VIP4)
        time.sleep(0.05)
    took = time.monotonic() - started
    time.sleep(0.3)
    heard = tap.stop()
    sent, missing = ping.stop()

    times = [t for t, _p in heard]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    print(
        f"\n{RELOADS} reloads in {took:.2f} s ({took / RELOADS * 1000:.0f} ms each): "
        f"{sent} pings every {PING_INTERVAL * 1000:.0f} ms, unanswered {missing}; "
        f"{len(heard)} adverts, gap min {min(gaps) * 1000:.1f} ms max {max(gaps) * 1000:.1f} ms"
    )
    print(f"reload details seen: {sorted(set(details))}")
    assert not missing and sent > took / PING_INTERVAL / 2
    assert {p for _t, p in heard} == {150}, "a priority-0 or changed-priority advert means a restart"
    assert min(gaps) > ADVERT * 0.6, "an advert closer than the interval is an extra advert"
    assert max(gaps) < ADVERT * 3, "a gap of a down interval means the master stopped advertising"
    assert "nothing changed" in details and "reconfigured VI_1" in details
    assert not any("restarted" in d for d in details)
    assert transitions(stream_events(lab, pa.node)) == [
        ("BACKUP", "startup"),
        ("MASTER", "master_down_timer"),
    ]
    assert transitions(stream_events(lab, pb.node)) == [("BACKUP", "startup")]

    pa.conf.write_text(conf(150) + "vrrp_instance broken {\n    priority 300\n}\n")
    refused = ask_reload(lab, pa.node)
    assert not refused.ok and refused.errors, refused
    assert has_vip(a, VIP4) and not has_vip(a, VIP2)

    pa.conf.write_text(conf(50))
    assert reload_once(lab, pa, 1) == "reconfigured VI_1"
    moved = wait_until("b to take over after a's priority drops", lambda: has_vip(b, VIP4), 5)
    wait_until("a to drop the VIP", lambda: not has_vip(a, VIP4), 2)
    time.sleep(1.0)
    print(f"priority 150 -> 50 by reload: b master after {moved:.3f} s")
    assert transitions(stream_events(lab, pa.node)) == [
        ("BACKUP", "startup"),
        ("MASTER", "master_down_timer"),
        ("BACKUP", "higher_priority_seen"),
    ]
    assert transitions(stream_events(lab, pb.node)) == [("BACKUP", "startup"), ("MASTER", "preempt")]
