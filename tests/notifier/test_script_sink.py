"""The script sink runs real scripts: keepalived argv, LIFELINE_* env, timeouts, the whole process group."""

from __future__ import annotations

import os
import pwd
import tempfile
import time
from pathlib import Path

import pytest

from services.notifier.core.targets import NotifyTarget, NotifyTargets
from services.notifier.sinks.base import DeliveryContext, DeliveryError
from services.notifier.sinks.script import ScriptSink
from shared.config.script import Script
from shared.events import GroupState, InstanceState, VrrpState
from shared.notify_claim_files import ClaimDir
from shared.scripts import ScriptPolicy


def script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def s(*argv: str | Path, user: str | None = None) -> Script:
    words = [str(a) for a in argv]
    return Script(command=" ".join(words), argv=words, user=user)


def master(seq: int = 5) -> InstanceState:
    return InstanceState(
        instance="VI_1", vrid=51, interface="eth0", state=VrrpState.MASTER, base_priority=100,
        effective_priority=150, node="n1", seq=seq, boot_id="boot1",
    )  # fmt: skip


async def test_runs_specific_then_generic_with_keepalived_argv_and_env(tmp_path: Path) -> None:
    out = tmp_path / "out"
    record = script(
        tmp_path / "rec.sh", f'echo "$* | $LIFELINE_SEQ $LIFELINE_EVENT_ID $LIFELINE_ATTEMPT" >> {out}\n'
    )
    targets = NotifyTargets(
        instances={
            "VI_1": NotifyTarget(scripts={"MASTER": s(record, "master", "a b")}, generic=s(record, "gen"))
        },
        groups={"G1": NotifyTarget(generic=s(record, "ggen"))},
    )
    sink = ScriptSink(targets)
    await sink.deliver(master(), DeliveryContext(attempt=2))
    await sink.deliver(
        GroupState(group="G1", state=VrrpState.BACKUP, seq=6, boot_id="boot1"), DeliveryContext()
    )
    assert out.read_text().splitlines() == [
        "master a b | 5 boot1:5 2",
        "gen INSTANCE VI_1 MASTER 150 | 5 boot1:5 2",
        "ggen GROUP G1 BACKUP 0 | 6 boot1:6 1",
    ]


async def test_no_target_no_run(tmp_path: Path) -> None:
    """An event no script is configured for runs nothing and is delivered: no error, so no retry."""
    out = tmp_path / "out"
    record = script(tmp_path / "rec.sh", f'echo "$*" >> {out}\n')
    for targets in (
        NotifyTargets(),
        NotifyTargets(instances={"VI_2": NotifyTarget(generic=s(record, "gen"))}),  # another instance's
        NotifyTargets(instances={"VI_1": NotifyTarget(scripts={"BACKUP": s(record, "backup")})}),  # no MASTER
    ):
        await ScriptSink(targets).deliver(master(), DeliveryContext())
    assert not out.exists()
    # the control: the same recorder under VI_1's generic notify does run
    await ScriptSink(NotifyTargets(instances={"VI_1": NotifyTarget(generic=s(record, "gen"))})).deliver(
        master(), DeliveryContext()
    )
    assert out.read_text() == "gen INSTANCE VI_1 MASTER 150\n"


async def test_timeout_terms_then_kills_the_whole_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    stubborn = script(tmp_path / "hang.sh", f"trap '' TERM\nsleep 30 &\necho $! > {pids}\nwait\nsleep 30\n")
    sink = ScriptSink(
        NotifyTargets(instances={"VI_1": NotifyTarget(generic=s(stubborn))}), timeout=0.5, kill_grace=0.3
    )
    started = time.monotonic()
    with pytest.raises(DeliveryError) as err:
        await sink.deliver(master(), DeliveryContext())
    elapsed = time.monotonic() - started
    assert err.value.retryable and "timed out" in str(err.value)
    assert 0.5 <= elapsed < 3
    child = int(pids.read_text())
    for _ in range(50):  # the background child was in the group: it must be gone (or a zombie)
        try:
            state = Path(f"/proc/{child}/stat").read_text().split()[2]
        except FileNotFoundError:
            break
        if state == "Z":
            break
        time.sleep(0.02)
    else:
        pytest.fail(f"child {child} of the timed-out script survived")


