"""Which keepalived keywords a service takes and what keepalived would set (`shared/runner/priorities.py`)."""

from __future__ import annotations

from shared.config.model_global import GlobalDefs
from shared.runner.priorities import ProcessSettings, settings_for


def test_each_service_takes_its_keepalived_process_family() -> None:
    gd = GlobalDefs(vrrp_priority=-5, checker_priority=7, bfd_priority=3)
    vrrp, checker, lvs = (settings_for(name, gd) for name in ("vrrp", "checker", "lvs"))
    assert vrrp is not None and vrrp.nice == -5
    assert checker is not None and checker.nice == 7
    assert lvs == checker, "keepalived's checker process is also its IPVS process"
    assert settings_for("notifier", gd) is None


def test_rttime_limits_only_with_a_real_time_priority() -> None:
    assert ProcessSettings("vrrp", rt_priority=50, rlimit_rttime=10_000).rttime_limits() == (5_000, 10_000)
    assert ProcessSettings("vrrp", rlimit_rttime=10_000).rttime_limits() is None, "no RR: no limit"
    assert ProcessSettings("vrrp", rt_priority=50, rlimit_rttime=0).rttime_limits() is None, "0: none"


def test_unconfigured_is_left_alone() -> None:
    settings = settings_for("vrrp", GlobalDefs())
    assert settings is not None and not settings.configured
    assert settings.rlimit_rttime == 10_000, "keepalived's default, used only with an rt priority"
