"""The notifier in a lab failover: the seed's second example mails keepalived's subjects to aiosmtpd.

Topology (one bridge): hosts ``a`` and ``b`` run the ArchWiki example
``archwiki-2-monitor-host-{a,b}.conf`` *unchanged* (both BACKUP + nopreempt,
``auth_type AH``, ``vrrp_track_process`` on ``sshd``, ``smtp_alert``,
``smtp_server mail.example.net``); host ``m`` runs an aiosmtpd server on port
25.  Each of ``a``/``b`` has its own nats-server (the product's "local bus",
reached through a :class:`NatsProxy` on the namespace's loopback), and runs
the real processes ``ip netns exec``-ed: the notifier, the checker (which
tracks a fake ``sshd``: a copy of ``sleep`` named ``sshd``, so its comm
matches) and the vrrp service.  ``mail.example.net`` resolves through each
namespace's ``/etc/netns/NS/hosts`` to ``m``'s address.

Scenario: ``a`` starts alone and becomes MASTER, ``b`` joins as BACKUP, then
``a``'s link is cut: ``a`` goes FAULT and ``b`` MASTER.  ``a``'s FAULT mail
cannot leave while its link is down (no route to ``m``), so it waits in the
notifier's retries; when the link comes back ``a`` re-enters BACKUP
(nopreempt) and both of its pending mails arrive, in order, once each.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nats
import nats.js.errors
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session

from services.notifier.consumers import sink_consumers
from shared.bus.provision import node_plan
from shared.config.load import load
from shared.events import STATE_BUCKET, TrackerResult, decode, kv_key_for_subject, tracker_subject
from shared.lab.nats import NatsProxy, NatsServer
from shared.lab.netns import in_namespace
from shared.lab.segment import Host, Segment
from shared.lab.wait import wait_until
from shared.settings import Settings

pytestmark = [pytest.mark.root, pytest.mark.timeout(120)]

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "docs" / "examples"
VIP = "172.16.0.100"
ROUTER_ID = socket.gethostname()  # the example sets no router_id: keepalived uses the host name


def subject(state: str) -> str:
    return f"[{ROUTER_ID}] VRRP Instance VI_1 - Entering {state} state"


class Mailbox:
    """aiosmtpd handler: every mail as (envelope sender, headers dict, arrival time)."""

    def __init__(self) -> None:
        self.mails: list[tuple[str, dict[str, str], float]] = []

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        head = envelope.content.decode().split("\r\n\r\n", 1)[0]
        headers = dict(line.split(": ", 1) for line in head.split("\r\n") if ": " in line)
        self.mails.append((str(envelope.mail_from), headers, time.monotonic()))
        return "250 OK"

    def subjects(self, sender: str) -> list[str]:
        """Subjects mailed by ``sender``, in arrival order.

        The checker has reported before the vrrp service starts (see ``Node``), so
        the service starts straight into BACKUP: no spurious startup FAULT mail.
        """
        return [h["Subject"] for s, h, _ in self.mails if s == sender]


class Proc:
    """A lifeline service as a real process inside a host namespace, its output in a log file."""

    def __init__(self, host: Host, argv: list[str], log: Path) -> None:
        self.log_path = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", host.name, *argv], cwd=REPO, stdout=out, stderr=subprocess.STDOUT
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def has_vip(host: Host) -> bool:
    return host.holds(VIP)


class Node:
    """One keepalived host rebuilt: its nats-server, relay, fake sshd and three services."""

    def __init__(self, host: Host, conf: Path, server: NatsServer, workdir: Path, name: str) -> None:
        self.host, self.conf, self.server, self.name = host, conf, server, name
        self.workdir = workdir
        self.proxy = NatsProxy(host.name, server.port)
        self.procs: dict[str, Proc] = {}

    def start(self, service: str, *extra: str) -> Proc:
        argv = [sys.executable, "-m", f"services.{service}", "--config", str(self.conf), "--node", self.name]
        argv += ["--nats", self.proxy.url, *extra]
        proc = Proc(self.host, argv, self.workdir / f"{self.name}-{service}.log")
        self.procs[service] = proc
        return proc

    def start_all(self) -> None:
        # As the admin does first: the node's streams and the notifier's consumers, which must exist
        # before the first transition is published.
        config = load(self.conf).config
        consumers = sink_consumers(config, Settings(node=self.name), self.name)
        self.server.provision_now(node_plan(self.name, consumers))
        notifier = self.start(
            "notifier",
            *(
                "--settings",
                str(_empty(self.workdir / "empty.toml")),
                "--retry-initial",
                "0.2",
                "--retry-max",
                "1",
            ),
        )
        wait_until(f"{self.name}'s notifier", lambda: "notifier ready" in notifier.log(), 20)
        self.start("checker")
        # vrrp after the first tracker result, as keepalived scans processes before VRRP starts.
        wait_until(f"{self.name}'s track_sshd result", self.tracker_known, 20)
        self.start("vrrp")

    def tracker_known(self) -> bool:
        async def get() -> bool:
            nc = await nats.connect(self.server.url)
            try:
                kv = await nc.jetstream().key_value(STATE_BUCKET)
                entry = await kv.get(kv_key_for_subject(tracker_subject(self.name, "track_sshd")))
                return entry.value is not None and decode(entry.value, TrackerResult).ok
            except (nats.js.errors.NotFoundError, nats.js.errors.KeyNotFoundError):
                return False
            finally:
                await nc.close()

        return asyncio.run(get())

    def logs(self) -> str:
        return "\n".join(f"--- {self.name} {n}\n{p.log()[-4000:]}" for n, p in self.procs.items())

    def close(self) -> None:
        for proc in reversed(self.procs.values()):
            proc.stop()
        self.proxy.close()


@pytest.fixture
def hosts(netns_session: None) -> Iterator[list[Host]]:
    with Segment(["a", "b", "m"], observer=False) as segment:
        yield segment.hosts


@pytest.fixture
def fake_sshd(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A process whose comm is ``sshd`` (what ``vrrp_track_process`` matches), whatever the host runs."""
    binary = tmp_path / "sshd"
    shutil.copy(shutil.which("sleep") or "/bin/sleep", binary)
    proc = subprocess.Popen([str(binary), "3600"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def smtpd(hosts: list[Host]) -> Iterator[Mailbox]:
    """aiosmtpd on ``m``:25: started from a thread inside ``m``, so its server thread lives there too."""
    box = Mailbox()
    m = hosts[2]
    controller = Controller(box, hostname=str(m.ipv4), port=25)
    in_namespace(m.ns, controller.start)
    try:
        yield box
    finally:
        controller.stop()


def test_failover_mails_keepalived_subjects_and_a_cut_off_node_mails_after_its_link_returns(
    hosts: list[Host],
    tmp_path: Path,
    nats_server_factory: Callable[[], NatsServer],
    smtpd: Mailbox,
    fake_sshd: subprocess.Popen[bytes],
) -> None:
    a_host, b_host, m_host = hosts
    for h in (a_host, b_host):
        h.ns.set_hosts({"mail.example.net": str(m_host.ipv4)})
    tag = f"t{os.getpid():x}{time.monotonic_ns() % 10**6:x}"
    a = Node(a_host, EXAMPLES / "archwiki-2-monitor-host-a.conf", nats_server_factory(), tmp_path, f"{tag}-a")
    b = Node(b_host, EXAMPLES / "archwiki-2-monitor-host-b.conf", nats_server_factory(), tmp_path, f"{tag}-b")
    t0 = time.monotonic()
    try:
        a.start_all()
        took = wait_until("a to become MASTER and hold the VIP", lambda: has_vip(a_host), 20)
        print(f"\na MASTER after {took:.2f} s (advert_int 1: Master_Down_Interval ~3.9 s)")
        wait_until("a's BACKUP and MASTER mails", lambda: len(smtpd.subjects("lb1@example.net")) >= 2, 10)
        b.start_all()
        wait_until("b's BACKUP mail", lambda: smtpd.subjects("lb2@example.net") == [subject("BACKUP")], 20)

        cut = time.monotonic()
        a_host.ip("link", "set", "eth0", "down")
        took = wait_until("b to take the VIP", lambda: has_vip(b_host), 10)
        wait_until("b's MASTER mail", lambda: len(smtpd.subjects("lb2@example.net")) >= 2, 10)
        mailed = next(at for s, h, at in smtpd.mails if s == "lb2@example.net" and "MASTER" in h["Subject"])
        print(f"link cut -> b holds the VIP {took:.2f} s, b's MASTER mail accepted {mailed - cut:.2f} s")
        assert not has_vip(a_host)
        time.sleep(2.0)  # a is FAULT, but cannot reach mail.example.net: its mail waits
        assert smtpd.subjects("lb1@example.net") == [subject("BACKUP"), subject("MASTER")]

        back = time.monotonic()
        a_host.ip("link", "set", "eth0", "up")
        wait_until("a's FAULT and BACKUP mails", lambda: len(smtpd.subjects("lb1@example.net")) >= 4, 20)
        last = max(at for s, _h, at in smtpd.mails if s == "lb1@example.net")
        print(f"link back -> a's two pending mails accepted {last - back:.2f} s")
        time.sleep(1.5)  # nothing more may come (no duplicates, nopreempt keeps b MASTER)

        assert smtpd.subjects("lb1@example.net") == [
            subject("BACKUP"),
            subject("MASTER"),
            subject("FAULT"),
            subject("BACKUP"),
        ]
        assert smtpd.subjects("lb2@example.net") == [subject("BACKUP"), subject("MASTER")]
        assert has_vip(b_host) and not has_vip(a_host)
        ids = [h["Message-ID"] for _s, h, _at in smtpd.mails]
        assert len(ids) == len(set(ids)) == 6
        for _s, h, _at in smtpd.mails:
            assert (h["To"], h["X-Mailer"]) == ("admin@example.net", "Keepalived")
        print("mails:")
        for sender, headers, at in smtpd.mails:
            print(f"  +{at - t0:6.2f} s  {sender}: {headers['Subject']}")
    except BaseException:
        print("mails:", [(s, h["Subject"]) for s, h, _ in smtpd.mails])
        print(a.logs())
        print(b.logs())
        raise
    finally:
        for node in (b, a):
            with contextlib.suppress(Exception):
                node.close()


def _empty(path: Path) -> Path:
    """An empty lifeline.toml: the service must not read the host's."""
    path.write_text("")
    return path
