"""``lifeline config check`` reads lifeline.toml too: warnings about it, never a change of the verdict."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.cli.main import main
from shared.settings import Settings, SmtpSettings, settings_warnings

CONF = "global_defs {\n    router_id lab1\n}\n"


def check(tmp_path: Path, toml: str | None, *extra: str) -> int:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONF)
    argv = ["config", "check", "--no-host-checks", str(conf), *extra]
    if toml is not None:
        settings = tmp_path / "lifeline.toml"
        settings.write_text(toml)
        argv += ["--settings", str(settings)]
    return main(argv)


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('[smtp]\nusername = "alerts"\npassword = "s3cret"\n', "refuses to send AUTH in clear text"),
        (
            '[smtp]\nusername = "alerts"\npassword = "s3cret"\nallow_plaintext_auth = true\n',
            "crosses the network in clear text",
        ),
    ],
)
def test_credentials_without_tls_are_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], toml: str, expected: str
) -> None:
    status = check(tmp_path, toml)
    err = capsys.readouterr().err
    assert status == 0  # keepalived -t would accept this keepalived.conf: so do we
    [line] = [line for line in err.splitlines() if "[smtp]" in line]
    assert line.startswith(f"{tmp_path / 'lifeline.toml'}: warning: [smtp] ")
    assert expected in line


@pytest.mark.parametrize(
    "toml",
    [
        '[smtp]\nusername = "alerts"\npassword = "s3cret"\nstarttls = true\n',
        '[smtp]\nusername = "alerts"\npassword = "s3cret"\nuse_tls = true\n',
        "[smtp]\n",
        "",
    ],
)
def test_no_warning_with_tls_or_without_credentials(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], toml: str
) -> None:
    status = check(tmp_path, toml)
    assert status == 0
    assert "warning" not in capsys.readouterr().err


def test_a_named_settings_file_that_is_wrong_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = check(tmp_path, "[smtp]\nallow_plain_auth = true\n")  # misspelt: unknown field
    assert status == 2
    assert "lifeline.toml" in capsys.readouterr().err
    missing = main(
        [
            "config",
            "check",
            "--no-host-checks",
            str(tmp_path / "keepalived.conf"),
            "--settings",
            "/nonexistent.toml",
        ]
    )
    assert missing == 2


def test_the_hosts_own_file_is_read_unless_the_config_is_for_another_host(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    host_settings = tmp_path / "host.toml"
    host_settings.write_text('[smtp]\nusername = "alerts"\n')
    monkeypatch.setenv("LIFELINE_SETTINGS", str(host_settings))
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONF)
    assert main(["config", "check", str(conf)]) in (0, 1)  # host checks may judge this machine; not our point
    assert f"{host_settings}: warning: [smtp]" in capsys.readouterr().err
    assert main(["config", "check", "--no-host-checks", str(conf)]) == 0
    assert "[smtp]" not in capsys.readouterr().err


def test_warnings_are_a_pure_function_of_the_settings() -> None:
    assert settings_warnings(Settings()) == []
    assert (
        settings_warnings(Settings(smtp=SmtpSettings(password="only a password"))) == []
    )  # no AUTH without a user
    assert len(settings_warnings(Settings(smtp=SmtpSettings(username="u")))) == 1
