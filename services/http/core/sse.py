"""Server-sent events framing (the WHATWG ``text/event-stream`` format), pure.

Why framed here and not by a library: the format is three field names and a
blank line.  What matters is that a payload with a newline cannot end a frame
early or forge a field: every line of it becomes its own ``data:`` line, and
an event name or id can hold no line break at all.
"""

from __future__ import annotations

from typing import Final

KEEPALIVE: Final = b": keepalive\n\n"
"""A comment frame: keeps proxies from closing an idle stream; EventSource ignores it."""


def _field(name: str, value: str) -> str:
    if "\n" in value or "\r" in value:
        raise ValueError(f"an SSE {name} cannot hold a line break: {value!r}")
    return f"{name}: {value}\n"


def frame(
    data: str, *, event: str | None = None, id: str | None = None, retry_ms: int | None = None
) -> bytes:
    """One event: ``event``/``id``/``retry`` fields, then ``data`` line by line, then a blank line."""
    out = ""
    if event is not None:
        out += _field("event", event)
    if id is not None:
        out += _field("id", id)
    if retry_ms is not None:
        out += f"retry: {int(retry_ms)}\n"
    lines = data.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    out += "".join(f"data: {line}\n" for line in lines)
    return (out + "\n").encode()
