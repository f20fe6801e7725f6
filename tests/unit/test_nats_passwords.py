"""Passwords: generated ones always survive nats-server's environment parsing; bad ones are refused.

The rule is checked against the real ``nats-server -t``: values the check
calls misparsed are misparsed (or refused) by nats-server when they come from
an environment variable, and generated values never are.  ``.env.example``'s
password lines are refused, so a copied example cannot start a bus.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from shared.lab.nats import nats_server_binary
from shared.nats_passwords import (
    MIN_LENGTH,
    PasswordError,
    check_env_password,
    check_password,
    generate_password,
)
from shared.secret_files import parse_env

REPO = Path(__file__).parents[2]
TAIL = "abcdefghijklmnopq"
"""Makes a sample long enough that only the rule under test can refuse it."""


def nats_server_reads(tmp_path: Path, value: str) -> subprocess.CompletedProcess[str]:
    """``nats-server -t`` on a config whose one password is ``$PW`` = ``value``."""
    conf = tmp_path / "env.conf"
    conf.write_text('listen: "127.0.0.1:4999"\naccounts { A: { users: [ { user: "u", password: $PW } ] } }\n')
    return subprocess.run(
        [nats_server_binary(), "-t", "-c", str(conf)],
        check=False,
        capture_output=True,
        text=True,
        env={"PW": value},
        timeout=30,
    )


def test_generated_passwords_start_with_a_letter_and_are_url_safe() -> None:
    seen = {generate_password() for _ in range(2000)}
    assert len(seen) == 2000
    for pw in seen:
        assert len(pw) == 33 and pw[0].isalpha()
        assert check_env_password("X", pw) == pw


@pytest.mark.parametrize(
    "value",
    [
        "-y" + TAIL,  # the flaky case: "Expected a digit but got 'y'"
        "12.5" + TAIL,  # a float, then garbage
        "1234-" + TAIL,  # the start of a date
        "1234567890123456789",  # an integer where a string belongs
        "2024-01-01T00:00:00Z" + "",  # a date
        "abc def" + TAIL,  # a space ends an unquoted value
        "abc,def" + TAIL,
        "abc'def" + TAIL,
        "abc\\qdef" + TAIL,  # an escape
    ],
)
def test_what_the_check_calls_misparsed_nats_server_does_misparse(tmp_path: Path, value: str) -> None:
    with pytest.raises(PasswordError, match="PW"):
        check_env_password("PW", value)
    done = nats_server_reads(tmp_path, value)
    assert done.returncode != 0, done.stdout


def test_generated_passwords_pass_nats_server(tmp_path: Path) -> None:
    for _ in range(20):
        done = nats_server_reads(tmp_path, generate_password())
        assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("$HOME" + TAIL, "reference to another variable"),  # nats-server accepts it: silently another value
        ("12y" + TAIL, "starts with '1'"),  # a string to nats-server today, refused to stay clear of numbers
        ("Abc/def" + TAIL, "contains '/'"),  # fine unquoted, not in a nats:// URL
        ("Ä" + TAIL, "must start with a letter"),
    ],
)
def test_env_passwords_are_refused_beyond_what_fails_today(value: str, why: str) -> None:
    with pytest.raises(PasswordError, match=why):
        check_env_password("PW", value)


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (None, "X is empty or not set"),
        ("", "X is empty or not set"),
        ("change-me-admin", "X is the example placeholder"),
        ("xxCHANGEME-please-and-more", "example placeholder"),
        ("a" * (MIN_LENGTH - 1), "too short"),
    ],
)
def test_empty_example_and_short_passwords_are_refused(value: str | None, why: str) -> None:
    with pytest.raises(PasswordError, match=why):
        check_password("X", value)
    with pytest.raises(PasswordError, match=why):
        check_env_password("X", value)


def test_quoted_passwords_may_hold_any_character() -> None:
    """Leaf and route passwords go quoted into the config and percent-encoded into URLs."""
    assert check_password("X", "-1 $x/y@z" + TAIL) == "-1 $x/y@z" + TAIL


def test_every_password_line_of_env_example_is_refused() -> None:
    """A copied ``.env.example`` cannot start a bus: each password in it, set or commented, is refused."""
    lines = [line.lstrip("#") for line in (REPO / ".env.example").read_text().splitlines()]
    passwords = {var: value for var, value in parse_env("\n".join(lines)).items() if "PASSWORD" in var}
    assert len(passwords) >= 7  # five users, the leaf, the route
    for var, value in passwords.items():
        with pytest.raises(PasswordError, match=var):
            check_env_password(var, value)
