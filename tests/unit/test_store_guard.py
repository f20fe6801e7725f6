"""When ``lifeline up`` reopens JetStream after its store filled up (``shared.cli.store_guard``)."""

from __future__ import annotations

from shared.cli.store_guard import HIGH, LOW, Step, StoreWatch


def test_reopens_once_when_room_returns_after_the_store_was_full() -> None:
    watch = StoreWatch()
    readings = [HIGH * 4, LOW - 1, 0, 0, LOW + 1, HIGH - 1, HIGH, HIGH * 2, LOW - 1, HIGH]
    steps = [watch.observe(free) for free in readings]
    assert steps == [None, Step.FULL, None, None, None, None, Step.REOPEN, None, Step.FULL, Step.REOPEN]


def test_never_reopens_a_store_that_never_ran_short() -> None:
    watch = StoreWatch()
    assert all(watch.observe(free) is None for free in (HIGH * 10, LOW, LOW + 1, HIGH))
