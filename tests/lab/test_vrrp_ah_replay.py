"""AH anti-replay on a real segment, against the real keepalived 2.2.7 (docs/vrrp.md#ah-auth_type-ah).

* A captured priority-0 advert (a real keepalived goodbye) and an older
  advert, replayed later from a third namespace with a raw socket, byte for
  byte: lifeline's backup drops them (``ah_replay`` counted), makes no
  transition, and the master keeps the VIP throughout.  Without anti-replay
  the goodbye would hand mastership to the backup after its skew time.
* A restarted peer starts its sequence again at 1.  keepalived's answer
  (seen in its log and on the wire) is to drop those adverts as replays until
  its own down timer fires; then the restarted owner takes the higher number
  from the backup's advert and continues above it.  Every pairing must
  converge to the owner alone, as the reference pair of two keepalived does.

Timings are VRRPv2 (AH needs it): one-second adverts, so bounds are whole
down intervals; the measured times go to the output (``pytest -s``).
"""

from __future__ import annotations

import shutil
import signal
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.lab.capture import Packet, parse_advert
from shared.lab.nats import NatsServer
from shared.lab.netns import in_namespace
from shared.lab.segment import Host, Impl, Segment
from shared.lab.wait import wait_until
from tests.interop.vrrp_peers import V2_AH, VRID, assert_sole_holder, instance_config
from tests.lab.test_vrrp_service import Lab, VrrpProc

pytestmark = [
    pytest.mark.root,
    pytest.mark.interop,
    pytest.mark.timeout(90),
    pytest.mark.skipif(shutil.which("keepalived") is None, reason="keepalived is not installed"),
]

OWNER, MASTER, BACKUP = 255, 200, 100


@pytest.fixture
def seg(netns_session: None) -> Iterator[Segment]:
    """Hosts a and b and an observer (the capture and the attacker) on one bridge."""
    with Segment(["a", "b"]) as segment:
        yield segment


@pytest.fixture
def bus(seg: Segment, tmp_path: Path, nats_server: NatsServer) -> Iterator[Lab]:
    """lifeline's vrrp service on either host, with its status on the shared nats-server."""
    lab = Lab(seg.hosts, tmp_path, nats_server)
    try:
        yield lab
    except BaseException:
        print(lab.logs())
        raise
    finally:
        lab.close()


def config(seg: Segment, node: Host, priority: int) -> str:
    """The v2-ah interop config; an owner (255) says ``state MASTER`` so it is master at once."""
    text = instance_config(V2_AH, seg, node, priority)
    return text.replace("state BACKUP", "state MASTER") if priority == OWNER else text


def ah_seq(packet: Packet) -> int | None:
    """The AH sequence number of a captured IPv4 frame (None when it carries no AH)."""
    ip = packet.data[14:]
    if len(ip) < 32 or ip[9] != socket.IPPROTO_AH:
        return None
    ihl = (ip[0] & 0x0F) * 4
    return int(struct.unpack_from("!I", ip, ihl + 8)[0])


def adverts_from(packets: list[Packet], node: Host) -> list[tuple[Packet, int, int]]:
    """(frame, priority, AH sequence) of every advert of our VRID that ``node`` sent."""
    out = []
    for p in packets:
        seen, seq = parse_advert(p), ah_seq(p)
        if seen is not None and seen.vrid == VRID and seen.src == str(node.ipv4) and seq is not None:
            out.append((p, seen.priority, seq))
    return out


def from_node(frame: bytes, node: Host) -> bool:
    seen = parse_advert(Packet(0, frame))
    return seen is not None and seen.vrid == VRID and seen.src == str(node.ipv4)


def replay(seg: Segment, frames: list[bytes]) -> None:
    """Put ``frames`` back on the segment, byte for byte, from the observer's namespace (the attacker)."""
    assert seg.observer is not None
    sock = in_namespace(seg.observer, lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW))
    try:
        sock.bind(("eth0", 0))
        for frame in frames:
            sock.send(frame)
    finally:
        sock.close()


