"""Redaction: no secret leaves a lifeline process in text it writes (logs, replies, events, CLI output).

Why one module: secrets reach text in many ways (a URL with a password in an
error message, a token in a webhook's query string, a header echoed back, a
configured password a library repeats), and every place text leaves a process
must apply the same rules, or the one place that forgets is the leak.  The
rules, in the order ``Redactor.text`` applies them:

1. **registered secrets**: the values this process knows to be secret (its
   NATS password, the SMTP password, webhook tokens; ``register``) are replaced
   wherever they appear verbatim, raw or percent-encoded.  Values shorter than
   ``MIN_SECRET_LENGTH`` are not registered: they occur in ordinary text (a
   port, a count) and are weak anyway; the rules below still cover them where
   their position gives them away;
2. **URL userinfo**: ``scheme://user:password@`` becomes ``user:<redacted>@``,
   and a lone ``scheme://token@`` becomes ``<redacted>@`` (NATS and many HTTP
   APIs put a token there);
3. **secret-looking parameters**: ``name=value`` after ``?``, ``&``, ``;``,
   ``#``, a space or the start, where the name's last ``_``/``-``/``.`` part
   is one of ``SECRET_WORDS`` (``token``, ``access_token``, ``X-Amz-Signature``...),
   case-insensitively;
4. **credential headers**: the value of ``Authorization``,
   ``Proxy-Authorization``, ``Cookie``, ``Set-Cookie`` and ``X-...-Token``-style
   headers written as ``Name: value`` (the auth scheme word stays: ``Bearer <redacted>``).

Fields of a ``msgspec.Struct`` annotated with ``SECRET`` are secret whole
(``auth_pass``, ``nats_password``...): ``hide_secret_fields`` replaces them for
``lifeline config dump`` and ``secrets_in`` registers them from the settings.
Everything is idempotent: redacting redacted text changes nothing.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import typing
from collections.abc import Callable, Mapping
from typing import Annotated, Final, TypeVar, cast
from urllib.parse import quote, quote_plus

import msgspec

REDACTED: Final = "<redacted>"

MIN_SECRET_LENGTH: Final = 4
"""Registered secrets shorter than this are not scrubbed verbatim (see rule 1)."""

SECRET: Final = msgspec.Meta(extra={"secret": True})
"""Marks a struct field as secret: ``password: Annotated[str | None, SECRET] = None``."""

SECRET_WORDS: Final = frozenset(
    {"token", "key", "secret", "password", "passwd", "pass", "pwd", "auth", "signature", "sig", "apikey"}
)
"""A parameter or key is secret when its last ``_``/``-``/``.`` separated part is one of these."""

CREDENTIAL_HEADERS: Final = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})

_PLAIN_WORDS: Final = frozenset({"key", "auth", "sig", "pass"})
"""As a bare mapping key these name ordinary values (a KV key, an auth type); prefixed they are secret."""

_WORDS = "|".join(sorted(SECRET_WORDS, key=len, reverse=True))
_SECRET_NAME = re.compile(rf"(?:[\w.~-]*[_.~-])?(?:{_WORDS})", re.IGNORECASE)
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^\s/?#'\"]+)@")
_PARAMETER = re.compile(
    rf"(?P<lead>^|[?&;#\s,({{\[])(?P<name>{_SECRET_NAME.pattern})=(?P<value>[^&#\s'\"<>]+)",
    re.IGNORECASE,
)
_HEADER = re.compile(
    r"(?P<name>\b(?:proxy-)?authorization|\b(?:set-)?cookie|\bx-[\w-]*?(?:token|key|secret|signature|auth))"
    r"(?P<sep>['\"]?\s*:\s*['\"]?)(?P<value>[^\r\n'\"\\]+)",
    re.IGNORECASE,
)
_AUTH_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][\w-]*)\s+(?P<credential>\S.*)$")

T = TypeVar("T")
Found = Callable[[str], None]


def is_secret_name(name: str) -> bool:
    """``token``, ``access_token``, ``X-Api-Key``, ``auth``...: names whose values are secrets."""
    return name.lower() in CREDENTIAL_HEADERS or _SECRET_NAME.fullmatch(name) is not None


def _is_secret_key(name: str) -> bool:
    """A mapping key whose value is secret: ``password``, ``api_key``; not a bare ``key`` or ``auth``."""
    return name.lower() not in _PLAIN_WORDS and is_secret_name(name)


def _credential(value: str) -> tuple[str, str]:
    """``Bearer abc`` → (``Bearer ``, ``abc``); a value without an auth scheme is all credential."""
    m = _AUTH_SCHEME.match(value.strip())
    if m is None or m.group("scheme").lower() not in ("bearer", "basic", "token", "digest", "negotiate"):
        return "", value
    return m.group("scheme") + " ", m.group("credential")


# --------------------------------------------------------------------------- the positional rules


def _userinfo(text: str, found: Found | None) -> str:
    def repl(m: re.Match[str]) -> str:
        user, colon, password = m.group("userinfo").partition(":")
        secret = password if colon else user
        if secret == REDACTED:
            return m.group(0)
        if found is not None:
            found(secret)
        kept = f"{user}:" if colon else ""
        return f"{m.group('scheme')}{kept}{REDACTED}@"

    return _USERINFO.sub(repl, text)


def _parameters(text: str, found: Found | None) -> str:
    def repl(m: re.Match[str]) -> str:
        if found is not None:
            found(m.group("value"))
        return f"{m.group('lead')}{m.group('name')}={REDACTED}"

    return _PARAMETER.sub(repl, text)


def _headers(text: str, found: Found | None) -> str:
    def repl(m: re.Match[str]) -> str:
        scheme, credential = _credential(m.group("value"))
        if credential.strip() == REDACTED:
            return m.group(0)
        if found is not None:
            found(credential.strip())
        return f"{m.group('name')}{m.group('sep')}{scheme}{REDACTED}"

    return _HEADER.sub(repl, text)


def _positional(text: str, found: Found | None = None) -> str:
    """Rules 2-4: what needs no registry, only the shape of the text."""
    if "=" not in text and ":" not in text:  # every rule needs one: most text is done here
        return text
    return _headers(_parameters(_userinfo(text, found), found), found)


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``headers`` with credential values redacted (the auth scheme word stays)."""
    out: dict[str, str] = {}
    for name, value in headers.items():
        if is_secret_name(name):
            scheme, _credential_part = _credential(value)
            out[name] = f"{scheme}{REDACTED}"
        else:
            out[name] = value
    return out


