"""keepalived's up/down rules, replayed with a fake clock: each case is a list of results."""

from __future__ import annotations

import pytest

from services.checker.core.retry import CheckerState, RealServerState, Timing
from shared.config.model_lvs import DnsCheck, HttpGetCheck, TcpCheck


def fixed(value: float):  # type: ignore[no-untyped-def]
    """A ``random.uniform`` stand-in that always returns ``value`` (clamped into the range)."""
    return lambda lo, hi: min(max(value, lo), hi)


def replay(timing: Timing, results: str) -> list[tuple[float, bool, bool]]:
    """Feed ``results`` ('+' success, '-' failure) at each due time; return (time, up, changed)."""
    state = CheckerState(timing, now=0.0, uniform=fixed(0.0))
    out = []
    for r in results:
        now = state.next_at
        step = state.on_result(now, r == "+")
        out.append((now, step.up, step.changed))
    return out


T = Timing(retry=2, delay_loop=10.0, delay_before_retry=1.0, warmup=0.0)

CASES = [
    # name, timing, results, expected (time of each probe, up after it, changed)
    ("success keeps up", T, "++", [(0, True, False), (10, True, False)]),
    (
        "retry+1 failures mark down, retries delay_before_retry apart",
        T,
        "---",
        [(0, True, False), (1, True, False), (2, False, True)],
    ),
    (
        "success during retries resets the count",
        T,
        "--+---",
        [
            (0, True, False),
            (1, True, False),
            (2, True, False),
            (12, True, False),
            (13, True, False),
            (14, False, True),
        ],
    ),
    (
        "a down checker is not retried; one success brings it up",
        T,
        "---" + "--+",
        [
            (0, True, False),
            (1, True, False),
            (2, False, True),
            (12, False, False),
            (22, False, False),
            (32, True, True),
        ],
    ),
    (
        "retry 0: first failure marks down",
        Timing(retry=0, delay_loop=5.0),
        "-+",
        [(0, False, True), (5, True, True)],
    ),
    (
        "alpha starts down: failures change nothing, first success is up",
        Timing(retry=3, delay_loop=5.0, alpha=True),
        "--+",
        [(0, False, False), (5, False, False), (10, True, True)],
    ),
    (
        "alpha, once up, uses retries like anyone else",
        Timing(retry=1, delay_loop=5.0, delay_before_retry=2.0, alpha=True),
        "+--",
        [(0, True, True), (5, True, False), (7, False, True)],
    ),
]


@pytest.mark.parametrize(("name", "timing", "results", "expected"), CASES, ids=[c[0] for c in CASES])
def test_up_down_rules(
    name: str, timing: Timing, results: str, expected: list[tuple[float, bool, bool]]
) -> None:
    assert replay(timing, results) == expected


def test_failures_counted_and_retrying_flag() -> None:
    state = CheckerState(T, now=0.0, uniform=fixed(0.0))
    steps = [state.on_result(state.next_at, False) for _ in range(4)]
    assert [s.failures for s in steps] == [1, 2, 3, 4]
    assert [s.retrying for s in steps] == [True, True, False, False]
    assert state.on_result(state.next_at, True).failures == 0


@pytest.mark.parametrize(
    ("warmup", "drawn", "first"),
    [(0.0, 99.0, 100.0), (30.0, 12.5, 112.5), (30.0, 99.0, 130.0), (30.0, 0.0, 100.0)],
)
def test_warmup_delays_first_probe_by_injected_random(warmup: float, drawn: float, first: float) -> None:
    calls: list[tuple[float, float]] = []

    def uniform(lo: float, hi: float) -> float:
        calls.append((lo, hi))
        return min(max(drawn, lo), hi)

    state = CheckerState(Timing(warmup=warmup), now=100.0, uniform=uniform)
    assert state.next_at == first
    assert not state.due(first - 0.001)
    assert state.due(first)
    assert calls == ([(0.0, warmup)] if warmup else [])


def test_timing_from_resolved_checker() -> None:
    check = TcpCheck(retry=3, delay_loop=6.0, delay_before_retry=2.0, warmup=1.5, alpha=True)
    assert Timing.of(check) == Timing(retry=3, delay_loop=6.0, delay_before_retry=2.0, warmup=1.5, alpha=True)


