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

The user and group words belong to notify-style keywords only: a
``vrrp_script``'s ``script`` and a ``MISC_CHECK``'s ``misc_path`` take their
user from the block's ``user`` keyword, and keepalived ignores every word after
the command there (verified: ``script "/x.sh a" nobody`` runs ``/x.sh a`` as
the default user, and ``script /x.sh a`` runs ``/x.sh`` alone).

Script security has to see every script of the file, and those are parsed by
three parsers.  Rather than a registry, each Script carries the file and line
it came from, and ``iter_scripts`` walks the finished ``Config`` for every
``Script`` value wherever a parser stored it: the vrrp and lvs parsers only
have to keep the ``Script`` that ``parse_script`` returned.  Who runs each
script and whether it may run is decided by ``shared.scripts.resolve``, the
same function the services call before each start.
"""

from __future__ import annotations

import functools
import shlex
import typing
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec

from shared.config.context import Context, Handler, set_parsed
from shared.config.diagnostics import Diagnostic, Severity
from shared.config.host import Host, LocalHost
from shared.config.node import Node
from shared.scripts.accounts import ROOT, Accounts, LocalAccounts, NamesOnlyAccounts
from shared.scripts.files import LocalScriptFiles, ScriptFiles
from shared.scripts.policy import Refusal, RefusalKind, ScriptPolicy
from shared.scripts.resolve import Launch, ScriptRequest, resolve

if TYPE_CHECKING:
    from shared.config.model import Config
    from shared.config.model_global import GlobalDefs

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


def parse_script(ctx: Context, node: Node, *, takes_user: bool = True) -> Script | None:
    """Parse ``node`` as a script keyword; report a missing or unsplittable command at its line.

    ``takes_user`` False (``script``, ``misc_path``): words after the command are
    ignored, as keepalived does, with a note saying so.
    """
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
    if not takes_user:
        if len(words) > 1:
            ignored = " ".join(words[1:])
            ctx.diagnostics.note(
                node,
                f"'{node.keyword}': keepalived ignores '{ignored}' after the command "
                "(quote the whole command line; the block's 'user' sets the user)",
            )
        words = words[:1]
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


# --- who runs each script, and the verdicts of enable_script_security ---


class ScriptUserRef(msgspec.Struct, frozen=True, kw_only=True):
    """The global ``script_user``: who runs scripts that name no user, and where that was said."""

    user: str
    group: str | None = None
    file: str = ""
    line: int = 0


def script_policy(gd: GlobalDefs) -> ScriptPolicy:
    """``global_defs``' part in who runs a script: ``script_user`` and ``enable_script_security``."""
    ref = gd.script_user
    return ScriptPolicy(
        script_user=ref.user if ref is not None else None,
        script_group=ref.group if ref is not None else None,
        security=gd.enable_script_security,
    )


@dataclass(frozen=True)
class ScriptUse:
    """One script as configured: its own user/group (from its line or its block) and how to drop it.

    ``block_user``: the user came from a ``user`` keyword whose parser already
    reported a user that does not exist.  ``disable`` removes the script from
    the model, as keepalived drops a script whose file is unsafe (a
    ``vrrp_script`` with its ``track_script`` references, a ``MISC_CHECK``
    from its real server, a notify script from its keyword).
    """

    script: Script
    user: str | None
    group: str | None
    label: str
    block_user: bool
    disable: Callable[[], None]

    def request(self, policy: ScriptPolicy) -> ScriptRequest:
        return ScriptRequest(tuple(self.script.argv), self.user, self.group, policy, self.label)


