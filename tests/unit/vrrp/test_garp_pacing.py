"""keepalived 2.2.7's GARP pacing (services/vrrp/core/garp_pacing.py), replaying what its frames showed.

The cases are the captures of docs/keepalived.md#gratuitous-arp-and-unsolicited-na:
keepalived with ``garp_master_repeat 3`` and a 0.5 s ``garp_group`` sent 2
frames, 0.5 s apart; a 0.4 s group of eth0 and eth1 with repeat 2 sent eth0's
VIP at 0, eth0's again at 0.4 and eth1's at 0.8.
"""

from __future__ import annotations

from services.vrrp.core.garp_pacing import PacingQueue


def burst(
    q: PacingQueue[str], now: float, rounds: int, targets: list[tuple[str, str]], interval: float
) -> list[str]:
    """``rounds`` rounds over (line, vip): what leaves at once."""
    sent = []
    for _ in range(rounds):
        for order, (line, vip) in enumerate(targets):
            if q.offer(now, line, interval, ident=vip, item=vip, order=order):
                sent.append(vip)
    return sent


def test_a_paced_burst_is_one_frame_now_and_one_after_the_interval() -> None:
    q: PacingQueue[str] = PacingQueue()
    assert burst(q, 10.0, 3, [("eth0", "a")], 0.5) == ["a"]
    assert q.next_due() == 10.5
    assert q.due(10.49) == []
    assert q.due(10.5) == ["a"]
    assert q.next_due() is None and q.due(20.0) == []


def test_a_group_is_one_line_and_waiting_vips_go_in_the_instance_order() -> None:
    q: PacingQueue[str] = PacingQueue()
    line = ("garp_group", 0)
    assert burst(q, 0.0, 2, [(line, "eth0-vip"), (line, "eth1-vip")], 0.4) == ["eth0-vip"]
    assert q.due(0.4) == ["eth0-vip"]  # came second, but it is the instance's first VIP
    assert q.next_due() == 0.8
    assert q.due(0.8) == ["eth1-vip"]
    assert q.next_due() is None


def test_lines_are_independent_and_a_free_line_sends_at_once() -> None:
    q: PacingQueue[str] = PacingQueue()
    assert burst(q, 0.0, 2, [("eth0", "a"), ("eth1", "b")], 0.2) == ["a", "b"]
    assert q.due(0.2) == ["a", "b"]  # one per line
    assert q.offer(0.3, "eth0", 0.2, ident="a", item="a") is False  # busy until 0.4
    assert q.offer(1.0, "eth1", 0.2, ident="b", item="b") is True


def test_drop_forgets_waiting_announcements_of_removed_vips() -> None:
    q: PacingQueue[str] = PacingQueue()
    burst(q, 0.0, 2, [("eth0", "a"), ("eth0", "b")], 1.0)
    assert q.drop(lambda ident: ident == "a") == 1
    assert q.due(1.0) == ["b"]
