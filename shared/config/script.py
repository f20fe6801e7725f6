"""Script keywords (notify*, script, misc_path, quorum_up...) and script security, as keepalived 2.2.7.

Two tokenizing passes, both checked against keepalived's own dump (``keepalived -d``):

1. The text after the keyword is split into words.  ``"`` and ``'`` quote regions
   keep their whitespace and lose their quotes, even in the middle of a word
   (``/bin/echo"  a"`` is one word); C escapes (``\\t``, ``\\x41``, ``\\033``,
   ``\\cC``...) are decoded everywhere, and ``\\C`` is a literal ``C``.  Word 1 is
   the command line, word 2 the user, word 3 the group; more words are ignored.
2. The command line is split into ``argv`` the way a POSIX shell would: single
   and double quotes group, backslash escapes one character.

So ``notify_master /bin/echo hi`` runs ``/bin/echo`` *as user* ``hi`` (which
usually does not exist, and keepalived then drops the script), while
``notify_master "/bin/echo hi"`` runs ``/bin/echo hi`` as the default user.

Script security has to see every script of the file, and those are parsed by
three parsers.  Rather than a registry, each Script carries the file and line
it came from, and ``iter_scripts`` walks the finished ``Config`` for every
``Script`` value wherever a parser stored it: the vrrp and lvs parsers only
have to keep the ``Script`` that ``parse_script`` returned.
"""

from __future__ import annotations

import functools
import grp
import os
import shlex
import shutil
import stat
import typing
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import msgspec

from shared.config.context import Context, Handler, set_parsed
from shared.config.node import Node

if TYPE_CHECKING:
    from shared.config.host import Host
    from shared.config.model import Config

DEFAULT_SCRIPT_USER = "keepalived_script"
ROOT_USER = "root"
IMPLICIT_ROOT = "(root by fallback)"

_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "E": "\x1b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
}
_OCTAL = "01234567"
_HEX = "0123456789abcdefABCDEF"


class Script(msgspec.Struct, frozen=True):
    """One configured script.  ``file``/``line``/``keyword`` say where, for diagnostics made later."""

    command: str
    argv: list[str]
    user: str | None = None
    group: str | None = None
    file: str = ""
    line: int = 0
    keyword: str = ""


class QuoteError(ValueError):
    """A quote was opened and never closed."""


def split_words(text: str) -> list[str]:
    """Pass 1: keepalived's quoted-string words (quotes removed, escapes decoded)."""
    words: list[str] = []
    current: list[str] = []
    in_word = False
    quote: str | None = None
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            decoded, i = _decode_escape(text, i + 1)
            current.append(decoded)
            in_word = True
            continue
        if quote is not None:
            if ch == quote:
                quote = None
            else:
                current.append(ch)
        elif ch in "\"'":
            quote = ch
            in_word = True
        elif ch.isspace():
            if in_word:
                words.append("".join(current))
                current, in_word = [], False
        else:
            current.append(ch)
            in_word = True
        i += 1
    if quote is not None:
        raise QuoteError(f"unterminated {quote} quote")
    if in_word:
        words.append("".join(current))
    return words


def _decode_escape(text: str, i: int) -> tuple[str, int]:
    """Decode the escape whose body starts at ``text[i]``; return the text and the next index."""
    if i >= len(text):
        return "\\", i
    ch = text[i]
    if ch in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[ch], i + 1
    if ch in _OCTAL:
        end = i
        while end < len(text) and end < i + 3 and text[end] in _OCTAL:
            end += 1
        return chr(int(text[i:end], 8) & 0xFF), end
    if ch == "x":
        end = i + 1
        while end < len(text) and end < i + 3 and text[end] in _HEX:
            end += 1
        if end == i + 1:
            return "x", end
        return chr(int(text[i + 1 : end], 16)), end
    if ch == "c" and i + 1 < len(text):
        return chr(ord(text[i + 1].upper()) ^ 0x40), i + 2
    return ch, i + 1