# --------------------------------------------------------------------------- the registry


class Redactor:
    """The rules above plus this process's registered secrets; ``REDACTOR`` is the process's one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: frozenset[str] = frozenset()
        self._known: re.Pattern[str] | None = None

    def register(self, *secrets: str | bytes | None) -> None:
        """Scrub these values (and their percent-encodings) from every text from now on."""
        new: set[str] = set()
        for secret in secrets:
            value = secret.decode("latin-1") if isinstance(secret, bytes) else secret
            if value is None or len(value) < MIN_SECRET_LENGTH or value == REDACTED:
                continue
            new.update({value, quote(value, safe=""), quote_plus(value, safe="")})
        with self._lock:
            if new <= self._secrets:
                return
            self._secrets |= new
            ordered = sorted(self._secrets, key=len, reverse=True)  # longest first: no partial leftovers
            self._known = re.compile("|".join(re.escape(s) for s in ordered))

    @property
    def registered(self) -> int:
        return len(self._secrets)

    def text(self, text: str) -> str:
        """``text`` with every secret the rules recognise replaced by ``<redacted>``."""
        if not text:
            return text
        known = self._known
        if known is not None:
            text = known.sub(REDACTED, text)
        return _positional(text)

    def tree(self, value: T) -> T:
        """A JSON-like value (dicts, lists, strings) redacted: strings by ``text``, secret keys whole.

        A secret key is one ``is_secret_name`` accepts but for the bare words
        ``key``, ``auth``, ``sig`` and ``pass``, which name ordinary values in
        the replies and views (a KV entry's ``key``).  ``headers`` mappings go
        through ``redact_headers``.
        """
        return cast(T, self._tree(value))

    def _tree(self, value: object) -> object:
        if type(value) is str:
            return self.text(value)
        if isinstance(value, Mapping):
            return {k: self._entry(k, v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            items = [self._tree(v) for v in value]
            return items if isinstance(value, list) else tuple(items)
        return value

    def _entry(self, key: object, value: object) -> object:
        if isinstance(key, str) and isinstance(value, str | bytes) and value and _is_secret_key(key):
            return REDACTED
        if isinstance(key, str) and key.lower() == "headers" and isinstance(value, Mapping):
            return redact_headers({str(k): str(v) for k, v in value.items()})
        return self._tree(value)

    def struct(self, obj: T) -> T:
        """A struct (an event, a dead letter) with every string field redacted; unchanged fields kept as is.

        Only fields whose text changes are replaced, so enum members and the
        struct's identity survive when there is nothing to redact (the common case).
        """
        if not isinstance(obj, msgspec.Struct):
            return obj
        changes: dict[str, object] = {}
        for name in obj.__struct_fields__:
            value = getattr(obj, name)
            if type(value) is str:
                new: object = self.text(value)
            elif isinstance(value, tuple | list) and any(type(v) is str for v in value):
                new = type(value)(self.text(v) if type(v) is str else v for v in value)
            elif isinstance(value, msgspec.Struct):
                new = self.struct(value)
            else:
                continue
            if new != value:
                changes[name] = new
        return msgspec.structs.replace(obj, **changes) if changes else obj


REDACTOR: Final = Redactor()
"""This process's redactor: the runner and the CLI register the settings' secrets in it."""


def redact(text: str) -> str:
    """``REDACTOR.text``: the one call for any text about to leave the process."""
    return REDACTOR.text(text)


def register_secrets(*secrets: str | bytes | None) -> None:
    REDACTOR.register(*secrets)


# --------------------------------------------------------------------------- structs and settings


@functools.cache
def secret_fields(cls: type[msgspec.Struct]) -> frozenset[str]:
    """Names of the fields of ``cls`` annotated with ``SECRET``."""
    names = set()
    for field in msgspec.structs.fields(cls):
        if typing.get_origin(field.type) is Annotated:
            metas = field.type.__metadata__
            if any(isinstance(m, msgspec.Meta) and (m.extra or {}).get("secret") for m in metas):
                names.add(field.name)
    return frozenset(names)


def hide_secret_fields(obj: T) -> T:
    """``obj`` (a struct tree) with every non-empty ``SECRET`` field ``"<redacted>"`` and strings redacted.

    For showing a model (``lifeline config dump``): a secret field's value is
    never shown, and a secret inside any other string (a URL with a password
    in a notify script's command line, a ``?token=`` in a check's URL) goes by
    the rules.  Registered secrets apply too.
    """
    return cast(T, _hide(obj))


def _hide(value: object) -> object:
    if isinstance(value, msgspec.Struct):
        marked = secret_fields(type(value))
        changes: dict[str, object] = {}
        for name in value.__struct_fields__:
            old = getattr(value, name)
            new = (REDACTED if old else old) if name in marked else _hide(old)
            if new is not old:
                changes[name] = new
        return msgspec.structs.replace(value, **changes) if changes else value
    if type(value) is str:
        new_text = redact(value)
        return value if new_text == value else new_text
    if isinstance(value, dict):
        return {k: _hide(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        items = [_hide(v) for v in value]
        return items if isinstance(value, list) else tuple(items)
    return value


def secrets_in(obj: object) -> set[str]:
    """The secret values ``obj`` holds: ``SECRET`` fields, secret-named keys, URL and header credentials.

    ``obj`` is a struct tree such as ``Settings``; untyped parts (a sink's
    ``options`` table) are read by the rules: ``token = "..."``, a ``url`` with
    a password or ``?token=``, ``headers = {Authorization = "Bearer ..."}``.
    """
    found: set[str] = set()
    _collect(obj, found)
    return {s for s in found if s and s != REDACTED}


def _collect(value: object, found: set[str]) -> None:
    if isinstance(value, msgspec.Struct):
        marked = secret_fields(type(value))
        for name in value.__struct_fields__:
            field = getattr(value, name)
            if name in marked:
                _add(field, found)
            else:
                _collect(field, found)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str) and is_secret_name(key) and isinstance(item, str | bytes):
                _add(_credential(item)[1] if isinstance(item, str) else item, found)
            else:
                _collect(item, found)
    elif isinstance(value, list | tuple):
        for item in value:
            _collect(item, found)
    elif isinstance(value, str):
        _positional(value, found.add)


def _add(value: object, found: set[str]) -> None:
    if isinstance(value, bytes):
        found.add(value.decode("latin-1"))
    elif isinstance(value, str):
        found.add(value)


def register_secrets_of(*objs: object) -> None:
    """Register every secret ``secrets_in`` finds in ``objs`` (the settings, at start)."""
    register_secrets(*(s for obj in objs for s in secrets_in(obj)))


# --------------------------------------------------------------------------- logging


class RedactingFilter(logging.Filter):
    """A handler filter: each record's message, traceback and stack are redacted before formatting.

    On the handler, not a logger: records of child loggers reach the root's
    handlers without passing the root logger's filters.
    """

    def __init__(self, redactor: Redactor = REDACTOR) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # bad arguments: the formatter would print them raw in its error report
            message = f"{record.msg!s} (arguments {record.args!r} do not fit)"
        clean = self.redactor.text(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redactor.text(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redactor.text(record.stack_info)
        return True
