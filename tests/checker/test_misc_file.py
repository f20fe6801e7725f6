"""MISC_CHECK with real scripts (exit codes, timeouts, process groups) and FILE_CHECK with a real file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.checker.probes import misc, run_probe
from services.checker.probes.base import Target
from shared.config.model_lvs import FileCheck, MiscCheck
from shared.config.script import Script
from shared.lab.wait import await_until


def sh(code: str) -> Script:
    return Script(command=f"/bin/sh -c '{code}'", argv=["/bin/sh", "-c", code])


def misc_check(code: str, **kw: object) -> MiscCheck:
    fields: dict[str, object] = {"misc_path": sh(code), "misc_timeout": 5.0}
    return MiscCheck(**(fields | kw))  # type: ignore[arg-type]


MISC_CASES = [
    ("exit 0", "exit 0", {}, True, None, "exit 0"),
    ("exit 1", "exit 1", {}, False, None, "exit 1"),
    ("exit 5 without dynamic", "exit 5", {}, False, None, "exit 5"),
    ("exit 5 dynamic", "exit 5", {"misc_dynamic": True}, True, 3, "exit 5"),
    ("exit 1 dynamic", "exit 1", {"misc_dynamic": True}, False, None, "exit 1"),
    ("exit 0 dynamic keeps weight", "exit 0", {"misc_dynamic": True}, True, None, "exit 0"),
    ("killed by a signal", "kill -9 $$", {}, False, None, "signal 9"),
]


@pytest.mark.parametrize(
    ("name", "code", "fields", "ok", "weight", "detail"), MISC_CASES, ids=[c[0] for c in MISC_CASES]
)
async def test_misc_exit_codes(
    *, name: str, code: str, fields: dict[str, object], ok: bool, weight: int | None, detail: str
) -> None:
    check = misc_check(code, **fields)
    result = await run_probe(check, Target("127.0.0.1", None))
    assert (result.ok, result.weight) == (ok, weight), result.detail
    assert detail in result.detail


async def test_misc_missing_program_fails() -> None:
    check = MiscCheck(misc_path=Script(command="/nonexistent/x", argv=["/nonexistent/x"]), misc_timeout=1.0)
    result = await run_probe(check, Target("127.0.0.1", None))
    assert not result.ok
    assert "ENOENT" in result.detail


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still "exists": look at its state
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().split(") ", 1)[1][0] != "Z"


async def test_misc_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    check = misc_check(f"sleep 30 & echo $! > {pidfile}; wait", misc_timeout=0.3)
    result = await run_probe(check, Target("127.0.0.1", None))
    assert not result.ok
    assert result.detail == "timed out after 0.3s"
    assert result.latency_ms < 5000
    child = int(pidfile.read_text())
    await await_until("the group's child to be gone", lambda: not alive(child), 2.0, 0.01)


async def test_misc_sigterm_ignored_then_sigkill(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(misc, "KILL_GRACE", 0.2)
    check = misc_check("trap '' TERM; sleep 30; exit 0", misc_timeout=0.2)
    result = await run_probe(check, Target("127.0.0.1", None))
    assert not result.ok
    assert "timed out" in result.detail
    assert result.latency_ms < 5000


FILE_CASES = [
    ("weight 1: value is the delta", "7\n", {}, True, 7),
    ("weight 3 reverse", "2\n", {"weight": 3, "reverse": True}, True, -6),
    ("weight 0, value 0 passes", "0\n", {"weight": 0}, True, None),
    ("weight 0, non-zero fails", "1\n", {"weight": 0}, False, None),
]


@pytest.mark.parametrize(
    ("name", "text", "fields", "ok", "weight"), FILE_CASES, ids=[c[0] for c in FILE_CASES]
)
async def test_file_check(
    tmp_path: Path, *, name: str, text: str, fields: dict[str, object], ok: bool, weight: int | None
) -> None:
    path = tmp_path / "value"
    path.write_text(text)
    check = FileCheck(track_file="tf", **fields)  # type: ignore[arg-type]
    result = await run_probe(check, Target("", None, track_file_path=str(path)))
    assert (result.ok, result.weight) == (ok, weight), result.detail


async def test_file_check_follows_changes_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "value"
    check = FileCheck(track_file="tf")
    target = Target("", None, track_file_path=str(path))
    missing = await run_probe(check, target)
    assert not missing.ok
    assert "ENOENT" in missing.detail
    path.write_text("4")
    assert (await run_probe(check, target)).weight == 4
    path.write_text("9")
    assert (await run_probe(check, target)).weight == 9