def split_command(command: str) -> list[str]:
    """Pass 2: the command line into argv (POSIX shell quoting); raises ValueError if unbalanced."""
    return shlex.split(command, posix=True)


def parse_script(ctx: Context, node: Node) -> Script | None:
    """Parse ``node`` as a script keyword; report a missing or unsplittable command at its line."""
    try:
        words = split_words(node.raw) if node.raw.strip() else list(node.args)
    except QuoteError as exc:
        ctx.error(node, f"'{node.keyword}': {exc}")
        return None
    if not words or not words[0].strip():
        ctx.error(node, f"'{node.keyword}' needs a script to run")
        return None
    command = words[0]
    try:
        argv = split_command(command)
    except ValueError as exc:
        ctx.error(node, f"'{node.keyword}': cannot split script '{command}': {exc}")
        return None
    if not argv:
        ctx.error(node, f"'{node.keyword}' needs a script to run")
        return None
    return Script(
        command=command,
        argv=argv,
        user=words[1] if len(words) > 1 else None,
        group=words[2] if len(words) > 2 else None,
        file=node.file,
        line=node.line,
        keyword=node.keyword,
    )


# --- finding every script in a Config ---


def iter_scripts(value: object) -> Iterator[Script]:
    """Every ``Script`` reachable from ``value`` (a Config or any part of it), in field order."""
    if isinstance(value, Script):
        yield value
    elif isinstance(value, msgspec.Struct):
        for name in _fields_that_may_hold_scripts(type(value)):
            yield from iter_scripts(getattr(value, name))
    elif isinstance(value, dict):
        for item in value.values():
            yield from iter_scripts(item)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from iter_scripts(item)


@functools.cache
def _fields_that_may_hold_scripts(cls: type[msgspec.Struct]) -> tuple[str, ...]:
    """Fields whose declared type can contain a Struct: a 10,000-server model walks in milliseconds."""
    try:
        hints = typing.get_type_hints(cls)
    except (NameError, TypeError):  # an annotation we cannot resolve: walk every field
        return tuple(cls.__struct_fields__)
    return tuple(name for name in cls.__struct_fields__ if _may_hold_struct(hints.get(name, object)))


def _may_hold_struct(hint: object) -> bool:
    if isinstance(hint, type):
        return issubclass(hint, msgspec.Struct) or hint is object
    args = typing.get_args(hint)
    if typing.get_origin(hint) is typing.Literal:
        return False
    return any(_may_hold_struct(arg) for arg in args) if args else True


# --- the files behind the scripts: a seam so tests need no root and no real files ---


@dataclass(frozen=True)
class FileInfo:
    """What script security looks at for one path component."""

    uid: int
    gid: int
    mode: int


@runtime_checkable
class ScriptFiles(Protocol):
    """File-system questions script security asks; a Host may implement these too."""

    def resolve_script(self, name: str) -> str | None:
        """The real path of ``name`` (searched on PATH without a slash), None if it is missing."""
        ...

    def file_info(self, path: str) -> FileInfo | None: ...

    def has_group(self, name: str) -> bool: ...


class LocalScriptFiles:
    """The real file system and group database."""

    def resolve_script(self, name: str) -> str | None:
        found = name if "/" in name else shutil.which(name)
        if found is None or not os.path.exists(found):
            return None
        return os.path.realpath(found)

    def file_info(self, path: str) -> FileInfo | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        return FileInfo(uid=st.st_uid, gid=st.st_gid, mode=st.st_mode)

    def has_group(self, name: str) -> bool:
        try:
            grp.getgrnam(name)
        except KeyError:
            return False
        return True


