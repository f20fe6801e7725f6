"""lifeline up's restart schedule: quick deaths back off, a healthy run starts over."""

from __future__ import annotations

import sys

from shared.cli.restart_policy import RestartPolicy
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
    assert deaths(RestartPolicy(), *[0.1] * 9) == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]


def test_a_healthy_run_resets_the_backoff() -> None:
    policy = RestartPolicy()
    assert deaths(policy, 0.1, 0.1, 0.1, 61.0, 0.1) == [0.5, 1, 2, 0.5, 1]
    assert policy.restarts == 5


def test_a_hitless_exit_is_started_again_at_once_and_a_crash_waits() -> None:
    """``lifeline up``: vrrp's exit 75 (SIGQUIT, VIPs left in place) must be back inside its resume window."""
    for code, delay in ((Exit.RESTART, 0.0), (1, 0.5)):
        child = Child("services.vrrp", [sys.executable, "-c", f"raise SystemExit({int(code)})"])
        child.start(0.0)
        assert child.proc is not None
        child.proc.wait()
        Supervisor._tend(child, 10.0)
        assert child.restart_at == 10.0 + delay, (code, child.restart_at)