def script_uses(config: Config) -> list[ScriptUse]:
    """Every script of ``config`` in file-model order, with its own user and its label."""
    special: dict[int, ScriptUse] = {}
    for name, spec in config.vrrp.scripts.items():
        if spec.script is not None and not spec.user_invalid:
            drop = _drop_vrrp_script(config, name)
            label = f"vrrp_script {name}"
            special[id(spec.script)] = ScriptUse(spec.script, spec.user, spec.group, label, True, drop)
    from shared.config.model_lvs import MiscCheck  # here: model_lvs imports this module

    for _vs, rs, check in config.lvs.checks():
        if isinstance(check, MiscCheck) and check.misc_path is not None:
            label = f"MISC_CHECK {check.misc_path.argv[0]}"
            special[id(check.misc_path)] = ScriptUse(
                check.misc_path, check.user, check.group, label, True, _drop_checker(rs.checkers, check)
            )
    uses = []
    for script in iter_scripts(config):
        use = special.get(id(script))
        if use is None:
            label = f"{script.keyword} {script.argv[0]}"
            use = ScriptUse(script, script.user, script.group, label, False, _drop_script(config, script))
        uses.append(use)
    return uses


def _drop_vrrp_script(config: Config, name: str) -> Callable[[], None]:
    def drop() -> None:
        config.vrrp.scripts.pop(name, None)
        refs = [vi.track_scripts for vi in config.vrrp.instances.values()]
        refs += [group.track_scripts for group in config.vrrp.sync_groups.values()]
        for tracked in refs:
            tracked[:] = [ref for ref in tracked if ref.name != name]

    return drop


def _drop_checker(checkers: list[typing.Any], check: object) -> Callable[[], None]:
    def drop() -> None:
        checkers[:] = [c for c in checkers if c is not check]

    return drop


def _drop_script(config: Config, script: Script) -> Callable[[], None]:
    return lambda: _clear(config, script)


def _clear(value: object, script: Script) -> None:
    """Set every field of ``value`` (walked as ``iter_scripts`` walks) that holds ``script`` to None."""
    if isinstance(value, msgspec.Struct):
        for name in _fields_that_may_hold_scripts(type(value)):
            field = getattr(value, name)
            if field is script:
                setattr(value, name, None)
            else:
                _clear(field, script)
    elif isinstance(value, dict):
        for item in value.values():
            _clear(item, script)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _clear(item, script)


def script_files_for(host: Host) -> ScriptFiles | None:
    """File checks only where the files are: the local host, or a test host that fakes them."""
    if isinstance(host, ScriptFiles):
        return host
    if isinstance(host, LocalHost):
        return LocalScriptFiles()
    return None


def accounts_for(host: Host, files: ScriptFiles | None) -> Accounts:
    """The real user database on the local host; names only (``host``'s users) anywhere else."""
    if isinstance(host, LocalHost):
        return LocalAccounts()
    return NamesOnlyAccounts(host.has_user, files.has_group if files is not None else None)


def check_script_security(
    ctx: Context,
    config: Config,
    host: Host,
    files: ScriptFiles | None = None,
    scripts: Iterable[ScriptUse] | None = None,
) -> None:
    """keepalived's script-security verdicts for every script in ``config``; unsafe scripts are dropped.

    ``files`` None skips what needs the real files (path search, permissions);
    users are always checked through ``host``.  Each script is resolved as
    keepalived (root) would run it, by ``shared.scripts.resolve``.
    """
    gd = config.global_defs
    uses = list(script_uses(config) if scripts is None else scripts)
    _check_global_user(ctx, gd.script_user, host, files)
    if not uses:
        return
    present = [u.script for u in uses if files is None or files.resolve_script(u.script.argv[0]) is not None]
    _warn_security_violation(ctx, gd.enable_script_security, present, gd.startup_script, gd.shutdown_script)
    policy, accounts = script_policy(gd), accounts_for(host, files)
    for use in uses:
        verdict = resolve(use.request(policy), accounts, files, ROOT)
        refused_by_user = isinstance(verdict, Refusal) and verdict.kind is not RefusalKind.UNSAFE
        if files is not None and not refused_by_user:
            _report_path(ctx, use.script, files)
        if isinstance(verdict, Refusal):
            _report_refusal(ctx, use, verdict)
        if isinstance(verdict, Refusal) and verdict.kind is RefusalKind.UNSAFE:
            use.disable()  # the file, not the text, is at fault: the rest of the configuration runs