class FakeScriptFiles:
    """For tests: ``FakeScriptFiles({"/etc/ka/up.sh": FileInfo(0, 0, 0o100755)})``.

    Directories not listed are safe (root-owned, 0755); ``path`` maps bare names
    to what a PATH search would find.
    """

    def __init__(
        self,
        files: dict[str, FileInfo] | None = None,
        groups: set[str] | None = None,
        path: dict[str, str] | None = None,
    ) -> None:
        self.files = files or {}
        self.groups = groups if groups is not None else {"root"}
        self.path = path or {}

    def resolve_script(self, name: str) -> str | None:
        found = name if "/" in name else self.path.get(name)
        return found if found is not None and found in self.files else None

    def file_info(self, path: str) -> FileInfo | None:
        if path in self.files:
            return self.files[path]
        return FileInfo(uid=0, gid=0, mode=stat.S_IFDIR | 0o755)

    def has_group(self, name: str) -> bool:
        return name in self.groups


def is_unsafe(info: FileInfo) -> bool:
    """keepalived's rule for one path component of a script run as root.

    Verified on 2.2.7: unsafe if owned by a non-root user, group-writable by a
    non-root group, or world-writable, except a world-writable directory with
    the sticky bit (``/tmp``).
    """
    if info.uid != 0:
        return True
    if info.mode & stat.S_IWGRP and info.gid != 0:
        return True
    sticky_dir = stat.S_ISDIR(info.mode) and info.mode & stat.S_ISVTX
    return bool(info.mode & stat.S_IWOTH) and not sticky_dir


def path_is_unsafe(path: str, files: ScriptFiles) -> bool:
    """True if the file or any directory above it could be changed by a non-root user.

    The sticky-bit pardon applies to directories above the script only: a
    script that is itself world-writable (even ``/tmp``) is unsafe.
    """
    current = path
    while True:
        info = files.file_info(current)
        if info is not None and is_unsafe(info):
            return True
        if current == path and info is not None and info.mode & stat.S_IWOTH:
            return True
        parent = os.path.dirname(current)
        if parent == current or not parent:
            return False
        current = parent


# --- the verdicts ---


class ScriptUserRef(msgspec.Struct, frozen=True, kw_only=True):
    """The global ``script_user``: who runs scripts that name no user, and where that was said."""

    user: str
    group: str | None = None
    file: str = ""
    line: int = 0


def check_script_security(
    ctx: Context,
    config: Config,
    host: Host,
    files: ScriptFiles | None = None,
    scripts: Iterable[Script] | None = None,
) -> None:
    """keepalived's script-security verdicts for every script in ``config``.

    ``files`` None skips what needs the real files (path search, permissions);
    users are always checked through ``host``.  ``scripts`` defaults to
    ``iter_scripts(config)``: pass a list only to check a subset.
    """
    gd = config.global_defs
    found = list(iter_scripts(config) if scripts is None else scripts)
    default_user = _check_global_user(ctx, gd.script_user, host, files)
    if not found:
        return
    present = found if files is None else [s for s in found if files.resolve_script(s.argv[0]) is not None]
    _warn_security_violation(ctx, gd.enable_script_security, present, gd.startup_script, gd.shutdown_script)
    for script in found:
        _check_one(
            ctx, script, default_user=default_user, security=gd.enable_script_security, host=host, files=files
        )


def _check_global_user(
    ctx: Context, ref: ScriptUserRef | None, host: Host, files: ScriptFiles | None
) -> str | None:
    """Validate ``script_user``; return the default user for scripts naming none.

    None: ``script_user`` is invalid (already reported).  ``IMPLICIT_ROOT``: no
    ``script_user`` and no ``keepalived_script`` user, so root by fallback, which
    ``enable_script_security`` forbids.
    """
    if ref is None:
        return DEFAULT_SCRIPT_USER if host.has_user(DEFAULT_SCRIPT_USER) else IMPLICIT_ROOT
    ok = host.has_user(ref.user)
    if ok and ref.group is not None and files is not None:
        ok = files.has_group(ref.group)
    if not ok:
        who = ref.user if ref.group is None else f"{ref.user} {ref.group}"
        ctx.diagnostics.error(_At(ref.file, ref.line), f"script_user: no such user/group '{who}'")
        return None
    return ref.user


