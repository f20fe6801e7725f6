"""HTTP_GET ``regex`` with PCRE2 itself (``libpcre2-8``, the library keepalived 2.2.7 links), through ctypes.

Why not Python's ``re``: keepalived's patterns are PCRE2 patterns (``\\Q..\\E``,
``(?<name>..)``, ``\\K``, ``\\p{..}``...), its ``regex_options`` are PCRE2 compile
options (``ungreedy``, ``dollar_endonly``, ``firstline``... have no ``re``
equivalent), and ``regex_stack`` sizes PCRE2's JIT stack: a pattern that
backtracks deeply fails with the default 32 KiB JIT stack and passes with a
larger one, in keepalived and here alike.  The PyPI ``pcre2`` binding forces
options of its own (``ALT_BSUX``, ``NEVER_BACKSLASH_C``) that change the
syntax, so the library is called directly: compile (JIT when available), match
with an optional JIT stack, read the match start.  ``libpcre2-8`` is on every
Debian system (grep depends on it).

As in keepalived, a match error (a JIT stack limit, say) counts as "no match".
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Iterable

OPTIONS = {
    "allow_empty_class": 0x00000001,
    "alt_bsux": 0x00000002,
    "auto_callout": 0x00000004,
    "caseless": 0x00000008,
    "dollar_endonly": 0x00000010,
    "dotall": 0x00000020,
    "dupnames": 0x00000040,
    "extended": 0x00000080,
    "firstline": 0x00000100,
    "match_unset_backref": 0x00000200,
    "multiline": 0x00000400,
    "never_ucp": 0x00000800,
    "never_utf": 0x00001000,
    "no_auto_capture": 0x00002000,
    "no_auto_possess": 0x00004000,
    "no_dotstar_anchor": 0x00008000,
    "no_start_optimize": 0x00010000,
    "ucp": 0x00020000,
    "ungreedy": 0x00040000,
    "utf": 0x00080000,
    "never_backslash_c": 0x00100000,
    "alt_circumflex": 0x00200000,
    "alt_verbnames": 0x00400000,
    "use_offset_limit": 0x00800000,
}
"""2.2.7's ``regex_options`` words (``check_http.c``) and their PCRE2 bits; other words are ignored there."""

JIT_COMPLETE = 0x1
ERROR_NOMATCH = -1
_P = ctypes.c_void_p


class RegexError(ValueError):
    """The pattern does not compile, or PCRE2 is not installed."""


def _library() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("pcre2-8") or "libpcre2-8.so.0"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    signatures: dict[str, tuple[object, list[object]]] = {
        "pcre2_compile_8": (
            _P,
            [
                ctypes.c_char_p,
                ctypes.c_size_t,
                ctypes.c_uint32,
                ctypes.POINTER(ctypes.c_int),
                ctypes.POINTER(ctypes.c_size_t),
                _P,
            ],
        ),
        "pcre2_jit_compile_8": (ctypes.c_int, [_P, ctypes.c_uint32]),
        "pcre2_match_data_create_from_pattern_8": (_P, [_P, _P]),
        "pcre2_match_8": (
            ctypes.c_int,
            [_P, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_uint32, _P, _P],
        ),
        "pcre2_get_ovector_pointer_8": (ctypes.POINTER(ctypes.c_size_t), [_P]),
        "pcre2_get_error_message_8": (ctypes.c_int, [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t]),
        "pcre2_match_context_create_8": (_P, [_P]),
        "pcre2_jit_stack_create_8": (_P, [ctypes.c_size_t, ctypes.c_size_t, _P]),
        "pcre2_jit_stack_assign_8": (None, [_P, _P, _P]),
        "pcre2_code_free_8": (None, [_P]),
        "pcre2_match_data_free_8": (None, [_P]),
        "pcre2_match_context_free_8": (None, [_P]),
        "pcre2_jit_stack_free_8": (None, [_P]),
    }
    for fname, (restype, argtypes) in signatures.items():
        fn = getattr(lib, fname)
        fn.restype = restype
        fn.argtypes = argtypes
    return lib


_LIB = _library()


def option_bits(words: Iterable[str]) -> int:
    bits = 0
    for word in words:
        bits |= OPTIONS.get(word, 0)
    return bits


def error_message(code: int) -> str:
    assert _LIB is not None
    buf = ctypes.create_string_buffer(256)
    _LIB.pcre2_get_error_message_8(code, buf, len(buf))
    return buf.value.decode(errors="replace")


class Pattern:
    """One compiled pattern (JIT-compiled when the library can) with its match data."""

    def __init__(self, pattern: bytes, options: int) -> None:
        if _LIB is None:
            raise RegexError("regex needs libpcre2-8 (apt install libpcre2-8-0)")
        err, offset = ctypes.c_int(), ctypes.c_size_t()
        self._code = _LIB.pcre2_compile_8(
            pattern, len(pattern), options, ctypes.byref(err), ctypes.byref(offset), None
        )
        if not self._code:
            raise RegexError(
                f"invalid regex {pattern!r} at offset {offset.value}: {error_message(err.value)}"
            )
        self.jit = _LIB.pcre2_jit_compile_8(self._code, JIT_COMPLETE) == 0
        self._data = _LIB.pcre2_match_data_create_from_pattern_8(self._code, None)
        self._contexts: dict[tuple[int, int], tuple[int, int]] = {}

    def search(self, subject: bytes, start: int = 0, stack: tuple[int, int] | None = None) -> int | None:
        """Where the first match at or after ``start`` begins; None for no match or a match error."""
        assert _LIB is not None
        context = self._context(stack) if stack is not None else None
        rc = _LIB.pcre2_match_8(self._code, subject, len(subject), start, 0, self._data, context)
        if rc < 0:
            return None  # keepalived: PCRE2_ERROR_NOMATCH and every other error leave the url unmatched
        return int(_LIB.pcre2_get_ovector_pointer_8(self._data)[0])

    def _context(self, stack: tuple[int, int]) -> int:
        """A match context with a JIT stack of ``regex_stack START MAX`` bytes (made once, kept)."""
        assert _LIB is not None
        found = self._contexts.get(stack)
        if found is None:
            context = _LIB.pcre2_match_context_create_8(None)
            jit_stack = _LIB.pcre2_jit_stack_create_8(stack[0], stack[1], None)
            _LIB.pcre2_jit_stack_assign_8(context, None, jit_stack)
            found = self._contexts[stack] = (context, jit_stack)
        return found[0]

    def __del__(self) -> None:
        if _LIB is not None and getattr(self, "_code", None):
            for context, jit_stack in self._contexts.values():
                _LIB.pcre2_match_context_free_8(context)
                _LIB.pcre2_jit_stack_free_8(jit_stack)
            _LIB.pcre2_match_data_free_8(self._data)
            _LIB.pcre2_code_free_8(self._code)


@functools.lru_cache(maxsize=512)
def compiled(pattern: str, options: tuple[str, ...]) -> Pattern:
    """The url's pattern, compiled once (keepalived compiles each distinct pattern once, at start)."""
    return Pattern(pattern.encode("utf-8"), option_bits(options))
