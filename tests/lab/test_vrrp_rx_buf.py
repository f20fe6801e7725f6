"""``kernel_rx_buf_size``: the receive socket's buffer, as the kernel reports it (``SO_RCVBUF``).

keepalived 2.2.7 sizes a receive socket shared by several instances as the
sum of their ``kernel_rx_buf_size``; without any, lifeline's own 4 MiB (docs/vrrp.md).
The kernel doubles what is asked, for its bookkeeping; ``status`` shows its
``getsockopt`` answer (``ss -m`` shows no memory for raw sockets here).
"""

from __future__ import annotations

import pytest

from services.vrrp.kernel.receivers import RECEIVE_BUFFER
from shared.lab.wait import wait_until
from tests.lab.test_vrrp_service import Lab, instance

pytestmark = [pytest.mark.root, pytest.mark.timeout(60)]


@pytest.mark.parametrize(("sizes", "want"), [((300_000, 200_000), 500_000), ((None, None), RECEIVE_BUFFER)])
def test_the_receive_buffer_is_the_sum_of_the_instances_sizes(
    lab: Lab, sizes: tuple[int | None, int | None], want: int
) -> None:
    conf = ""
    for n, size in enumerate(sizes, 1):
        extra = f"    kernel_rx_buf_size {size}" if size else ""
        conf += instance(100 + n, name=f"VI_{n}", vrid=50 + n, vip=f"192.0.2.{100 + n}", extra=extra)
    proc = lab.service(lab.hosts[0], conf)
    wait_until("a's instances", lambda: "VI_2" in proc.log() and "Entering" in proc.log(), 20)
    wait_until("the status endpoint", lambda: _receivers(lab, proc.node), 20)
    receivers = lab.status(proc.node)["receivers"]
    assert [r["rcvbuf"] for r in receivers] == [2 * want]  # type: ignore[index]


def _receivers(lab: Lab, node: str) -> bool:
    try:
        return bool(lab.status(node)["receivers"])
    except Exception:
        return False