def _warn_security_violation(
    ctx: Context,
    enabled: bool,
    scripts: list[Script],
    startup: Script | None,
    shutdown: Script | None,
) -> None:
    """keepalived prints these (without a line) and ``-t`` exits non-zero, but scripts still run.

    Only scripts that exist count: keepalived says nothing about a missing notify script.
    """
    if enabled:
        return
    lifecycle = [s for s in scripts if s is startup or s is shutdown]
    others = [s for s in scripts if s is not startup and s is not shutdown]
    if lifecycle:
        ctx.diagnostics.warning(
            _where(lifecycle[0]),
            "SECURITY VIOLATION - start/shutdown scripts are being executed but script_security not enabled.",
        )
    if others:
        ctx.diagnostics.warning(
            _where(others[0]),
            "SECURITY VIOLATION - scripts are being executed but script_security not enabled.",
        )


def _check_one(
    ctx: Context,
    script: Script,
    *,
    default_user: str | None,
    security: bool,
    host: Host,
    files: ScriptFiles | None,
) -> None:
    where = _where(script)
    user = _run_as(ctx, script, default_user=default_user, security=security, host=host, files=files)
    if user is None:
        return
    if files is None:
        return
    resolved = _resolve(ctx, script, files)
    if resolved is None or not security or user != ROOT_USER:
        return
    if path_is_unsafe(resolved, files):
        message = f"unsafe permissions for script '{resolved}' (writable by a non-root user): it will not run"
        if _is_track_script(script):
            ctx.diagnostics.error(where, message)
        else:  # keepalived -t passes these and disables the script only at run time
            ctx.diagnostics.note(where, message)


def _run_as(
    ctx: Context,
    script: Script,
    *,
    default_user: str | None,
    security: bool,
    host: Host,
    files: ScriptFiles | None,
) -> str | None:
    """Who runs ``script``; None (after an error if it is the script's fault) if nobody can."""
    where = _where(script)
    if script.user is not None:
        if not host.has_user(script.user):
            ctx.diagnostics.error(
                where,
                f"Script user '{script.user}' does not exist: '{script.keyword}' script "
                f"{script.argv[0]} ignored (to pass arguments, quote the whole command line)",
            )
            return None
        if script.group is not None and files is not None and not files.has_group(script.group):
            ctx.diagnostics.error(
                where, f"Script group '{script.group}' does not exist: '{script.keyword}' script ignored"
            )
            return None
        return script.user
    if default_user == IMPLICIT_ROOT:
        if security:
            ctx.diagnostics.error(where, f"Unable to set default user {DEFAULT_SCRIPT_USER} for script")
            return None
        return ROOT_USER
    return default_user


def _resolve(ctx: Context, script: Script, files: ScriptFiles) -> str | None:
    name = script.argv[0]
    where = _where(script)
    resolved = files.resolve_script(name)
    if resolved is None:
        message = f"script {name} cannot be accessed (no such file or directory): it will not run"
        if _is_track_script(script):  # keepalived -t disables the vrrp_script and fails
            ctx.diagnostics.warning(where, message)
        else:  # keepalived -t says nothing about a missing notify or check script
            ctx.diagnostics.note(where, message)
        return None
    if "/" not in name:
        ctx.diagnostics.note(
            where, f"script '{name}' found by PATH search at '{resolved}': give the full path"
        )
    return resolved


def _is_track_script(script: Script) -> bool:
    """A vrrp_script's ``script``: keepalived's -t verdict is stricter for these than for notify scripts."""
    return script.keyword == "script"


@dataclass(frozen=True)
class _At:
    file: str
    line: int


def _where(script: Script) -> _At:
    return _At(script.file, script.line)


def set_script(attr: str) -> Handler:
    """A keyword naming a script: a line ``parse_script`` rejects leaves the earlier value in place."""
    return set_parsed(attr, parse_script)
