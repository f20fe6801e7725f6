"""One line per NATS outage: the first failure, a reminder a minute, the recovery."""

from __future__ import annotations

from shared.bus.outage_log import OutageLog


def test_an_outage_of_twelve_seconds_logs_one_line_then_the_recovery() -> None:
    outage = OutageLog()
    lines = [outage.failed(t / 2, "ConnectionRefusedError") for t in range(25)]  # every 0.5 s for 12 s
    assert [line for line in lines if line] == ["ConnectionRefusedError"]
    assert outage.recovered(12.5) == "back after 12.5 s (25 failed attempts)"
    assert outage.recovered(13.0) is None  # no outage: nothing to say


def test_a_long_outage_is_reminded_once_a_minute_with_the_count() -> None:
    outage = OutageLog(remind_every=60.0)
    lines = [outage.failed(t / 2, "refused") for t in range(2 * 150)]  # 150 s
    said = [line for line in lines if line]
    assert said[0] == "refused"
    assert said[1:] == [
        "still unreachable after 60 s (121 failed attempts): refused",
        "still unreachable after 120 s (241 failed attempts): refused",
    ]


def test_a_new_outage_starts_over() -> None:
    outage = OutageLog()
    outage.failed(0.0, "a")
    outage.recovered(1.0)
    assert outage.failed(100.0, "b") == "b"
