"""The lab's one wait helper: what it returns, and what a timeout tells the reader."""

from __future__ import annotations

import itertools

import pytest

from shared.lab.errors import LabError
from shared.lab.wait import LabTimeout, await_until, wait_until


def test_a_condition_that_holds_returns_at_once() -> None:
    assert wait_until("nothing", lambda: True, 1.0, step=10.0) < 1.0


def test_polls_until_truthy_and_returns_the_elapsed_time() -> None:
    calls = itertools.count()
    took = wait_until("the third call", lambda: next(calls) >= 2, 5.0, step=0.01)
    assert 0.015 <= took < 2.0


def test_expect_compares_the_value_and_a_timeout_shows_the_last_one() -> None:
    with pytest.raises(LabTimeout) as raised:
        wait_until("a alone to hold the VIP", lambda: ["a", "b"], 0.05, step=0.01, expect=["a"])
    assert isinstance(raised.value, LabError)
    assert raised.value.last == ["a", "b"]
    want = "timed out after 0.05 s waiting for a alone to hold the VIP (last: ['a', 'b'])"
    assert str(raised.value) == want


def test_a_false_predicate_is_not_shown_and_explain_is_appended() -> None:
    with pytest.raises(LabTimeout, match=r"^timed out after 0.03 s waiting for b\nthe log$"):
        wait_until("b", lambda: False, 0.03, step=0.01, explain=lambda: "the log")


def test_an_exception_from_the_probe_is_not_retried() -> None:
    def probe() -> bool:
        raise RuntimeError("daemon exited")

    with pytest.raises(RuntimeError, match="daemon exited"):
        wait_until("never", probe, 5.0)


async def test_the_async_twin_awaits_an_async_probe() -> None:
    calls = itertools.count()

    async def probe() -> int:
        return next(calls)

    assert await await_until("the value 3", probe, 5.0, step=0.001, expect=3) < 2.0
    with pytest.raises(LabTimeout, match=r"\(last: \d+\)"):
        await await_until("the value -1", probe, 0.02, step=0.005, expect=-1)
