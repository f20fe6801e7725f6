"""Pool logic (docs/keepalived.md#ipvs): alive/down, inhibit_on_failure, alpha, quorum, sorry server."""

from __future__ import annotations

from services.lvs.core.desired import DestAttrs, DestKey, RealPlan, ServiceAttrs, VirtualPlan
from services.lvs.core.pool import Pool
from shared.events import PoolEvent
from shared.events import PoolEventKind as K


def plan(
    weights: tuple[int, ...] = (1, 1, 1),
    *,
    quorum: int = 1,
    hysteresis: int = 0,
    sorry: bool = False,
    sorry_inhibit: bool = False,
    inhibit: bool = False,
    alpha: bool = False,
    omega: bool = False,
) -> VirtualPlan:
    reals = {
        f"10.0.0.{i}:80": RealPlan(
            f"10.0.0.{i}:80",
            DestKey(f"10.0.0.{i}", 80),
            DestAttrs(weight=w),
            inhibit_on_failure=inhibit,
            alpha=alpha,
        )
        for i, w in enumerate(weights, 1)
    }
    sorry_plan = (
        RealPlan("10.0.0.99:80", DestKey("10.0.0.99", 80), DestAttrs(), inhibit_on_failure=sorry_inhibit)
        if sorry
        else None
    )
    return VirtualPlan("vs", (), ServiceAttrs(), reals, sorry_plan, quorum, hysteresis, omega=omega)


def kinds(events: list[PoolEvent]) -> list[K]:
    return [e.kind for e in events]


def test_all_start_alive_without_alpha_and_down_removes() -> None:
    pool = Pool(plan())
    assert pool.members() == {"10.0.0.1:80": 1, "10.0.0.2:80": 1, "10.0.0.3:80": 1}
    assert kinds(pool.health("10.0.0.2:80", False)) == [K.RS_REMOVED]
    assert "10.0.0.2:80" not in pool.members()
    assert pool.health("10.0.0.2:80", False) == []
    assert kinds(pool.health("10.0.0.2:80", True)) == [K.RS_ADDED]


def test_inhibit_on_failure_sets_weight_zero() -> None:
    pool = Pool(plan(inhibit=True))
    pool.health("10.0.0.1:80", False)
    assert pool.members()["10.0.0.1:80"] == 0


def test_alpha_starts_down_and_with_inhibit_is_preadded_at_zero() -> None:
    assert Pool(plan(alpha=True)).members() == {}
    pool = Pool(plan(alpha=True, inhibit=True))
    assert pool.members() == {"10.0.0.1:80": 0, "10.0.0.2:80": 0, "10.0.0.3:80": 0}
    assert kinds(pool.health("10.0.0.1:80", True)) == [K.RS_ADDED, K.QUORUM_UP]


def test_alive_needs_every_checker() -> None:
    pool = Pool(plan())
    pool.health("10.0.0.1:80", False, checker="HTTP_GET")
    assert pool.health("10.0.0.1:80", True, checker="TCP_CHECK") == []
    assert "10.0.0.1:80" not in pool.members()
    assert kinds(pool.health("10.0.0.1:80", True, checker="HTTP_GET")) == [K.RS_ADDED]


def test_quorum_with_hysteresis_keepalived_formula() -> None:
    # weights 1,1,1,1; quorum 3, hysteresis 1: lost below 2, regained at 4.
    pool = Pool(plan((1, 1, 1, 1), quorum=3, hysteresis=1))
    assert pool.quorum_up
    pool.health("10.0.0.1:80", False)
    assert pool.quorum_up  # 3
    pool.health("10.0.0.2:80", False)
    assert pool.quorum_up  # 2 is not < 3 - 1
    assert K.QUORUM_DOWN in kinds(pool.health("10.0.0.3:80", False))  # 1 < 2
    pool.health("10.0.0.1:80", True)
    pool.health("10.0.0.2:80", True)
    assert not pool.quorum_up  # 3 < 3 + 1
    assert K.QUORUM_UP in kinds(pool.health("10.0.0.3:80", True))  # 4


