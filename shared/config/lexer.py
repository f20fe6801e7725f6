"""keepalived.conf text to a tree of ``Node``s, with every line's own file and line number.

The pipeline mirrors keepalived 2.2.7 (docs/config-grammar.md, checked with
``keepalived -t``), because the stage at which each feature applies is
visible to users:

1. each physical line is decommented, then checked for ``include`` (so an
   include cannot be conditional or parameterised) and for the start or
   continuation of a multi-line ``$NAME=... \\`` definition;
2. ``@id``/``@^id`` conditions, then single-line ``$NAME=value`` definitions;
3. ``~SEQ``/``~LST`` prefixes repeat the rest of the line with variables bound;
4. a multi-line parameter alone on its line becomes several lines, each going
   through 2-5 again; otherwise parameters are substituted, and a condition
   that substitution produced (``$IF_MAIN=@main``) is applied;
5. words are split and unquoted braces become their own logical lines, which
   ``_TreeBuilder`` turns into blocks.

Every logical line produced from a physical line (by ``~SEQ``, by a
multi-line parameter) carries that physical line's position, as keepalived
reports it.  Problems go to ``ctx.diagnostics``; only an unreadable top-level
file raises ``ConfigError``.

The work is bounded whatever the input: logical lines (``MAX_LINES``), nesting
(``MAX_DEPTH``, ``MAX_INCLUDE_DEPTH``, include loops), and the bytes and file
reads of every file, includes counted each time (``lexer_files``), so no
configuration can hang a check or a reload or exhaust its memory.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from shared.config.context import Context
from shared.config.diagnostics import ConfigError, Diagnostic, Severity
from shared.config.lexer_files import ReadBudget, Refusal, Refused, read_config_file
from shared.config.lexer_include import VARIANTS, include_check_set, resolve
from shared.config.lexer_params import DEFINITION_RE, Param, Params
from shared.config.lexer_seq import Loop, LoopError, parse_loop, split_prefix
from shared.config.lexer_text import WS, Segment, decomment, simple_words, split_segments
from shared.config.node import Node
from shared.config.schema import ROOT, BlockRule, opens_block

MAX_DEPTH = 32  # nested ~SEQ prefixes and multi-line parameters on one line
MAX_INCLUDE_DEPTH = 64
MAX_LINES = 2_000_000


@dataclass(frozen=True, slots=True)
class Pos:
    """Where a logical line came from: what ``ctx.error``/``ctx.warning`` need."""

    file: str
    line: int


@dataclass(frozen=True, slots=True)
class Item:
    """One logical line: a keyword line, or a lone ``{`` / ``}``."""

    segment: Segment
    pos: Pos


@dataclass
class _Pending:
    """A multi-line definition being collected from ``\\``-continued physical lines."""

    name: str
    lines: list[str]


@dataclass
class _Reader:
    ctx: Context
    params: Params
    builder: _TreeBuilder  # fed each logical line as it is read: a global keyword can act at once
    emitted: int = 0  # logical lines fed to the builder
    include_check: frozenset[str] = frozenset()  # the global include_check in force (letters, as VARIANTS)
    reading: list[str] = field(default_factory=list)  # real paths of files being read, for loops
    overflowed: bool = False
    work: int = 0  # logical lines processed, bounded even when they produce nothing
    expanding: list[str] = field(default_factory=list)  # multi-line parameters being expanded
    budget: ReadBudget = field(default_factory=ReadBudget)  # bytes and file reads, every include counted
    budget_reported: bool = False

    # ---- files -------------------------------------------------------------------------

    def read_file(self, display: str, include_pos: Pos | None, must_read: bool = False) -> None:
        """Read one file (top-level or included); an include loop is reported, not followed.

        ``must_read`` is the ``includer``/``includea`` check: an unreadable match is then an
        error rather than a warning.
        """
        try:
            real = os.path.realpath(display)
        except (OSError, ValueError):
            real = display
        if real in self.reading:
            self._error(include_pos, f"include loop: '{display}' is already being read")
            return
        if len(self.reading) >= MAX_INCLUDE_DEPTH:
            self._error(include_pos, f"includes nested deeper than {MAX_INCLUDE_DEPTH} at '{display}'")
            return
        text = self._load(display, include_pos, must_read)
        if text is None:
            return
        saved_pwd = self.params.pwd
        self.params.pwd = os.path.dirname(os.path.abspath(display))
        self.reading.append(real)
        try:
            self._read_lines(text, display)
        finally:
            self.reading.pop()
            self.params.pwd = saved_pwd

    def _load(self, display: str, include_pos: Pos | None, must_read: bool) -> str | None:
        """The file's text, or None after reporting why not (``ConfigError`` for the top-level file)."""
        try:
            text = read_config_file(display, self.budget)
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            if include_pos is None:
                msg = f"cannot read configuration file: {reason}"
                raise ConfigError([Diagnostic(display, 0, Severity.ERROR, msg)]) from exc
            report = self.ctx.diagnostics.error if must_read else self.ctx.diagnostics.warning
            report(include_pos, f"cannot read included file '{display}': {reason}")
            return None
        if isinstance(text, str):
            return text
        self._refused(display, include_pos, must_read, text)
        return None

    def _refused(self, display: str, include_pos: Pos | None, must_read: bool, refused: Refused) -> None:
        """keepalived's skips follow the include variant; lifeline's limits are errors (the budget's once)."""
        message = f"'{display}' {refused.reason}"
        if include_pos is None:
            raise ConfigError([Diagnostic(display, 0, Severity.ERROR, f"configuration file {message}")])
        if refused.kind is Refusal.SKIPPED:
            report = self.ctx.diagnostics.error if must_read else self.ctx.diagnostics.note
            report(include_pos, f"included file {message}")
        elif self.budget.exhausted is None or not self.budget_reported:
            self.budget_reported = self.budget.exhausted is not None
            self.ctx.diagnostics.error(include_pos, f"included file {message}")

    def _read_lines(self, text: str, display: str) -> None:
        pending: _Pending | None = None
        for number, physical in enumerate(text.split("\n"), start=1):
            pos = Pos(display, number)
            line = decomment(physical)
            stripped = line.strip(WS)
            if pending is not None:
                pending = self._continue_definition(pending, stripped)
                continue
            words = simple_words(stripped) if "include" in stripped else None  # every variant says it
            if words and words[0] in VARIANTS:
                self._include(words, pos, display)
                continue
            m = DEFINITION_RE.fullmatch(stripped)
            if m is not None and m.group(2).endswith("\\"):
                first = m.group(2)[:-1].strip(WS)
                pending = _Pending(m.group(1), [first])
                continue
            self.line(line, pos, 0)
        if pending is not None:
            self.params.define_multi(pending.name, pending.lines)

    def _continue_definition(self, pending: _Pending, stripped: str) -> _Pending | None:
        """Add a physical line to a multi-line definition; a line without ``\\`` ends it."""
        if stripped.endswith("\\"):
            pending.lines.append(stripped[:-1].strip(WS))
            return pending
        pending.lines.append(stripped)
        self.params.define_multi(pending.name, pending.lines)
        return None

    def _include(self, words: list[str], pos: Pos, display: str) -> None:
        if len(words) < 2:
            self.ctx.diagnostics.warning(pos, f"'{words[0]}' needs a file name")
            return
        checks = VARIANTS[words[0]] | self.include_check
        resolved = resolve(words[1], os.path.dirname(display), checks)
        for message in resolved.errors:
            self.ctx.diagnostics.error(pos, message)
        if not resolved.paths and not resolved.errors:
            # keepalived -t passes this (plain include never fails) but an operator wants to know
            self.ctx.diagnostics.note(pos, f"'{words[1]}' matched no file: nothing included")
        in_force = self.include_check
        for path in resolved.paths:
            self.read_file(path, pos, must_read="r" in checks)
            self.include_check = in_force  # an include_check inside the file ends with it, as in keepalived

    def global_keyword(self, node: Node) -> None:
        """A ``global_defs`` keyword, as soon as it is read: ``include_check`` applies to later includes."""
        if node.keyword == "include_check":
            self.include_check, _problems = include_check_set(self.include_check, node.args)  # parser reports

    # ---- logical lines -----------------------------------------------------------------

    def line(self, text: str, pos: Pos, depth: int) -> None:
        """Conditions, definitions, loops, multi-line parameters, substitution, then words."""
        if depth > MAX_DEPTH:
            self.ctx.diagnostics.error(pos, f"expansion nested deeper than {MAX_DEPTH} levels")
            return
        self.work += 1
        if self.work > MAX_LINES:
            self._overflow(pos)
            return
        text = self._condition(text.strip(WS))
        if not text:
            return
        if "$" not in text and text[0] != "~":
            self._emit(text, pos)  # most lines: no definition, loop or parameter to expand
            return
        m = DEFINITION_RE.fullmatch(text)
        if m is not None:
            self.params.define(m.group(1), m.group(2))
            return
        if text.startswith("~"):
            loop = self._loop(text, pos)
            if loop is not None:
                self._run_loop(loop, pos, depth)
                return
        multi = self.params.multi_line(text)
        if multi is not None:
            self._expand_multi(*multi, pos, depth)
            return
        expanded = self.params.substitute(text, lambda msg: self.ctx.diagnostics.error(pos, msg))
        if expanded != text and expanded.lstrip(WS).startswith(("@", "~")):
            # a parameter produced a condition or a loop prefix ($IF_MAIN=@main): apply it now
            self.line(expanded, pos, depth + 1)
            return
        self._emit(expanded, pos)

    def _expand_multi(self, name: str, lines: list[str], pos: Pos, depth: int) -> None:
        """Process each line of a multi-line parameter; one that uses itself is an error, not a hang."""
        if name in self.expanding:
            self.ctx.diagnostics.error(pos, f"multi-line parameter '{name}' uses itself")
            return
        self.expanding.append(name)
        try:
            for sub in lines:
                self.line(sub, pos, depth + 1)
        finally:
            self.expanding.pop()

    def _condition(self, text: str) -> str:
        """Strip a matching ``@id``/``@^id`` prefix; a line for another config id becomes empty."""
        if not text.startswith("@"):
            return text
        end = 1
        while end < len(text) and text[end] not in WS:
            end += 1
        word, rest = text[1:end], text[end:]
        negate = word.startswith("^")
        if negate:
            word = word[1:]
        keep = (word == self.ctx.config_id) != negate
        return rest.strip(WS) if keep else ""

    def _loop(self, text: str, pos: Pos) -> Loop | None:
        """Parse a ``~SEQ``/``~LST`` prefix (parameters inside it are expanded first)."""
        try:
            split = split_prefix(text)
            if split is None:
                return None
            head = self.params.substitute(split[0], lambda msg: self.ctx.diagnostics.error(pos, msg))
            return parse_loop(head, split[1])
        except LoopError as exc:
            self.ctx.diagnostics.error(pos, f"invalid {text.split('(', 1)[0]} specification: {exc}")
            return Loop((), (), "")

    def _run_loop(self, loop: Loop, pos: Pos, depth: int) -> None:
        for row in loop.values:
            with self._bound(loop.names, row):
                self.line(loop.rest, pos, depth + 1)
            if self.overflowed:
                return

    @contextmanager
    def _bound(self, names: tuple[str, ...], values: tuple[str, ...]) -> Iterator[None]:
        """Bind loop variables for one iteration only, restoring whatever they shadowed."""
        saved: dict[str, Param | None] = {n: self.params.defs.get(n) for n in names}
        for name, value in zip(names, values, strict=True):
            self.params.define(name, value)
        try:
            yield
        finally:
            for name, old in saved.items():
                if old is None:
                    self.params.defs.pop(name, None)
                else:
                    self.params.defs[name] = old

    def _emit(self, text: str, pos: Pos) -> None:
        segments, unmatched = split_segments(text)
        if unmatched:
            self.ctx.diagnostics.error(pos, f"unmatched double quote in '{text}'")
        if self.emitted + len(segments) > MAX_LINES:
            self._overflow(pos)
            return
        self.emitted += len(segments)
        for segment in segments:
            self.builder.feed(Item(segment, pos))

    def _overflow(self, pos: Pos) -> None:
        """Stop expanding: a runaway ``~SEQ`` nest must not hang a reload."""
        if not self.overflowed:
            self.ctx.diagnostics.error(pos, f"configuration expands to more than {MAX_LINES} lines")
        self.overflowed = True

    def _error(self, pos: Pos | None, message: str) -> None:
        if pos is not None:
            self.ctx.diagnostics.error(pos, message)


