"""Character-level rules of keepalived.conf: comments, double quotes, braces, words.

These are pure functions on one line of text so that the reader (``lexer.py``)
can apply them at exactly the stage keepalived does: comments are stripped from
each physical line as it is read, words and braces are split only once
parameters and ``~SEQ`` have been expanded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

# C isspace(): keepalived splits on these, not on Unicode spaces.
WS = " \t\r\n\v\f"
COMMENT_CHARS = "#!"

_WORD_RE = re.compile(r'"([^"]*)"?|([^\s"]+)')


def decomment(line: str) -> str:
    """Drop a ``#``/``!`` comment that starts outside double quotes; ``\\#``/``\\!`` become literal.

    keepalived does this on every physical line before anything else, so a
    ``#`` inside ``"..."`` survives and a comment can never hide a ``\\``
    continuation from the reader.
    """
    if not any(c in line for c in '#!"\\'):
        return line  # most lines: nothing to strip
    out: list[str] = []
    quoted = False
    i = 0
    while i < len(line):
        c = line[i]
        if c == '"':
            quoted = not quoted
        elif not quoted and c == "\\" and line[i + 1 : i + 2] in ("#", "!") and i + 1 < len(line):
            out.append(line[i + 1])
            i += 2
            continue
        elif not quoted and c in COMMENT_CHARS:
            break
        out.append(c)
        i += 1
    return "".join(out)


def simple_words(line: str) -> list[str]:
    """Whitespace-separated words with double quotes removed and braces kept.

    Used for ``include`` lines, which keepalived recognises on the raw line,
    before any brace splitting (a csh-style ``{a,b}`` pattern must stay whole).
    """
    return [m.group(1) if m.group(1) is not None else m.group(2) for m in _WORD_RE.finditer(line)]


@dataclass(frozen=True, slots=True)
class Segment:
    """One logical line after brace splitting: a ``{``, a ``}``, or a keyword and its words."""

    kind: Literal["words", "open", "close"]
    words: tuple[str, ...] = ()
    raw: str = ""


@dataclass
class _Splitter:
    """State of one left-to-right scan; a class only to keep each step a small method."""

    text: str
    segments: list[Segment]
    words: list[str]
    seg_start: int = 0
    kw_end: int = -1
    unmatched: bool = False

    def word(self, value: str, end: int) -> None:
        if not self.words:
            self.kw_end = end
        self.words.append(value)

    def flush(self, end: int) -> None:
        if self.words:
            raw = self.text[self.kw_end : end].strip(WS)
            self.segments.append(Segment("words", tuple(self.words), raw))
        self.words = []
        self.kw_end = -1


def split_segments(text: str) -> tuple[list[Segment], bool]:
    """Split an expanded line into words and put each unquoted ``{``/``}`` on its own segment.

    Returns the segments and whether a double quote was left open (the open
    quoted word then runs to the end of the line, as in keepalived).  A ``"``
    always starts a new word, even in the middle of one: keepalived reads
    ``a"b c"d`` as ``a``, ``b c``, ``d``.  An unquoted ``#`` or ``!`` that
    survived comment stripping (from ``\\#`` or ``${_HASH}``) ends the line:
    keepalived 2.2.7 drops everything from there, so only quoted ones are
    usable as literals.
    """
    if '"' not in text and "#" not in text and "!" not in text:
        return _split_plain(text), False
    st = _Splitter(text, [], [])
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            close = text.find('"', i + 1)
            if close < 0:
                st.unmatched = True
                st.word(text[i + 1 :], n)
                i = n
                break
            st.word(text[i + 1 : close], close + 1)
            i = close + 1
        elif c in WS:
            i += 1
        elif c in "{}":
            st.flush(i)
            st.segments.append(Segment("open" if c == "{" else "close"))
            st.seg_start = i + 1
            i += 1
        elif c in COMMENT_CHARS:
            break
        else:
            j = i
            while j < n and text[j] not in WS and text[j] not in '"{}#!':
                j += 1
            st.word(text[i:j], j)
            i = j
    st.flush(i)
    return st.segments, st.unmatched


_PLAIN_TOKEN_RE = re.compile(r"[{}]|[^{}\x20\t\r\n\v\f]+")
_OPEN = Segment("open")
_CLOSE = Segment("close")


def _split_plain(text: str) -> list[Segment]:
    """``split_segments`` for a line with no quote and no comment character: most lines.

    Why a second path: the general scan steps through the line a character at a
    time in Python, which made it the lexer's largest cost; here one regex finds
    the words and braces.  The result is the same: a brace ends the words before
    it, and a segment's ``raw`` runs from the end of its keyword to the end of
    its last word's run (a brace or the end of the line), stripped.
    """
    segments: list[Segment] = []
    words: list[str] = []
    kw_end = -1
    for m in _PLAIN_TOKEN_RE.finditer(text):
        token = m.group()
        if token in {"{", "}"}:
            if words:
                segments.append(Segment("words", tuple(words), text[kw_end : m.start()].strip(WS)))
                words = []
            segments.append(_OPEN if token == "{" else _CLOSE)
            continue
        if not words:
            kw_end = m.end()
        words.append(token)
    if words:
        segments.append(Segment("words", tuple(words), text[kw_end:].strip(WS)))
    return segments