async def test_nonzero_exit_is_retryable_and_missing_script_is_not(tmp_path: Path) -> None:
    failing = script(tmp_path / "fail.sh", "exit 3\n")
    sink = ScriptSink(NotifyTargets(instances={"VI_1": NotifyTarget(generic=s(failing))}))
    with pytest.raises(DeliveryError) as err:
        await sink.deliver(master(), DeliveryContext())
    assert err.value.retryable and "exited with 3" in str(err.value)
    missing = ScriptSink(NotifyTargets(instances={"VI_1": NotifyTarget(generic=s(tmp_path / "nope"))}))
    with pytest.raises(DeliveryError) as err:
        await missing.deliver(master(), DeliveryContext())
    assert not err.value.retryable


@pytest.mark.skipif(os.geteuid() != 0, reason="switching user needs root")
async def test_runs_as_script_user() -> None:
    with tempfile.TemporaryDirectory(prefix="lifeline-script-") as top:  # pytest's tmp is 0700 root
        os.chmod(top, 0o755)
        shared = Path(top) / "shared"
        shared.mkdir()
        shared.chmod(0o777)
        await _check_runs_as_script_user(shared)


async def _check_runs_as_script_user(shared: Path) -> None:
    nobody = pwd.getpwnam("nobody")
    out = shared / "id"
    whoami = script(shared / "id.sh", f"id -u > {out}; id -g >> {out}; id -G >> {out}\n")
    sink = ScriptSink(
        NotifyTargets(instances={"VI_1": NotifyTarget(generic=s(whoami))}),
        policy=ScriptPolicy(script_user="nobody"),
    )
    await sink.deliver(master(), DeliveryContext())
    uid, gid, groups = out.read_text().split("\n")[:3]
    assert (int(uid), int(gid)) == (nobody.pw_uid, nobody.pw_gid)
    assert "0" not in groups.split()  # root's supplementary groups were dropped
    # a script's own user wins over script_user
    sink = ScriptSink(
        NotifyTargets(instances={"VI_1": NotifyTarget(generic=s(whoami, user="root"))}),
        policy=ScriptPolicy(script_user="nobody"),
    )
    await sink.deliver(master(), DeliveryContext())
    assert out.read_text().split("\n")[0] == "0"


async def test_with_claims_an_event_claimed_elsewhere_is_not_run_and_one_claimed_here_is_marked(
    tmp_path: Path,
) -> None:
    """The notifier's half of the claims: skip what the vrrp service ran, claim what it runs itself."""
    out = tmp_path / "out"
    record = script(tmp_path / "rec.sh", f'echo "$LIFELINE_EVENT_ID $*" >> {out}\n')
    targets = NotifyTargets(instances={"VI_1": NotifyTarget(generic=s(record, "gen"))})
    claims = tmp_path / "claims"
    vrrp = ClaimDir(claims, "vrrp")

    async def ran_by_vrrp(attempt: int) -> str:
        return "ok"

    assert (await vrrp.settle(master(1), ran_by_vrrp)).ran
    sink = ScriptSink(targets, claims=ClaimDir(claims, "notifier"))
    await sink.deliver(master(1), DeliveryContext())
    assert not out.exists()  # the vrrp service had run it
    await sink.deliver(master(2), DeliveryContext())
    assert out.read_text() == "boot1:2 gen INSTANCE VI_1 MASTER 150\n"
    exists, claim, _ = vrrp.read("boot1-2.claim")
    assert (
        exists
        and claim is not None
        and (claim.owner, claim.state, claim.outcome) == ("notifier", "done", "ok")
    )


async def test_with_claims_a_failed_script_is_not_retried(tmp_path: Path) -> None:
    failing = script(tmp_path / "fail.sh", "exit 3\n")
    sink = ScriptSink(
        NotifyTargets(instances={"VI_1": NotifyTarget(generic=s(failing))}),
        claims=ClaimDir(tmp_path, "notifier"),
    )
    with pytest.raises(DeliveryError) as err:
        await sink.deliver(master(), DeliveryContext())
    assert not err.value.retryable and "exited with 3" in str(err.value)
    await sink.deliver(master(), DeliveryContext(attempt=2))  # a re-delivery: the claim says it ran
