"""The wire's verdicts (``shared/lab/wire.py``) on hand-made advert timelines, and the flood's frames.

The chaos suite and ``bench/chaos.py`` decide "two masters", "takeover" and
"silence" with these functions alone, so each is held to a timeline whose
answer is known, including the cases that must count as nothing (a clean
handover, a goodbye advert).
"""

from __future__ import annotations

from ipaddress import IPv4Address

from services.vrrp.packet import AuthType, decode
from services.vrrp.packet.encode import encode_ipv4
from shared.lab.capture import AdvertSeen
from shared.lab.flood import VRRP_GROUP, hostile_kinds
from shared.lab.wire import (
    NS,
    first_claim,
    last_claim,
    longest_dual_master,
    longest_silence,
    master_runs,
)

A, B = "10.0.0.1", "10.0.0.2"


def ad(t: float, src: str, priority: int = 100, vrid: int = 51) -> AdvertSeen:
    return AdvertSeen(int(t * NS), src, vrid, priority, 2)


def test_a_clean_handover_is_two_runs_that_never_overlap() -> None:
    seen = [ad(t, A) for t in (0, 1, 2)] + [ad(t, B) for t in (5.6, 6.6, 7.6)]
    runs = master_runs(seen, 51, max_gap=3.6)
    assert [(r.src, r.count) for r in runs] == [(A, 3), (B, 3)]
    assert longest_dual_master(runs) == 0.0


def test_both_claiming_at_once_is_measured_as_the_overlap() -> None:
    seen = [ad(t, A) for t in range(6)] + [ad(t, B) for t in (2.5, 3.5)]
    assert longest_dual_master(master_runs(seen, 51, max_gap=3.6)) == 1.0


def test_a_silence_longer_than_the_gap_starts_a_new_run() -> None:
    seen = [ad(0, A), ad(1, A), ad(6, A), ad(7, A)]
    assert [(r.start_ns / NS, r.end_ns / NS) for r in master_runs(seen, 51, max_gap=3.6)] == [(0, 1), (6, 7)]


def test_goodbyes_and_other_vrids_claim_nothing() -> None:
    seen = [ad(0, A), ad(1, A, priority=0), ad(1.5, B, vrid=52), ad(2, B)]
    runs = master_runs(seen, 51, max_gap=3.6)
    assert [(r.src, r.count) for r in runs] == [(A, 1), (B, 1)]
    assert longest_dual_master(runs) == 0.0


def test_takeover_ends_are_the_last_and_first_claims_around_the_fault() -> None:
    seen = [ad(t, A) for t in (0, 1, 2)] + [ad(t, B) for t in (5.61, 6.61)]
    last, first = last_claim(seen, 51, A, int(2.5 * NS)), first_claim(seen, 51, B, int(2.5 * NS))
    assert last is not None and first is not None
    assert (first.ts_ns - last.ts_ns) / NS == 3.61


def test_silence_counts_the_window_edges() -> None:
    seen = [ad(t, A) for t in (1, 2, 3.5)]
    assert longest_silence(seen, 51, 0, 4 * NS) == 1.5
    assert longest_silence([], 51, 0, 4 * NS) == 4.0


def test_the_floods_adverts_are_wrong_in_exactly_the_way_they_say() -> None:
    kinds = {k.name: k.advert for k in hostile_kinds(51, "10.0.0.100", "secret", 150)}
    assert kinds["foreign_vrid"].vrid == 52 and kinds["foreign_vrid"].auth_data == b"secret\0\0"
    assert kinds["wrong_auth"].vrid == 51 and kinds["wrong_auth"].auth_data != b"secret\0\0"
    assert kinds["lower_priority"].vrid == 51 and kinds["lower_priority"].priority == 149
    for advert in kinds.values():
        assert advert.auth_type == AuthType.PASS
        frame = decode(encode_ipv4(advert, src=IPv4Address("10.0.0.99"), dst=VRRP_GROUP, ident=1))
        assert frame.advert == advert  # type: ignore[union-attr]  # well-formed: only the meaning is wrong
