"""The reload diff: what counts as a change, and at which granularity."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.checker.core.reload_diff import CheckDiff, comparable, diff
from services.checker.scheduler import build_entries
from services.checker.service import CheckKey, Options, build_tracker_units
from services.checker.trackers.file import init_file
from shared.config.load import load_strict
from shared.config.model import Config
from shared.config.model_lvs import PingCheck, TcpCheck, Where
from shared.config.model_vrrp import TrackFile
from shared.config.script import Script
from shared.events import Event


def test_diff_sorts_keys_by_fate_in_file_order() -> None:
    running = {"a": 1, "b": 2, "c": 3, "d": 4}
    wanted = {"e": 5, "d": 4, "b": 20, "a": 1, "f": 6}
    got = diff(running, wanted)
    assert got == CheckDiff(added=("e", "f"), removed=("c",), changed=("b",), kept=("d", "a"))
    assert got.summary() == "2 added, 1 removed, 1 changed, 2 kept"


def test_diff_of_nothing_and_of_the_same() -> None:
    assert diff({}, {}).summary() == "0 added, 0 removed, 0 changed, 0 kept"
    same = {"x": (1, ("y",)), "z": None}
    assert diff(same, dict(same)) == CheckDiff(kept=("x", "z"))


def test_comparable_ignores_where_a_thing_was_written_but_not_what_it_is() -> None:
    a = TcpCheck(connect_port=80, retry=3, where=Where("k.conf", 10))
    assert comparable(a) == comparable(TcpCheck(connect_port=80, retry=3, where=Where("other.conf", 99)))
    assert comparable(a) != comparable(TcpCheck(connect_port=80, retry=4, where=Where("k.conf", 10)))
    assert comparable(a) != comparable(PingCheck(connect_port=80, retry=3))  # same fields, another kind
    s = Script("/bin/true", ["/bin/true"], file="k.conf", line=3, keyword="script")
    assert comparable(s) == comparable(Script("/bin/true", ["/bin/true"], file="x", line=30))
    assert comparable(s) != comparable(Script("/bin/true x", ["/bin/true", "x"], file="k.conf", line=3))


def checks(config: Config) -> dict[CheckKey, object]:
    """What the service compares: trackers and (virtual, real) pairs with their fingerprints."""
    events: list[Event] = []
    opts = Options(node="n", nats_url="nats://127.0.0.1:1")
    out: dict[CheckKey, object] = {
        CheckKey(u.key): u.fingerprint for u in build_tracker_units(config, opts, events.append, None)
    }
    for key, entries in build_entries(config).items():
        out.update((CheckKey(key, e.virtual), e.fingerprint) for e in entries)
    return out


def load(tmp_path: Path, name: str, text: str) -> Config:
    path = tmp_path / name
    path.write_text(text)
    return load_strict(path, config_id="test")


def real(port: int, retry: int = 1) -> str:
    return f"""
  real_server 127.0.0.1 {port} {{
    TCP_CHECK {{
      retry {retry}
    }}
  }}"""


def vs(port: int, *reals: str) -> str:
    head = f"virtual_server 10.0.0.1 {port} {{\n  protocol TCP\n  lb_algo rr\n  lb_kind NAT\n"
    return head + "".join(reals) + "\n}\n"


SCRIPTS = """
vrrp_script a {
  script "/bin/true"
  interval 1
}
vrrp_script b {
  script "/bin/false"
  weight -5
}
"""


def test_moved_blocks_and_comments_are_no_change(tmp_path: Path) -> None:
    old = load(
        tmp_path, "old.conf", "global_defs {\n  script_user root\n}\n" + SCRIPTS + vs(80, real(1), real(2))
    )
    moved = load(
        tmp_path,
        "new.conf",
        "# a comment\n\nglobal_defs {\n  script_user root\n}\n\n"
        + vs(80, real(2), "\n  # between\n", real(1))
        + '\nvrrp_script b {\n  script "/bin/false"\n  weight -5\n}\n\n'
        + 'vrrp_script a {\n  script "/bin/true"\n  interval 1\n}\n',
    )
    got = diff(checks(old), checks(moved))
    assert got.summary() == "0 added, 0 removed, 0 changed, 4 kept"


def test_a_changed_real_server_leaves_its_siblings_and_its_address_elsewhere_kept(tmp_path: Path) -> None:
    old = load(tmp_path, "old.conf", vs(80, real(1), real(2), real(3)) + vs(81, real(1), real(2)))
    new = load(tmp_path, "new.conf", vs(80, real(1, retry=5), real(2), real(4)) + vs(81, real(1), real(2)))
    got = diff(checks(old), checks(new))
    assert got.changed == (CheckKey("rs:127.0.0.1:1", "10.0.0.1:80/tcp"),)
    assert got.added == (CheckKey("rs:127.0.0.1:4", "10.0.0.1:80/tcp"),)
    assert got.removed == (CheckKey("rs:127.0.0.1:3", "10.0.0.1:80/tcp"),)
    assert CheckKey("rs:127.0.0.1:1", "10.0.0.1:81/tcp") in got.kept  # same address, other service
    assert got.summary() == "1 added, 1 removed, 1 changed, 3 kept"


def test_real_server_weight_and_inherited_timing_are_changes(tmp_path: Path) -> None:
    old = load(tmp_path, "old.conf", vs(80, real(1), real(2)))
    weighted = load(
        tmp_path, "w.conf", vs(80, real(1).replace("TCP_CHECK", "weight 3\n    TCP_CHECK"), real(2))
    )
    assert diff(checks(old), checks(weighted)).changed == (CheckKey("rs:127.0.0.1:1", "10.0.0.1:80/tcp"),)
    slower = load(
        tmp_path, "s.conf", vs(80, real(1), real(2)).replace("lb_algo rr", "lb_algo rr\n  delay_loop 9")
    )
    assert len(diff(checks(old), checks(slower)).changed) == 2  # the checkers inherit delay_loop


def test_script_user_and_script_changes_change_the_tracker(tmp_path: Path) -> None:
    old = load(tmp_path, "old.conf", "global_defs {\n  script_user root\n}\n" + SCRIPTS)
    user = load(tmp_path, "u.conf", "global_defs {\n  script_user nobody\n}\n" + SCRIPTS)
    got = diff(checks(old), checks(user))
    assert got.changed == (CheckKey("track:a"), CheckKey("track:b"))
    fall = load(
        tmp_path, "f.conf", "global_defs {\n  script_user root\n}\n" + SCRIPTS.replace("interval 1", "fall 3")
    )
    got = diff(checks(old), checks(fall))
    assert got.changed == (CheckKey("track:a"),) and got.kept == (CheckKey("track:b"),)


def test_init_file_at_a_reload_creates_a_missing_file_but_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "prio"
    spec = TrackFile(name="prio", file=str(path), init_file=True, init_value=5, init_overwrite=True)
    init_file(spec, reload=True)
    assert path.read_text() == "5\n"
    path.write_text("9\n")  # what an operator set since
    init_file(spec, reload=True)
    assert path.read_text() == "9\n"
    init_file(spec)  # at start, overwrite means overwrite
    assert path.read_text() == "5\n"


def test_init_file_never_writes_through_a_symlink(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """``track_file`` in a shared directory: a planted symlink must not make root overwrite its target."""
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    path = tmp_path / "prio"
    path.symlink_to(victim)
    spec = TrackFile(name="prio", file=str(path), init_file=True, init_value=5, init_overwrite=True)
    init_file(spec)
    assert victim.read_text() == "precious\n" and path.is_symlink()
    assert any("symbolic link" in r.getMessage() for r in caplog.records)
