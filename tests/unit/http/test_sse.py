"""Server-sent events framing: a payload can neither end a frame early nor forge a field."""

from __future__ import annotations

import pytest

from services.http.core.sse import KEEPALIVE, frame


def test_one_line_event() -> None:
    assert frame('{"a":1}', event="entry") == b'event: entry\ndata: {"a":1}\n\n'


def test_every_line_of_a_payload_is_data() -> None:
    framed = frame("one\ntwo\r\nthree\rfour\n\nevent: forged", id="7", retry_ms=1000)
    assert framed == (
        b"id: 7\nretry: 1000\ndata: one\ndata: two\ndata: three\ndata: four\ndata: \ndata: event: forged\n\n"
    )
    assert framed.count(b"\n\n") == 1 and framed.endswith(b"\n\n")


@pytest.mark.parametrize("field", ["event", "id"])
def test_a_field_with_a_line_break_is_refused(field: str) -> None:
    with pytest.raises(ValueError, match="line break"):
        frame("x", **{field: "a\nevent: b"})  # type: ignore[arg-type]


def test_keepalive_is_a_comment() -> None:
    assert KEEPALIVE.startswith(b":") and KEEPALIVE.endswith(b"\n\n")
