"""HTTP_GET ``regex`` as keepalived 2.2.7 runs it: PCRE2 syntax and options, the whole response, offsets.

The facts behind each case: ``check_http.c`` (``regex_options``, ``check_regex``)
and keepalived 2.2.7 observed on Debian's kernel (a pattern found only in a
response header passes; ``regex_max_offset 3`` accepts a match at offset 0).
"""

from __future__ import annotations

import pytest

from services.checker.probes import http
from services.checker.probes.base import ProbeFailure
from services.checker.probes.pcre import OPTIONS, compiled
from shared.config.model_lvs import HttpUrl

HEAD = b"HTTP/1.0 200 OK\r\nServer: SimpleHTTP/0.6\r\nContent-Length: 3\r\n\r\n"


def passes(url: HttpUrl, body: bytes, head: bytes = HEAD) -> bool:
    try:
        http.check_body(url, body, head)
    except ProbeFailure:
        return False
    return True


@pytest.mark.parametrize(
    ("name", "url", "body", "ok"),
    [
        ("a header matches", HttpUrl(path="/", regex="SimpleHTTP"), b"ok\n", True),
        (
            "max offset counts from the status line",
            HttpUrl(path="/", regex="HTTP/1.0 200", regex_max_offset=3),
            b"",
            True,
        ),
        ("min offset too", HttpUrl(path="/", regex="HTTP/1.0", regex_min_offset=1), b"", False),
        ("^ is the start of the response", HttpUrl(path="/", regex="^ok"), b"ok\n", False),
        (
            "multiline lets ^ start a line",
            HttpUrl(path="/", regex="^ok", regex_options=("multiline",)),
            b"ok\n",
            True,
        ),
        ("PCRE2 quoting", HttpUrl(path="/", regex=r"\Qa.b\E"), b"a.b", True),
        ("quoting is literal", HttpUrl(path="/", regex=r"\Qa.b\E"), b"axb", False),
        ("named group (?<n>..)", HttpUrl(path="/", regex="(?<word>ok)"), b"ok\n", True),
        ("$ before a final newline", HttpUrl(path="/", regex="ok$"), b"ok\n", True),
        ("dollar_endonly", HttpUrl(path="/", regex="ok$", regex_options=("dollar_endonly",)), b"ok\n", False),
        ("caseless", HttpUrl(path="/", regex="SERVER", regex_options=("caseless",)), b"", True),
        (
            "unknown options are ignored",
            HttpUrl(path="/", regex="ok", regex_options=("nosuch",)),
            b"ok",
            True,
        ),
        ("regex_no_match inverts", HttpUrl(path="/", regex="ok", regex_no_match=True), b"ok", False),
    ],
)
def test_keepalived_regex(name: str, url: HttpUrl, body: bytes, ok: bool) -> None:
    assert passes(url, body) is ok


def test_an_invalid_pattern_fails_the_check_with_the_reason() -> None:
    with pytest.raises(ProbeFailure, match="invalid regex"):
        http.check_body(HttpUrl(path="/", regex="(unclosed"), b"x", HEAD)


def test_regex_stack_is_the_jit_stack() -> None:
    """``(a|b)*c`` backtracks deeply: PCRE2's default JIT stack is too small; ``regex_stack`` is not."""
    body = b"ab" * 2000 + b"c"
    if not compiled("(a|b)*c", ()).jit:
        pytest.skip("this libpcre2 has no JIT: regex_stack has nothing to size")
    assert not passes(HttpUrl(path="/", regex="(a|b)*c"), body)
    assert passes(HttpUrl(path="/", regex="(a|b)*c", regex_stack=(32768, 16 << 20)), body)
    assert not passes(HttpUrl(path="/", regex="(a|b)*c", regex_stack=(16 << 20, 32768)), body), (
        "start > max: ignored"
    )


def test_every_keepalived_option_word_is_known() -> None:
    assert len(OPTIONS) == 24
    assert OPTIONS["ungreedy"] == 0x40000 and OPTIONS["caseless"] == 0x8
