"""NATS passwords: generated so nats-server always reads them back unchanged, and checked before use.

Why a module of its own: a password reaches nats-server in two ways.  Written
into the config it is a quoted string, and any non-empty value works.  Given
as an environment variable reference (``password: $LIFELINE_NATS_PASSWORD_VRRP``,
what compose and the systemd unit do) nats-server parses the variable's value
as if it were written *unquoted* in the config, so the config language's rules
apply to it (conf/lex.go and conf/parse.go of nats-server):

- a value that starts with a digit or ``-`` is lexed as a number: an integer,
  a size (``1k``, ``1kb``, ``2MB``), a float, an ISO 8601 date, an IP address;
  ``-`` followed by a letter is a parse error ("Expected a digit but got 'y'");
  ``12.5abc`` and ``1234-x`` are errors; ``1kb`` becomes the integer 1024, and
  a number where a password belongs is refused ("int64, not string");
- ``true``, ``false``, ``yes``, ``no``, ``on``, ``off`` (any case) are booleans;
- ``$NAME`` is a reference to *another* variable: the password silently
  becomes that variable's value;
- ``'`` ``"`` ``{`` ``[`` ``(`` start a quoted string, a map, an array, a block;
  ``\\`` starts an escape; space, tab, ``,`` ``;`` ``]`` ``}`` end the value.

So a password fit for the environment starts with a letter and holds only
letters, digits and ``- _ . ~`` (the last four also keep it usable unencoded
in a ``nats://user:password@`` URL, which compose builds).  The generator
produces exactly that; operators' values are checked against it, and every
password against the mistakes that make an authentication meaningless:
empty, the example placeholder, too short.
"""

from __future__ import annotations

import re
import secrets
import string

MIN_LENGTH = 16
"""Shorter passwords are refused: every generated one has 33 characters (about 197 bits)."""

EXAMPLE_MARKERS = ("change-me", "changeme")
"""Placeholders of examples and older ``.env.example`` files (``change-me-admin`` ...): never a password."""

_ENV_SAFE = re.compile(r"[A-Za-z][A-Za-z0-9._~-]*\Z")
_SAFE_CHARS = frozenset(string.ascii_letters + string.digits + "._~-")


class PasswordError(ValueError):
    """A password that must not be used; the message names where it came from and why."""


def generate_password() -> str:
    """A random password nats-server reads back unchanged from an environment variable.

    A letter first (a digit or ``-`` would make it a number or a parse error),
    then 32 URL-safe base64 characters (``A-Z a-z 0-9 - _``).
    """
    return secrets.choice(string.ascii_letters) + secrets.token_urlsafe(24)


def check_password(name: str, value: str | None) -> str:
    """``value`` if it is a usable password, else :class:`PasswordError` naming ``name``.

    For passwords written quoted into a config or a URL (where any character
    is fine): not empty, not an example placeholder, at least :data:`MIN_LENGTH`.
    """
    if not value:
        raise PasswordError(f"{name} is empty or not set: generate one (docs/deploy.md, passwords)")
    lowered = value.lower()
    if any(marker in lowered for marker in EXAMPLE_MARKERS):
        raise PasswordError(f"{name} is the example placeholder {value!r}: generate a password")
    if len(value) < MIN_LENGTH:
        raise PasswordError(f"{name} is too short ({len(value)} characters, at least {MIN_LENGTH})")
    return value


def check_env_password(name: str, value: str | None) -> str:
    """:func:`check_password`, and nats-server must read it from the environment as this very string."""
    check_password(name, value)
    assert value is not None  # check_password refused None
    if _ENV_SAFE.match(value):
        return value
    raise PasswordError(f"{name}: {env_misparse(value)}; use a generated password")


def env_misparse(value: str) -> str:
    """Why nats-server would not read ``value`` from an environment variable as that string."""
    first = value[0]
    if first.isdigit() or first in "-.+":
        return (
            f"starts with {first!r}: nats-server reads such a value as a number, size (1kb), "
            "date or IP address, or refuses it"
        )
    if first == "$":
        return "starts with '$': nats-server reads it as a reference to another variable"
    if not first.isascii() or not first.isalpha():
        return f"starts with {first!r}: it must start with a letter"
    bad = next(ch for ch in value if ch not in _SAFE_CHARS)
    return (
        f"contains {bad!r}: only letters, digits and - _ . ~ are safe unquoted in nats-server's "
        "config and in nats:// URLs"
    )
