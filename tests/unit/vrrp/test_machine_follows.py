"""``VrrpMachine.follows``: the adverts keepalived 2.2.7's ``skip_check_adv_addr`` waives checks for."""

from __future__ import annotations

from ipaddress import IPv4Address

from services.vrrp.core.machine import VrrpMachine
from services.vrrp.core.machine_events import AdvertReceived, Start, Tick
from services.vrrp.core.machine_types import InstanceParams, State

OWN, MASTER, OTHER = IPv4Address("10.0.0.1"), IPv4Address("10.0.0.2"), IPv4Address("10.0.0.3")


def test_only_the_master_a_backup_accepted_last_is_followed() -> None:
    m = VrrpMachine(InstanceParams(name="VI_1", vrid=1, address=OWN, priority=100))
    m.handle(0.0, Start())
    assert m.state is State.BACKUP and not m.follows(MASTER)  # nobody heard yet: every advert is checked
    m.handle(0.5, AdvertReceived(src=MASTER, priority=150))
    assert m.follows(MASTER) and not m.follows(OTHER)
    m.handle(5.0, Tick())  # the master went silent: we take over
    assert m.state is State.MASTER and not m.follows(MASTER) and not m.follows(OWN)
