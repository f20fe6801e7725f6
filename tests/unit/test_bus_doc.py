"""docs/bus.md must describe every field of every Struct in shared/events.py."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from shared import events

DOC = Path(__file__).resolve().parents[2] / "docs" / "bus.md"

STRUCTS = [
    obj
    for obj in vars(events).values()
    if isinstance(obj, type)
    and issubclass(obj, msgspec.Struct)
    and obj.__module__ == events.__name__
    and obj is not events.SubjectInfo  # a local helper, never on the wire
]


@pytest.mark.parametrize("struct", STRUCTS, ids=lambda s: s.__name__)
def test_every_field_is_documented(struct: type[msgspec.Struct]) -> None:
    text = DOC.read_text()
    assert struct.__name__ in text or struct is events.EventBase
    missing = [f for f in struct.__struct_fields__ if f"`{f}`" not in text]
    assert not missing, f"{struct.__name__} fields missing from docs/bus.md: {missing}"


def test_names_in_doc() -> None:
    text = DOC.read_text()
    for name in (
        events.EVENT_STREAM,
        events.STATE_BUCKET,
        events.MSG_ID_HEADER,
        *events.EVENT_STREAM_SUBJECTS,
        events.DEAD_LETTER_STREAM,
        *events.DEAD_LETTER_SUBJECTS,
    ):
        assert name in text
    for struct in (*events.EVENT_TYPES, events.DeadLetter):
        assert f"`{struct.__struct_config__.tag}`" in text
    for builder in ("health_subject", "dead_letter_subject", "durable_transition"):
        assert builder in text
