"""``vrrp_startup_delay``: no advert leaves before the delay is over (keepalived 2.2.7's delayed start).

keepalived sets its instances' down timers from the end of the delay, an
address owner included (it goes BACKUP with a 1 µs down timer), so the first
advert of a node alone on its segment leaves no earlier than the delay plus
Master_Down_Interval (the delay alone for an owner).  Seen on the wire from
the other host; the bound is measured from the moment the process was started,
which is before the service itself started counting.
"""

from __future__ import annotations

import time

import pytest

from shared.lab.capture import ETH_P_IP, Capture, adverts
from shared.lab.wait import wait_until
from tests.lab.test_vrrp_service import Lab, instance, mdi

pytestmark = [pytest.mark.root, pytest.mark.timeout(90)]

DELAY = 3.0
ADVERT = 0.1


@pytest.mark.parametrize("priority", [100, 255])
def test_the_first_advert_leaves_no_earlier_than_the_startup_delay(lab: Lab, priority: int) -> None:
    a, b = lab.hosts
    capture = Capture(b.name, "eth0", ETH_P_IP)
    seen: list[float] = []
    try:
        conf = f"global_defs {{\n    vrrp_startup_delay {DELAY:g}\n}}\n" + instance(priority, advert=ADVERT)
        launched = time.time()
        lab.service(a, conf)

        def first_advert() -> bool:
            seen.extend(ad.ts_ns / 1e9 for ad in adverts(capture.drain(wait=0.1)) if ad.src == str(a.ipv4))
            return bool(seen)

        wait_until("a's first advert", first_advert, DELAY + 20)
    finally:
        capture.close()
    waited = seen[0] - launched
    least = DELAY + (0.0 if priority == 255 else mdi(ADVERT, priority))
    print(f"\npriority {priority}: first advert {waited:.3f} s after the launch (at least {least:.3f} s)")
    assert waited >= least
