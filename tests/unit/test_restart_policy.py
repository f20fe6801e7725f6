"""lifeline up's restart schedule: quick deaths back off to a low ceiling, a healthy run starts over."""

from __future__ import annotations

import sys

from shared.cli.restart_policy import FIRST_DELAY_S, MAX_DELAY_S, RestartPolicy
from shared.cli.up import Child, Supervisor
from shared.exit_codes import Exit


def deaths(policy: RestartPolicy, *lifetimes: float) -> list[float]:
    """Start, run for each lifetime, die: the delays the policy asked for."""
    now, delays = 0.0, []
    for life in lifetimes:
        policy.started(now)
        now += life
        again = policy.exited(now)
        delays.append(round(again - now, 6))
        now = again
    return delays


def test_quick_deaths_double_the_delay_up_to_the_ceiling() -> None:
    assert deaths(RestartPolicy(), *[0.1] * 9) == [0.2, 0.4, 0.8, 1.6, 2, 2, 2, 2, 2]


def test_a_burst_of_any_length_is_never_restarted_later_than_the_ceiling() -> None:
    """The case that left a notifier down 29 s of 30: a long burst of crashes."""
    assert max(deaths(RestartPolicy(), *[0.05] * 200)) <= MAX_DELAY_S <= 5.0


def test_a_healthy_run_resets_the_backoff() -> None:
    policy = RestartPolicy()
    assert deaths(policy, 0.1, 0.1, 0.1, 11.0, 0.1) == [0.2, 0.4, 0.8, 0.2, 0.4]
    assert policy.restarts == 5


def snapshot(policy: RestartPolicy) -> tuple[int, float, int | None]:
    return policy.restarts, policy.backoff, policy.last_exit


def test_it_keeps_restarts_backoff_and_last_exit_for_the_status() -> None:
    policy = RestartPolicy()
    assert snapshot(policy) == (0, 0.0, None)
    policy.started(0.0)
    policy.exited(0.1, -9)
    policy.started(0.3)
    policy.exited(0.4, 1)
    assert snapshot(policy) == (2, 0.4, 1)


def test_a_hitless_exit_is_started_again_at_once_and_a_crash_waits() -> None:
    """``lifeline up``: vrrp's exit 75 (SIGQUIT, VIPs left in place) must be back inside its resume window."""
    for code, delay in ((Exit.RESTART, 0.0), (1, FIRST_DELAY_S)):
        child = Child("services.vrrp", [sys.executable, "-c", f"raise SystemExit({int(code)})"])
        child.start(0.0)
        assert child.proc is not None
        child.proc.wait()
        Supervisor._tend(child, 10.0)
        assert child.restart_at == 10.0 + delay, (code, child.restart_at)
