"""``lvs_timeouts`` as 2.2.7 sets them: originals read once, unset ones kept, restored at stop."""

from __future__ import annotations

from services.lvs.core.timeouts import TimeoutKeeper, Timeouts
from shared.config.model_global import LvsTimeouts

KERNEL = Timeouts(900, 120, 300)


class Reader:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> Timeouts:
        self.calls += 1
        return KERNEL


def test_unset_values_are_sent_as_the_kernel_had_them_and_stop_puts_them_back() -> None:
    keeper, read = TimeoutKeeper(), Reader()
    assert keeper.on_config(LvsTimeouts(tcp=1234, udp=78), read) == Timeouts(1234, 120, 78)
    assert keeper.on_stop() == KERNEL
    assert keeper.on_stop() is None, "once is enough"


def test_nothing_configured_sends_nothing_and_reads_nothing() -> None:
    keeper, read = TimeoutKeeper(), Reader()
    assert keeper.on_config(None, read) is None
    assert keeper.on_config(LvsTimeouts(tcp=0), read) is None, "0 means unset, as in keepalived"
    assert keeper.on_stop() is None
    assert read.calls == 0


def test_the_originals_are_read_once_and_a_reload_without_the_keyword_restores_them() -> None:
    keeper, read = TimeoutKeeper(), Reader()
    keeper.on_config(LvsTimeouts(tcpfin=11), read)
    assert keeper.on_config(LvsTimeouts(tcp=4321), read) == Timeouts(4321, 120, 300)
    assert read.calls == 1, "the second value is not mistaken for the kernel's own"
    assert keeper.on_config(None, read) == KERNEL
    assert keeper.on_config(None, read) is None
    assert keeper.on_stop() is None
