"""Rendezvous assignment: deterministic, balanced, and only a dead replica's keys move."""

from __future__ import annotations

from services.checker.sharding import owner

KEYS = [f"rs:10.0.{i // 250}.{i % 250}:80" for i in range(3000)]


def assign(keys: list[str], replicas: list[str]) -> dict[str, str]:
    """Every key's owner among ``replicas``, as each replica computes it alone."""
    return {key: who for key in keys if (who := owner(key, replicas)) is not None}


def test_owner_is_deterministic_and_order_free() -> None:
    assert owner("k", ["a", "b", "c"]) == owner("k", ["c", "a", "b"])
    assert owner("k", []) is None


def test_every_key_has_exactly_one_owner_and_load_is_balanced() -> None:
    got = assign(KEYS, ["a", "b", "c"])
    assert set(got) == set(KEYS)
    counts = {r: list(got.values()).count(r) for r in "abc"}
    assert all(800 < n < 1200 for n in counts.values()), counts


def test_only_the_dead_replicas_keys_move_and_come_back() -> None:
    before = assign(KEYS, ["a", "b", "c"])
    after = assign(KEYS, ["a", "b"])
    moved = {k for k in KEYS if before[k] != after[k]}
    assert moved == {k for k in KEYS if before[k] == "c"}
    assert assign(KEYS, ["a", "b", "c"]) == before  # restart: exactly its share back