def vi(lab: Lab, proc: VrrpProc) -> dict[str, Any]:
    status = lab.status(proc.node)
    return status["instances"]["VI_1"]  # type: ignore[index,no-any-return]


def state(lab: Lab, proc: VrrpProc) -> str | None:
    """The instance's state, None while the service does not answer yet."""
    try:
        return str(vi(lab, proc)["state"])
    except Exception:  # not connected yet, or still starting: the caller polls
        return None


def drops(lab: Lab, proc: VrrpProc) -> dict[str, int]:
    return dict(vi(lab, proc)["counters"]["drops"])


def restart_keepalived(node: Host, text: str) -> None:
    """keepalived again on ``node`` (after a ``kill -9`` its pid files remain and would stop it)."""
    for pid_file in node.workdir.glob("*.pid"):
        pid_file.unlink()
    node.start("keepalived", text)


def test_replayed_goodbye_and_old_adverts_are_dropped(seg: Segment, bus: Lab) -> None:
    """keepalived a is master, lifeline b backup; a's real goodbye, replayed later, changes nothing."""
    a, b = seg.hosts
    vip = V2_AH.vip(seg)
    a.start("keepalived", config(seg, a, MASTER))
    wait_until(
        "keepalived a to hold the VIP", lambda: seg.holders(vip), 2 * V2_AH.master_down(1) + 5, expect=["a"]
    )
    pb = bus.service(b, config(seg, b, BACKUP))
    wait_until("b to be BACKUP", lambda: state(bus, pb), 15, expect="BACKUP")
    with seg.capture() as cap:
        time.sleep(1.5 * V2_AH.interval)  # at least one of a's ordinary adverts on the wire
        a.stop()  # SIGTERM: the priority-0 goodbye
        wait_until("b to take over", lambda: seg.holders(vip), V2_AH.master_down(BACKUP) + 2, expect=["b"])
        seen = adverts_from(cap.drain(), a)
    goodbye = [(p, seq) for p, prio, seq in seen if prio == 0]
    older = [(p, seq) for p, prio, seq in seen if prio == MASTER]
    assert goodbye and older, f"captured from a: {[(prio, seq) for _, prio, seq in seen]}"
    a.start("keepalived", config(seg, a, MASTER))  # back as BACKUP, takes b's numbers, preempts
    took = wait_until(
        "a to preempt", lambda: seg.holders(vip), 2 * V2_AH.master_down(MASTER) + 5, expect=["a"]
    )
    print(f"\nrestarted keepalived a took over again after {took:.1f} s")
    wait_until("b back to BACKUP", lambda: state(bus, pb), 5, expect="BACKUP")
    before = vi(bus, pb)
    frames = [older[-1][0].data] * 3 + [goodbye[0][0].data] * 3  # the goodbye last: nothing re-arms after it
    with seg.capture() as cap:  # right after a's advert, so the next one comes only after b's skew time
        assert cap.frames(1, 3 * V2_AH.interval, lambda f: from_node(f, a)), "a is not advertising"
        replay(seg, frames)
    skew = (256 - BACKUP) / 256
    assert_sole_holder(seg, vip, "a", 3 * skew + 2)  # a goodbye taken would move the VIP within skew
    after = vi(bus, pb)
    print(
        f"replayed seq {older[-1][1]}, then {goodbye[0][1]} (priority 0), 3 times each: {after['counters']}"
    )
    assert after["state"] == "BACKUP"
    assert after["counters"]["transitions"] == before["counters"]["transitions"]
    assert after["counters"]["drops"]["ah_replay"] - before["counters"]["drops"]["ah_replay"] == len(frames)


PAIRINGS = [
    pytest.param(("lifeline", "keepalived"), id="ours-owner"),
    pytest.param(("keepalived", "lifeline"), id="ours-backup"),
    pytest.param(("keepalived", "keepalived"), id="reference"),
]


