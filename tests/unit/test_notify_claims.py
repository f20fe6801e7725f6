"""Claims: an event's notify scripts run once, by whoever claims first, in order, despite a dead owner."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from shared.events import GroupState, InstanceState, TrackerKind, TrackerResult, VrrpState
from shared.notify_claim_files import ClaimDir
from shared.notify_claims import (
    Claim,
    Step,
    claim_key,
    claim_name,
    claimable,
    decode_claim,
    forgotten,
    next_step,
)


def state(seq: int, vrrp: VrrpState = VrrpState.MASTER, instance: str = "VI_1") -> InstanceState:
    return InstanceState(
        node="n1", ts=time.time_ns(), seq=seq, boot_id="b00t", instance=instance, vrid=51,
        interface="eth0", state=vrrp, base_priority=100, effective_priority=100,
    )  # fmt: skip


def test_the_next_step_from_what_the_file_says() -> None:
    running = Claim(owner="notifier", state="running", key="k")
    done = Claim(owner="vrrp", state="done", key="k", outcome="ok")
    assert next_step(False, None, 0.0) is Step.CLAIM
    assert next_step(True, done, 1e6) is Step.DONE
    assert next_step(True, running, 1.0, stale_after=5.0) is Step.WAIT
    assert next_step(True, None, 1.0, stale_after=5.0) is Step.WAIT  # created, not written yet
    assert next_step(True, running, 6.0, stale_after=5.0) is Step.TAKE_OVER
    assert next_step(True, None, 6.0, stale_after=5.0) is Step.TAKE_OVER  # died between create and write
    assert decode_claim(b"") is None and decode_claim(b"{") is None


def test_names_keys_and_which_events_are_claimed() -> None:
    assert claim_name(state(7)) == "b00t-7.claim"
    assert claim_key(state(7)) == "instance:n1:VI_1"
    group = GroupState(node="n1", seq=8, boot_id="b00t", group="G1", state=VrrpState.BACKUP)
    assert claim_key(group) == "group:n1:G1" and claimable(group)
    assert not claimable(TrackerResult(node="n1", tracker="t", kind=TrackerKind.SCRIPT, ok=True))


def test_an_event_older_than_the_retention_is_forgotten() -> None:
    event = state(1)
    assert not forgotten(event, event.ts + int(10e9), retention=60.0)
    assert forgotten(event, event.ts + int(61e9), retention=60.0)


class Recorder:
    """The scripts of an event: appends ``who:seq:attempt`` and takes ``delay`` seconds."""

    def __init__(self, delay: float = 0.0) -> None:
        self.log: list[str] = []
        self.delay = delay

    def runs(self, who: str, seq: int):  # type: ignore[no-untyped-def]
        async def run(attempt: int) -> str:
            self.log.append(f"{who}:{seq}:{attempt}")
            await asyncio.sleep(self.delay)
            return "ok"

        return run


async def test_two_sides_racing_for_every_event_run_each_once(tmp_path: Path) -> None:
    notifier, vrrp = ClaimDir(tmp_path, "notifier"), ClaimDir(tmp_path, "vrrp")
    rec = Recorder()
    for seq in range(1, 21):
        event = state(seq)
        a, b = await asyncio.gather(
            notifier.settle(event, rec.runs("n", seq)), vrrp.settle(event, rec.runs("v", seq))
        )
        assert a.ran != b.ran
        assert (a.claim or b.claim) == (b.claim or a.claim)
    assert sorted(int(line.split(":")[1]) for line in rec.log) == list(range(1, 21))


async def test_the_other_side_waits_for_a_running_claim_so_the_next_event_comes_after(tmp_path: Path) -> None:
    notifier, vrrp = ClaimDir(tmp_path, "notifier"), ClaimDir(tmp_path, "vrrp")
    rec = Recorder(delay=0.3)
    first = asyncio.create_task(notifier.settle(state(1), rec.runs("n", 1)))
    await asyncio.sleep(0.05)  # the notifier has claimed 1 and runs it
    settled = await vrrp.settle(state(1), rec.runs("v", 1))  # returns only when 1 is done
    assert not settled.ran and settled.claim is not None and settled.claim.state == "done"
    assert first.done()
    await vrrp.settle(state(2), rec.runs("v", 2))
    assert rec.log == ["n:1:1", "v:2:1"]


async def test_an_abandoned_running_claim_is_taken_over_and_run_again(tmp_path: Path) -> None:
    dead = ClaimDir(tmp_path, "notifier", heartbeat=0.05)
    rec = Recorder(delay=30)
    task = asyncio.create_task(dead.settle(state(1), rec.runs("n", 1)))
    await asyncio.sleep(0.2)
    task.cancel()  # the notifier dies mid-script: its claim stays "running", untouched from now on
    with pytest.raises(asyncio.CancelledError):
        await task
    vrrp = ClaimDir(tmp_path, "vrrp", stale_after=0.3)
    rec.delay = 0.0
    settled = await vrrp.settle(state(1), rec.runs("v", 1))
    assert settled.ran and settled.claim is not None and settled.claim.attempt == 2
    assert rec.log == ["n:1:1", "v:1:2"] and vrrp.taken_over == 1
    assert [p.name for p in tmp_path.iterdir()] == ["b00t-1.claim"]  # the abandoned one is gone


async def test_a_running_claim_is_kept_alive_by_its_heartbeat(tmp_path: Path) -> None:
    owner = ClaimDir(tmp_path, "notifier", heartbeat=0.05)
    rec = Recorder(delay=0.8)
    task = asyncio.create_task(owner.settle(state(1), rec.runs("n", 1)))
    await asyncio.sleep(0.05)
    other = ClaimDir(tmp_path, "vrrp", stale_after=0.3)  # shorter than the script: only beats save it
    settled = await other.settle(state(1), rec.runs("v", 1))
    await task
    assert not settled.ran and rec.log == ["n:1:1"] and other.taken_over == 0


async def test_old_claims_are_swept(tmp_path: Path) -> None:
    claims = ClaimDir(tmp_path, "vrrp", retention=60.0)
    await claims.settle(state(1), Recorder().runs("v", 1))
    await claims.settle(state(2), Recorder().runs("v", 2))
    old = time.time() - 61
    os.utime(tmp_path / "b00t-1.claim", (old, old))
    assert claims.sweep() == 1
    assert [p.name for p in tmp_path.iterdir()] == ["b00t-2.claim"]


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a folder away needs root")
def test_folders_root_creates_belong_to_the_state_dir_owner(tmp_path: Path) -> None:
    """A vrrp service (root) that starts first must not lock the notifier (its own user) out."""
    state = tmp_path / "state"
    state.mkdir()
    os.chown(state, 990, 990)
    claims = ClaimDir(state / "n1" / "notify-claims", "vrrp")
    claims.prepare()
    for folder in (state / "n1", state / "n1" / "notify-claims"):
        mode = folder.stat().st_mode & 0o7777
        assert (folder.stat().st_uid, folder.stat().st_gid, mode) == (990, 990, 0o775)