def test_sorry_server_in_and_out() -> None:
    pool = Pool(plan((1, 1), quorum=2, sorry=True))
    assert kinds(pool.health("10.0.0.1:80", False)) == [K.RS_REMOVED, K.QUORUM_DOWN, K.SORRY_IN]
    assert pool.members() == {"10.0.0.99:80": 1}
    assert kinds(pool.health("10.0.0.1:80", True)) == [K.RS_ADDED, K.QUORUM_UP, K.SORRY_OUT]
    assert pool.members() == {"10.0.0.1:80": 1, "10.0.0.2:80": 1}


def test_sorry_server_inhibit_keeps_it_at_zero() -> None:
    pool = Pool(plan(sorry=True, sorry_inhibit=True))
    assert pool.members()["10.0.0.99:80"] == 0


def test_quorum_loss_without_sorry_server_only_reports() -> None:
    pool = Pool(plan((1, 1), quorum=2))
    assert kinds(pool.health("10.0.0.1:80", False)) == [K.RS_REMOVED, K.QUORUM_DOWN]
    assert pool.members() == {"10.0.0.2:80": 1}


def test_dynamic_weight_changes_weight_and_quorum() -> None:
    pool = Pool(plan((1,), quorum=1))
    events = pool.health("10.0.0.1:80", True, checker="MISC_CHECK", weight=7)
    assert kinds(events) == [K.WEIGHT_CHANGED]
    assert pool.members() == {"10.0.0.1:80": 7}
    assert kinds(pool.health("10.0.0.1:80", True, checker="MISC_CHECK", weight=0)) == [
        K.WEIGHT_CHANGED,
        K.QUORUM_DOWN,
    ]


def test_reload_keeps_health_of_servers_that_stayed() -> None:
    old = Pool(plan())
    old.health("10.0.0.2:80", False)
    new = Pool(plan((1, 1, 1, 1)), previous=old)
    assert set(new.members()) == {"10.0.0.1:80", "10.0.0.3:80", "10.0.0.4:80"}


def test_unknown_real_server_is_ignored() -> None:
    assert Pool(plan()).health("10.9.9.9:80", False) == []


def test_release_without_omega_announces_nothing_and_empties_the_table() -> None:
    pool = Pool(plan(sorry=True, sorry_inhibit=True, inhibit=True))
    assert pool.release() == []
    assert pool.members() == {}
    assert pool.health("10.0.0.1:80", True) == [], "a late health fact cannot bring a server back"
    assert pool.members() == {}


def test_release_with_omega_takes_alive_servers_down_in_order_then_quorum() -> None:
    pool = Pool(plan((1, 2, 3), quorum=4, omega=True))
    pool.health("10.0.0.2:80", False)  # already announced when it failed; weight_sum 4
    events = pool.release()
    assert [(e.kind, e.real, e.weight, e.weight_sum) for e in events] == [
        (K.RS_REMOVED, "10.0.0.1:80", 1, 3),
        (K.QUORUM_DOWN, None, None, 3),  # 3 < quorum 4: crossed here, as one-by-one failures would
        (K.RS_REMOVED, "10.0.0.3:80", 3, 0),
    ]
    assert all(not e.quorum_up for e in events[1:]) and not any(e.sorry_active for e in events)
    assert pool.members() == {}


def test_release_with_omega_and_quorum_already_lost_announces_only_servers() -> None:
    pool = Pool(plan((1, 1), quorum=2, sorry=True, omega=True))
    pool.health("10.0.0.1:80", False)  # quorum lost, sorry server in
    events = pool.release()
    assert [(e.kind, e.real) for e in events] == [(K.RS_REMOVED, "10.0.0.2:80")]
    assert pool.members() == {}, "the sorry server leaves too, without an event"