@pytest.mark.parametrize("pairing", PAIRINGS)
def test_a_restarted_owner_is_dropped_as_a_replay_then_resyncs(
    seg: Segment, bus: Lab, pairing: tuple[Impl, Impl]
) -> None:
    """The owner (255, master at once) crashes and restarts at sequence 1; the group converges to it again.

    keepalived's behaviour on both sides: the backup drops the owner's fresh
    numbers as replays, takes over after its down interval, and the owner
    continues above the backup's number, which the backup accepts and yields.
    """
    owner_impl, backup_impl = pairing
    a, b = seg.hosts
    vip = V2_AH.vip(seg)
    procs: dict[str, VrrpProc] = {}

    def start(node: Host, impl: Impl, priority: int) -> None:
        if impl == "keepalived":
            restart_keepalived(node, config(seg, node, priority))
        elif node.role in procs:
            procs[node.role].start()
        else:
            procs[node.role] = bus.service(node, config(seg, node, priority))

    with seg.capture() as cap:
        start(a, owner_impl, OWNER)
        wait_until("the owner to hold the VIP", lambda: seg.holders(vip), 10, expect=["a"])
        start(b, backup_impl, BACKUP)
        packets: list[Packet] = []

        def heard() -> int:
            packets.extend(cap.drain())
            return len(adverts_from(packets, a))

        wait_until("the group to reach sequence 8", lambda: heard() >= 8, 20)  # above what a restart sends
        before = adverts_from(packets, a)[-1][2]
        if owner_impl == "keepalived":
            a.kill()
        else:
            procs["a"].stop()  # SIGKILL: no goodbye, the VIP stays behind
        cap.drain()
        start(a, owner_impl, OWNER)
        restarted = time.monotonic()
        limit = 2 * V2_AH.master_down(BACKUP) + 10

        def owner_back() -> bool:
            packets.extend(cap.drain())
            later = adverts_from(packets, a)
            return seg.holders(vip) == ["a"] and bool(later) and later[-1][2] > before

        wait_until("the restarted owner to hold the VIP alone, above the old numbers", owner_back, limit)
        print(f"\n{pairing}: converged {time.monotonic() - restarted:.1f} s after the restart")
        assert_sole_holder(seg, vip, "a", 2.5)
        packets.extend(cap.drain())
    owner, backup = adverts_from(packets, a), adverts_from(packets, b)
    wire = [(prio, seq) for _, prio, seq in owner]
    assert min(seq for _, seq in wire) == 1, f"the restarted owner did not start again at 1: {wire}"
    assert backup, "the backup never took over: the owner's fresh numbers were accepted"
    takeover = backup[0][0].ts_ns, backup[0][2]
    answer = next(seq for p, _, seq in owner if p.ts_ns > takeover[0])
    print(f"owner {wire}; backup took over with {takeover[1]}, the owner answered with {answer}")
    assert answer > takeover[1], "the owner did not continue above the backup's number"
    if backup_impl == "lifeline":
        assert drops(bus, procs["b"])["ah_replay"] >= 1  # its fresh numbers were dropped as replays
        assert vi(bus, procs["b"])["state"] == "BACKUP"
    else:
        assert b.daemon is not None and "already processed" in b.daemon.output()


def test_sigterm_goodbye_is_sent_with_the_next_number(seg: Segment, bus: Lab) -> None:
    """lifeline's goodbye continues its sequence, so a keepalived backup accepts it (takes over at once)."""
    a, b = seg.hosts
    vip = V2_AH.vip(seg)
    pa = bus.service(a, config(seg, a, MASTER))
    wait_until(
        "lifeline a to hold the VIP", lambda: seg.holders(vip), 2 * V2_AH.master_down(1) + 5, expect=["a"]
    )
    b.start("keepalived", config(seg, b, BACKUP))
    time.sleep(2 * V2_AH.interval)
    with seg.capture() as cap:
        pa.signal(signal.SIGTERM)
        took = wait_until(
            "b to take over", lambda: seg.holders(vip), V2_AH.master_down(BACKUP) + 2, expect=["b"]
        )
        seen = adverts_from(cap.drain(), a)
    assert any(prio == 0 for _, prio, _ in seen)
    assert took < V2_AH.master_down(BACKUP), f"b took {took:.2f} s: the goodbye was not accepted"
    assert b.daemon is not None and "already processed" not in b.daemon.output()
