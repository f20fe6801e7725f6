"""The ``lifeline`` command never surprises: lazy imports, --version, completion, checks, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from shared.cli.commands import COMMANDS
from shared.cli.completion import words_by_path
from shared.cli.main import build_parser, main

BROKEN = "vrrp_instance VI_1 {\n  interface lo\n  virtual_router_id 300\n  priority 100\n}\n"


def _imports_of(*argv: str) -> set[str]:
    """The modules a fresh ``lifeline ARGV`` process has imported when it exits."""
    code = (
        "import sys, json\nfrom shared.cli.main import main\n"
        f"try:\n    main({list(argv)!r})\nexcept SystemExit:\n    pass\n"
        "print(json.dumps(sorted(sys.modules)), file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


def test_help_imports_no_subcommand_and_no_nats() -> None:
    loaded = _imports_of("--help")
    assert not {
        m for m in loaded if m.startswith(("nats", "shared.cli.status", "shared.config", "shared.bus"))
    }


def test_a_command_imports_only_its_own_module() -> None:
    loaded = _imports_of("config", "--help")
    assert "shared.cli.config" in loaded
    assert not {"shared.cli.up", "shared.cli.demo", "shared.cli.status", "nats"} & loaded


def test_every_command_of_the_table_is_in_the_help_in_order(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    positions = [out.index(f"\n    {name}") for name in COMMANDS]
    assert positions == sorted(positions)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.startswith("lifeline ")


def test_completion_offers_commands_verbs_and_flags_of_the_real_parser() -> None:
    table = words_by_path(build_parser())
    assert set(COMMANDS) <= set(table[""])
    assert {"check", "dump"} <= set(table["config"])
    assert "--strict-compat" in table["config check"] and "--json" in table["config check"]
    assert {"set-priority", "maintenance", "clear"} <= set(table["instance"])


def test_completion_script_completes_in_bash(tmp_path: Path) -> None:
    script = tmp_path / "lifeline.bash"
    script.write_text(subprocess.run([sys.executable, "-m", "shared.cli.main", "completion", "bash"],
                                     capture_output=True, text=True, check=True).stdout)  # fmt: skip
    words = "COMP_WORDS=(lifeline config check --st); COMP_CWORD=3"
    probe = f"source {script}; {words}; _lifeline; echo ${{COMPREPLY[@]}}"
    done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["--strict-compat"]


@pytest.mark.parametrize("priority", ["0", "255", "300", "-1", "high"])
def test_set_priority_is_checked_before_any_connection(
    priority: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["instance", "set-priority", "VI_1", priority, "--nats", "nats://192.0.2.1:4222"])
    assert exc.value.code == 2 and "Traceback" not in capsys.readouterr().err


def test_config_dump_of_a_file_with_errors_exits_78(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(BROKEN)
    assert main(["config", "dump", "--no-host-checks", str(conf)]) == 78
    out, err = capsys.readouterr()
    assert isinstance(json.loads(out), dict) and f"{conf}:3: error" in err  # the model, and why 78
    assert main(["config", "dump", "--no-host-checks", str(tmp_path / "missing.conf")]) == 78


def test_config_check_json_has_the_verdict_and_every_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(BROKEN)
    assert main(["config", "check", "--json", "--no-host-checks", str(conf)]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is False and document["exit"] == 1
    assert {"file": str(conf), "line": 3, "severity": "error"}.items() <= document["files"][0]["lines"][
        0
    ].items()


def test_a_missing_settings_file_is_a_configuration_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--settings", "/nonexistent/lifeline.toml"]) == 78
    assert "no such settings file" in capsys.readouterr().err
