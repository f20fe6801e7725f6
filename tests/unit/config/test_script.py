"""Script keywords and script security, with cases checked against keepalived 2.2.7's dump."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from shared.config.context import Context
from shared.config.host import FakeHost
from shared.config.load import load
from shared.config.model import Config
from shared.config.model_global import GlobalDefs
from shared.config.model_lvs import MiscCheck
from shared.config.node import Node
from shared.config.script import (
    Script,
    ScriptUserRef,
    check_script_security,
    iter_scripts,
    parse_script,
    script_user_notes,
    split_words,
)
from shared.scripts.files import FakeScriptFiles, FileInfo

FILE = "/etc/keepalived/keepalived.conf"
SAFE = FileInfo(uid=0, gid=0, mode=stat.S_IFREG | 0o755)


def script_node(raw: str, keyword: str = "notify_master", line: int = 12) -> Node:
    return Node(keyword, tuple(raw.split()), FILE, line, raw=raw)


def parse(raw: str) -> tuple[Script | None, Context]:
    ctx = Context()
    return parse_script(ctx, script_node(raw)), ctx


@pytest.mark.parametrize(
    ("raw", "argv", "user", "group"),
    [
        # keepalived: the second unquoted word is the user, not an argument
        ("/bin/echo hi", ["/bin/echo"], "hi", None),
        ('"/bin/echo hi"', ["/bin/echo", "hi"], None, None),
        ('"/bin/echo hi" root', ["/bin/echo", "hi"], "root", None),
        ('"/bin/echo x" root root extra', ["/bin/echo", "x"], "root", "root"),
        # dump: '/usr/bin/echo' 'a b' 'c' 'q' 'A'
        ("\"/bin/echo 'a b' c\\tq \\x41\" root root", ["/bin/echo", "a b", "c", "q", "A"], "root", "root"),
        # dump: '/usr/bin/echo' 'a' 'bc' 'd'
        ("/bin/echo\"  a  b\"'c d' root", ["/bin/echo", "a", "bc", "d"], "root", None),
        # dump: user 'z w', script x
        ("'x y' \"z w\"", ["x", "y"], "z w", None),
        ('"/bin/echo \\"a b\\" c"', ["/bin/echo", "a b", "c"], None, None),
        ('"/bin/echo a\\\\ b"', ["/bin/echo", "a b"], None, None),
        ("'/bin/echo \"a b\" c' root", ["/bin/echo", "a b", "c"], "root", None),
        ('"/bin/echo x\\ty\\\\x z"', ["/bin/echo", "x", "yx", "z"], None, None),
    ],
)
def test_tokenizing_matches_keepalived(
    raw: str, argv: list[str], user: str | None, group: str | None
) -> None:
    script, ctx = parse(raw)
    assert not ctx.diagnostics.items
    assert script is not None
    assert (script.argv, script.user, script.group) == (argv, user, group)
    assert (script.file, script.line, script.keyword) == (FILE, 12, "notify_master")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('abcd" efg h jkl "mnop', ["abcd efg h jkl mnop"]),
        ('abcd "efg h jkl" mnop', ["abcd", "efg h jkl", "mnop"]),
        ("\\a\\b\\E\\f\\n\\r\\v", ["\a\b\x1b\f\n\r\v"]),
        ("\\101\\0", ["A\0"]),
        ("\\cA\\c[", ["\x01\x1b"]),
        ("\\q\\\\", ["q\\"]),
    ],
)
def test_quoted_string_words(text: str, words: list[str]) -> None:
    assert split_words(text) == words


@pytest.mark.parametrize("raw", ['"/bin/echo', "'x", ""])
def test_bad_script_is_an_error_at_its_line(raw: str) -> None:
    script, ctx = parse(raw)
    assert script is None
    [diag] = ctx.diagnostics.items
    assert (diag.severity, diag.file, diag.line) == ("error", FILE, 12)


def test_command_that_shell_cannot_split() -> None:
    script, ctx = parse('"/bin/echo \'a"')
    assert script is None
    assert "cannot split" in ctx.diagnostics.items[0].message


def test_args_fallback_without_raw() -> None:
    ctx = Context()
    script = parse_script(ctx, Node("notify", ("/bin/true",), FILE, 3))
    assert script is not None and script.argv == ["/bin/true"]


# --- script security ---


def config_with(*scripts: Script, **global_defs: object) -> Config:
    """Scripts stored the way the other parsers will store them: anywhere in the Config."""
    config = Config(global_defs=GlobalDefs(**global_defs))  # type: ignore[arg-type]
    config.global_defs.notify_fifo_script = scripts[0] if scripts else None
    return config


def verdicts(config: Config, host: FakeHost | None = None, files: FakeScriptFiles | None = None) -> list[str]:
    ctx = Context()
    check_script_security(ctx, config, host or FakeHost(), files)
    return [f"{d.severity}:{d.line}:{d.message}" for d in ctx.diagnostics]


def make(raw: str, line: int = 12, keyword: str = "notify_master") -> Script:
    script = parse_script(Context(), script_node(raw, keyword=keyword, line=line))
    assert script is not None
    return script


def test_no_scripts_no_verdict() -> None:
    assert verdicts(config_with()) == []


def test_security_violation_without_enable_script_security() -> None:
    [v] = verdicts(config_with(make("/etc/ka/up.sh")))
    assert v == "warning:12:SECURITY VIOLATION - scripts are being executed but script_security not enabled."


def test_start_shutdown_scripts_have_their_own_violation() -> None:
    config = config_with()
    config.global_defs.startup_script = make("/etc/ka/start.sh", line=3)
    [v] = verdicts(config)
    assert v.startswith("warning:3:SECURITY VIOLATION - start/shutdown scripts")


def test_security_without_default_user_is_an_error() -> None:
    [v] = verdicts(config_with(make("/etc/ka/up.sh"), enable_script_security=True))
    assert v == "error:12:Unable to set default user keepalived_script for script"


def test_keepalived_script_user_is_the_default() -> None:
    host = FakeHost(users={"root", "keepalived_script"})
    assert verdicts(config_with(make("/etc/ka/up.sh"), enable_script_security=True), host) == []


def test_script_user_root_is_allowed() -> None:
    config = config_with(
        make("/etc/ka/up.sh"), enable_script_security=True, script_user=ScriptUserRef(user="root", line=4)
    )
    assert verdicts(config) == []


def test_unknown_script_user_is_an_error_at_its_line() -> None:
    config = config_with(
        make("/etc/ka/up.sh"), enable_script_security=True, script_user=ScriptUserRef(user="nobody", line=4)
    )
    assert verdicts(config) == ["error:4:script_user: no such user/group 'nobody'"]


def test_unquoted_argument_is_read_as_a_user() -> None:
    config = config_with(
        make("/bin/echo hi"), enable_script_security=True, script_user=ScriptUserRef(user="root")
    )
    [v] = verdicts(config)
    assert v.startswith("error:12:Script user 'hi' does not exist")


def test_unknown_group_needs_files_to_be_checked() -> None:
    config = config_with(make('"/etc/ka/up.sh" root wheel'), enable_script_security=True)
    assert verdicts(config) == []
    files = FakeScriptFiles({"/etc/ka/up.sh": SAFE})
    [v] = verdicts(config, files=files)
    assert v.startswith("error:12:Script group 'wheel' does not exist")


@pytest.mark.parametrize(
    ("info", "unsafe"),
    [
        (FileInfo(0, 0, stat.S_IFREG | 0o755), False),
        (FileInfo(0, 0, stat.S_IFREG | 0o775), False),  # group-writable by group root: fine
        (FileInfo(0, 65534, stat.S_IFREG | 0o775), True),
        (FileInfo(0, 0, stat.S_IFREG | 0o757), True),
        (FileInfo(65534, 0, stat.S_IFREG | 0o755), True),
    ],
)
def test_unsafe_file_is_disabled(info: FileInfo, unsafe: bool) -> None:
    """keepalived -t fails an unsafe vrrp_script (exit 5), and is silent about a notify script (exit 0).

    Neither refuses the configuration: a warning fails ``config check`` but a
    service runs the rest, as keepalived does.
    """
    files = FakeScriptFiles({"/etc/ka/up.sh": info})
    message = "unsafe permissions for script '/etc/ka/up.sh' (writable by a non-root user): {} is disabled"
    for keyword, severity in (("script", "warning"), ("notify_master", "note")):
        config = config_with(
            make("/etc/ka/up.sh", keyword=keyword),
            enable_script_security=True,
            script_user=ScriptUserRef(user="root"),
        )
        label = f"{keyword} /etc/ka/up.sh"
        expected = [f"{severity}:12:{message.format(label)}"] if unsafe else []
        assert verdicts(config, files=files) == expected
        assert (config.global_defs.notify_fifo_script is None) is unsafe  # dropped from the model


@pytest.mark.parametrize(("mode", "unsafe"), [(0o1777, False), (0o777, True), (0o755, False)])
def test_directories_on_the_path(mode: int, unsafe: bool) -> None:
    files = FakeScriptFiles({"/srv/s.sh": SAFE, "/srv": FileInfo(0, 0, stat.S_IFDIR | mode)})
    config = config_with(
        make("/srv/s.sh"), enable_script_security=True, script_user=ScriptUserRef(user="root")
    )
    assert bool(verdicts(config, files=files)) is unsafe


def test_non_root_script_is_not_permission_checked() -> None:
    files = FakeScriptFiles({"/srv/s.sh": FileInfo(0, 0, stat.S_IFREG | 0o777)})
    host = FakeHost(users={"root", "nobody"})
    config = config_with(
        make('"/srv/s.sh" nobody'), enable_script_security=True, script_user=ScriptUserRef(user="root")
    )
    assert verdicts(config, host, files) == []


def test_permissions_not_checked_without_script_security() -> None:
    files = FakeScriptFiles({"/srv/s.sh": FileInfo(0, 0, stat.S_IFREG | 0o777)})
    [v] = verdicts(config_with(make("/srv/s.sh"), script_user=ScriptUserRef(user="root")), files=files)
    assert "SECURITY VIOLATION" in v


def test_missing_and_path_searched_scripts_warn() -> None:
    files = FakeScriptFiles({"/usr/bin/echo": SAFE}, path={"echo": "/usr/bin/echo"})
    config = config_with(
        make('"echo hi"'), enable_script_security=True, script_user=ScriptUserRef(user="root")
    )
    [v] = verdicts(config, files=files)
    assert v.startswith("note:12:") and "PATH search at '/usr/bin/echo'" in v
    missing = "script /nonexistent/x cannot be accessed (no such file or directory): it will not run"
    for keyword, severity in (("script", "warning"), ("notify_master", "note")):
        config = config_with(
            make("/nonexistent/x", keyword=keyword),
            enable_script_security=True,
            script_user=ScriptUserRef(user="root"),
        )
        assert verdicts(config, files=files) == [f"{severity}:12:{missing}"]


def test_missing_scripts_do_not_count_as_security_violation() -> None:
    """keepalived -t is silent (exit 0) about a notify script that does not exist, even without security."""
    files = FakeScriptFiles({})
    config = config_with(make("/nonexistent/x"), script_user=ScriptUserRef(user="root"))
    [v] = verdicts(config, files=files)
    assert v.startswith("note:12:")


def test_iter_scripts_finds_scripts_anywhere() -> None:
    config = Config()
    config.global_defs.startup_script = make("/a")
    config.global_defs.lvs_notify_fifo_script = make("/b")
    assert [s.argv[0] for s in iter_scripts(config)] == ["/a", "/b"]
    assert [s.argv[0] for s in iter_scripts({"x": [make("/c")], "y": (make("/d"),)})] == ["/c", "/d"]


# --- the whole file: unsafe scripts dropped as keepalived drops them, block users, notes ---


class FilesHost(FakeHost, FakeScriptFiles):
    """A host whose users and script files are described (``script_files_for`` uses it for both)."""

    def __init__(self, files: dict[str, FileInfo], users: set[str]) -> None:
        FakeHost.__init__(self, users=users)
        FakeScriptFiles.__init__(self, files, groups={"root", "nogroup"})


UNSAFE_DIR = FileInfo(0, 0, stat.S_IFDIR | 0o777)
WHOLE = """global_defs {
  enable_script_security
  script_user nobody
}
vrrp_script chk_unsafe {
  script /srv/w/chk.sh
  user root
}
vrrp_script chk_safe {
  script /srv/ok/chk.sh
}
vrrp_instance VI_2 {
  interface eth0
  virtual_router_id 6
  virtual_ipaddress {
    10.0.0.2/24
  }
}
vrrp_sync_group G {
  group {
    VI_1
    VI_2
  }
  track_script {
    chk_unsafe
  }
}
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 5
  notify_master "/srv/w/up.sh" root
  notify_backup /srv/ok/up.sh
  track_script {
    chk_unsafe
    chk_safe
  }
  virtual_ipaddress {
    10.0.0.1/24
  }
}
virtual_server 10.0.0.1 80 {
  protocol TCP
  real_server 10.0.1.1 80 {
    MISC_CHECK {
      misc_path /srv/w/misc.sh
      user root
    }
    MISC_CHECK {
      misc_path "/srv/w/misc.sh arg"
    }
  }
}
"""


def whole(tmp_path: Path) -> tuple[Config, list[str], FilesHost]:
    path = tmp_path / "k.conf"
    path.write_text(WHOLE)
    files = {
        p: SAFE
        for p in ("/srv/w/chk.sh", "/srv/ok/chk.sh", "/srv/w/up.sh", "/srv/ok/up.sh", "/srv/w/misc.sh")
    }
    host = FilesHost({**files, "/srv/w": UNSAFE_DIR}, users={"root", "nobody"})
    loaded = load(path, config_id="x", host=host)
    return loaded.config, [f"{d.severity}:{d.line}:{d.message}" for d in loaded.diagnostics], host


def test_unsafe_scripts_are_dropped_and_the_rest_runs(tmp_path: Path) -> None:
    """keepalived: "Disabling track script chk_unsafe due to insecure" (-t exit 5), misc and notify scripts
    disabled at run time (-t exit 0); the file itself is not refused: no error, only a warning."""
    config, diags, _ = whole(tmp_path)
    assert not [d for d in diags if d.startswith("error")]
    assert [d for d in diags if d.startswith("warning") and "unsafe" in d] == [
        "warning:6:unsafe permissions for script '/srv/w/chk.sh' (writable by a non-root user): "
        "vrrp_script chk_unsafe is disabled"
    ]
    assert [int(d.split(":")[1]) for d in diags if d.startswith("note") and "unsafe" in d] == [31, 45]
    assert list(config.vrrp.scripts) == ["chk_safe"]
    assert [r.name for r in config.vrrp.instances["VI_1"].track_scripts] == ["chk_safe"]
    assert config.vrrp.sync_groups["G"].track_scripts == []
    vi = config.vrrp.instances["VI_1"]
    assert vi.notify_master is None and vi.notify_backup is not None
    [kept] = config.lvs.virtual_servers[0].real_servers[0].checkers  # the one running as nobody
    assert isinstance(kept, MiscCheck) and kept.user is None


def test_script_and_misc_path_take_no_user_words(tmp_path: Path) -> None:
    """keepalived ignores words after the command of ``script`` and ``misc_path`` (checked with its runs)."""
    config, _, _ = whole(tmp_path)
    misc = config.lvs.virtual_servers[0].real_servers[0].checkers[0]
    assert isinstance(misc, MiscCheck) and misc.misc_path is not None
    assert (misc.misc_path.argv, misc.misc_path.user) == (["/srv/w/misc.sh", "arg"], None)
    for raw, argv in (("/bin/echo hi", ["/bin/echo"]), ('"/bin/echo hi" nobody', ["/bin/echo", "hi"])):
        ctx = Context()
        script = parse_script(ctx, script_node(raw, keyword="script"), takes_user=False)
        assert script is not None and (script.argv, script.user) == (argv, None)
        [note] = ctx.diagnostics.items
        assert note.severity == "note" and "keepalived ignores" in note.message


def test_config_check_notes_who_runs_each_script(tmp_path: Path) -> None:
    config, _, host = whole(tmp_path)
    notes = [f"{d.line}: {d.message}" for d in script_user_notes(config, host)]
    assert notes == [
        "32: notify_backup /srv/ok/up.sh runs as nobody (script_user)",
        "10: vrrp_script chk_safe runs as nobody (script_user)",
        "49: MISC_CHECK /srv/w/misc.sh runs as nobody (script_user)",
    ]
    assert all(d.severity == "note" for d in script_user_notes(config, host))