@pytest.mark.parametrize(
    ("check", "expected"),
    [
        (TcpCheck(), Timing(retry=1, delay_loop=60.0, delay_before_retry=1.0, warmup=60.0, alpha=False)),
        (DnsCheck(delay_loop=7.0), Timing(retry=1, delay_loop=7.0, delay_before_retry=1.0, warmup=7.0)),
        (HttpGetCheck(retry=0), Timing(0, 60.0, 1.0, 60.0, confirm_recovery=True)),  # no fast_recovery
    ],
)
def test_timing_fallbacks_for_unresolved_checkers(check: TcpCheck, expected: Timing) -> None:
    """Only for checkers built by hand: the loader fills every field (per-kind defaults live there)."""
    assert Timing.of(check) == expected


# ------------------------------------------------------------- aggregation

AGG_CASES = [
    # name, initial (id, up) pairs, updates (id, up), expected return of each update, alive at end
    ("no checkers: alive", [], [], [], True),
    ("all up: alive", [(0, True), (1, True)], [], [], True),
    ("first failure takes it down", [(0, True), (1, True)], [(1, False)], [False], False),
    (
        "second failure changes nothing",
        [(0, True), (1, True)],
        [(1, False), (0, False)],
        [False, None],
        False,
    ),
    (
        "up only when the last failed checker recovers",
        [(0, True), (1, True)],
        [(1, False), (0, False), (1, True), (0, True)],
        [False, None, None, True],
        True,
    ),
    ("alpha checker starts it down", [(0, False), (1, True)], [], [], False),
    ("alpha: first success brings it up", [(0, False)], [(0, True)], [True], True),
    ("repeated up is not a change", [(0, True)], [(0, True), (0, True)], [None, None], True),
]


@pytest.mark.parametrize(
    ("name", "initial", "updates", "changes", "alive"), AGG_CASES, ids=[c[0] for c in AGG_CASES]
)
def test_real_server_alive_iff_no_checker_failed(
    name: str,
    initial: list[tuple[int, bool]],
    updates: list[tuple[int, bool]],
    changes: list[bool | None],
    alive: bool,
) -> None:
    rs = RealServerState(initial)
    assert [rs.update(cid, up) for cid, up in updates] == changes
    assert rs.alive is alive


@pytest.mark.parametrize(
    ("configured", "reports", "expected"),
    [
        (5, [], 5),
        (5, [(0, 10, True)], 10),  # one misc_dynamic: weight = exit - 2
        (5, [(0, 10, True), (0, None, True)], 10),  # exit 0 keeps the dynamic weight
        (5, [(0, 10, True), (1, 20, True)], 25),  # two MISC: both deltas from the configured weight
        (5, [(2, 3, False)], 8),  # FILE: a delta
        (5, [(2, -9, False)], 0),  # never below 0
        (1, [(0, 253, True), (2, -3, False)], 250),
    ],
)
def test_effective_weight(
    configured: int, reports: list[tuple[int, int | None, bool]], expected: int
) -> None:
    rs = RealServerState([(0, True), (1, True), (2, True)])
    for cid, weight, absolute in reports:
        rs.set_weight(cid, weight, absolute=absolute)
    assert rs.effective_weight(configured) == expected


HTTP = Timing(retry=0, delay_loop=2.0, delay_before_retry=1.0, warmup=0.0, confirm_recovery=True)


def test_without_fast_recovery_a_failed_http_checker_needs_a_second_pass_delay_loop_later() -> None:
    """keepalived 2.2.7: the failed url passes, then every url again, before the server is up."""
    assert replay(HTTP, "+-++") == [(0, True, False), (2, False, True), (4, False, False), (6, True, True)]


def test_fast_recovery_brings_it_back_on_the_first_pass() -> None:
    fast = Timing(retry=0, delay_loop=2.0, delay_before_retry=1.0, warmup=0.0)
    assert replay(fast, "+-+") == [(0, True, False), (2, False, True), (4, True, True)]


def test_a_failure_while_confirming_starts_over() -> None:
    assert replay(HTTP, "-+-++") == [
        (0, False, True),
        (2, False, False),
        (4, False, False),
        (6, False, False),
        (8, True, True),
    ]


def test_alpha_needs_no_confirmation_keepalived_has_no_failed_url_then() -> None:
    alpha = Timing(
        retry=0, delay_loop=2.0, delay_before_retry=1.0, warmup=0.0, alpha=True, confirm_recovery=True
    )
    assert replay(alpha, "+") == [(0, True, True)]


def test_confirm_recovery_only_for_http_without_fast_recovery() -> None:
    assert Timing.of(HttpGetCheck()).confirm_recovery is True
    assert Timing.of(HttpGetCheck(fast_recovery=True)).confirm_recovery is False
    assert Timing.of(TcpCheck()).confirm_recovery is False