@dataclass
class _Frame:
    """An open block: the node that owns it (None for the file level) and its children so far."""

    owner: Node | None
    opened_at: Pos
    children: list[Node] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return ROOT if self.owner is None else self.owner.keyword


@dataclass
class _TreeBuilder:
    """Turns the flat stream of logical lines into nested ``Node``s the way keepalived does.

    Braces alone do not decide the structure: ``schema.opens_block`` does (see its
    docstring), so a file with a misplaced brace produces keepalived's tree and
    keepalived's complaints, at keepalived's lines.  No recursion, so deep
    nesting cannot blow the stack.
    """

    ctx: Context
    opens_block: BlockRule | None = opens_block
    on_global: Callable[[Node], None] | None = None  # told of each keyword line read in global_defs
    stack: list[_Frame] = field(default_factory=lambda: [_Frame(None, Pos("", 0))])
    pending: Node | None = None  # a block keyword waiting for its '{'
    ignored_opens: int = 0  # '{' keepalived ignored; a '}' at file level may match one

    def feed(self, item: Item) -> None:
        seg, frame = item.segment, self.stack[-1]
        if seg.kind != "open" and self.pending is not None:
            self._missing_open(item.pos)
        if seg.kind == "words":
            keyword, *args = seg.words
            node = Node(keyword, tuple(args), item.pos.file, item.pos.line, seg.raw)
            if self.opens_block is not None and self.opens_block(frame.kind, keyword):
                self.pending = node
            else:
                frame.children.append(node)
                if frame.kind == "global_defs" and self.on_global is not None:
                    self.on_global(node)
        elif seg.kind == "open":
            self._open(item)
        else:
            self._close(item)

    def _open(self, item: Item) -> None:
        frame = self.stack[-1]
        if self.pending is not None:
            self.stack.append(_Frame(self.pending, item.pos))
            self.pending = None
            return
        if self.opens_block is None and frame.children and frame.children[-1].children is None:
            self.stack.append(_Frame(frame.children.pop(), item.pos))  # brace-only structure
            return
        self.ignored_opens += 1
        self.ctx.diagnostics.error(
            item.pos, "unexpected '{' (ignored): the keyword before it takes no block here"
        )

    def _missing_open(self, pos: Pos) -> None:
        """keepalived reports this at the line where '{' was expected and drops the block keyword."""
        assert self.pending is not None
        keyword = self.pending.keyword
        self.ctx.diagnostics.error(pos, f"missing '{{' at the beginning of the '{keyword}' block")
        self.pending = None

    def _close(self, item: Item) -> None:
        if len(self.stack) > 1:
            self._pop(item.pos.line)
        elif self.ignored_opens:
            self.ignored_opens -= 1
            self.ctx.diagnostics.error(item.pos, "'}' closes an ignored '{' (not a keyword)")
        else:
            self.ctx.diagnostics.error(item.pos, "extra '}' with no block to close")

    def _pop(self, end_line: int) -> None:
        frame = self.stack.pop()
        if frame.owner is not None:
            node = replace(frame.owner, children=tuple(frame.children), end_line=end_line)
            self.stack[-1].children.append(node)

    def finish(self) -> list[Node]:
        """Close what EOF left open, reporting each at the line of the keyword that opened it."""
        if self.pending is not None:
            self._missing_open(Pos(self.pending.file, self.pending.line))
        while len(self.stack) > 1:
            frame = self.stack[-1]
            if frame.owner is None:
                self.ctx.diagnostics.error(frame.opened_at, "missing '}' for block")
                self._pop(frame.opened_at.line)
            else:
                self.ctx.diagnostics.error(frame.owner, f"missing '}}' for '{frame.owner.keyword}' block")
                self._pop(frame.owner.line)
        return self.stack[0].children


def read_tree(path: Path, ctx: Context, opens_block: BlockRule | None = opens_block) -> list[Node]:
    """Read ``path`` and everything it includes into a tree of keyword lines.

    Raises ``ConfigError`` only if ``path`` itself cannot be read; every other
    problem is reported to ``ctx`` and reading carries on, as keepalived does.
    ``opens_block`` None builds the tree from braces alone (for testing the
    lexer apart from keepalived's keyword tables).
    """
    params = Params(instance=ctx.config_id)
    builder = _TreeBuilder(ctx, opens_block)
    reader = _Reader(ctx, params, builder)
    builder.on_global = reader.global_keyword
    try:
        reader.read_file(str(path), None)
    except RecursionError:
        ctx.diagnostics.error(Pos(str(path), 0), "configuration nested too deeply")
    return builder.finish()