def script_user_notes(config: Config, host: Host) -> list[Diagnostic]:
    """``file:line: note: vrrp_script chk runs as nobody:nogroup (script_user)``, one per script that runs.

    What ``lifeline config check`` adds to keepalived's verdict (notes never change it).
    """
    files = script_files_for(host)
    policy, accounts = script_policy(config.global_defs), accounts_for(host, files)
    notes = []
    for use in script_uses(config):
        launch = resolve(use.request(policy), accounts, files, ROOT)
        if isinstance(launch, Launch):
            message = f"{use.label} runs as {launch.identity.label} ({launch.source})"
            notes.append(Diagnostic(use.script.file, use.script.line, Severity.NOTE, message))
    return notes


def _check_global_user(
    ctx: Context, ref: ScriptUserRef | None, host: Host, files: ScriptFiles | None
) -> None:
    """keepalived: "Error setting global script uid/gid" for a ``script_user`` that does not exist."""
    if ref is None:
        return
    ok = host.has_user(ref.user)
    if ok and ref.group is not None and files is not None:
        ok = files.has_group(ref.group)
    if not ok:
        who = ref.user if ref.group is None else f"{ref.user} {ref.group}"
        ctx.diagnostics.error(_At(ref.file, ref.line), f"script_user: no such user/group '{who}'")


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


def _report_refusal(ctx: Context, use: ScriptUse, refusal: Refusal) -> None:
    """Each refusal as keepalived -t judges it; ones the parsers already reported stay silent."""
    script, where = use.script, _where(use.script)
    match refusal.kind:
        case RefusalKind.SCRIPT_USER_MISSING:
            return  # reported at script_user
        case RefusalKind.USER_MISSING if use.block_user:
            return  # reported at the block's 'user'
        case RefusalKind.USER_MISSING:
            ctx.diagnostics.error(
                where,
                f"Script user '{refusal.subject}' does not exist: '{script.keyword}' script "
                f"{script.argv[0]} ignored (to pass arguments, quote the whole command line)",
            )
        case RefusalKind.GROUP_MISSING:
            ctx.diagnostics.error(
                where, f"Script group '{refusal.subject}' does not exist: '{script.keyword}' script ignored"
            )
        case RefusalKind.NO_DEFAULT_USER:
            ctx.diagnostics.error(where, refusal.reason)
        case RefusalKind.UNSAFE:
            message = (
                f"unsafe permissions for script '{refusal.subject}' (writable by a non-root user): "
                f"{use.label} is disabled"
            )
            if _is_track_script(script):  # -t: "Disabling track script chk due to insecure", exit 5
                ctx.diagnostics.warning(where, message)
            else:  # keepalived -t exits 0 and disables the script only at run time
                ctx.diagnostics.note(where, message)


def _report_path(ctx: Context, script: Script, files: ScriptFiles) -> None:
    name = script.argv[0]
    where = _where(script)
    resolved = files.resolve_script(name)
    if resolved is None:
        message = f"script {name} cannot be accessed (no such file or directory): it will not run"
        if _is_track_script(script):  # keepalived -t disables the vrrp_script and fails
            ctx.diagnostics.warning(where, message)
        else:  # keepalived -t says nothing about a missing notify or check script
            ctx.diagnostics.note(where, message)
    elif "/" not in name:
        message = f"script '{name}' found by PATH search at '{resolved}': give the full path"
        ctx.diagnostics.note(where, message)


def _is_track_script(script: Script) -> bool:
    """A vrrp_script's ``script``: keepalived's -t verdict is stricter for these than for notify scripts."""
    return script.keyword == "script"


@dataclass(frozen=True)
class _At:
    file: str
    line: int


def _where(script: Script) -> _At:
    return _At(script.file, script.line)


def set_script(attr: str, *, takes_user: bool = True) -> Handler:
    """A keyword naming a script: a line ``parse_script`` rejects leaves the earlier value in place."""
    return set_parsed(attr, functools.partial(parse_script, takes_user=takes_user))
