"""keepalived 2.2.7's advert checks that depend on configuration, end to end between two services.

* The VIP list: an advert whose addresses differ from ours is dropped (2.2.7;
  2.3.3 and later accept it), so a master that a reload gave another VIP is no
  longer heard by its backup, which takes over: two masters.  With
  ``skip_check_adv_addr`` the backup keeps following the master it already
  follows, and stays BACKUP.
* Unicast ``min_ttl``/``max_ttl`` (with ``check_unicast_src``): an advert from
  a peer whose TTL is outside its range is dropped.

Both are shown the operator's way: who holds the VIP (``ip addr``), what the
backup's ``status`` counts as dropped.
"""

from __future__ import annotations

import signal

import pytest

from shared.lab.wait import wait_until
from tests.lab.test_vrrp_service import VIP4, Lab, has_vip, instance, mdi
from tests.lab.test_vrrp_three_node import KERNEL, STARTUP, sole_holder_throughout

pytestmark = [pytest.mark.root, pytest.mark.timeout(90)]

ADVERT = 0.1
EXTRA_VIP = "192.0.2.101"


def drops(lab: Lab, node: str, reason: str) -> int:
    counters = lab.status(node)["instances"]["VI_1"]["counters"]  # type: ignore[index]
    return int(counters["drops"][reason])  # type: ignore[index]


def follows(lab: Lab, node: str) -> object:
    return lab.status(node)["instances"]["VI_1"]["master_address"]  # type: ignore[index]


def master_adds_a_vip(lab: Lab, backup_extra: str) -> None:
    """a (150) masters, b (100) follows; then a reload gives a's instance a second VIP."""
    a = lab.hosts[0]
    backup = instance(100, advert=ADVERT, extra=backup_extra)
    pa, pb = lab.master_then_backup(instance(150, advert=ADVERT), backup)
    # skip_check_adv_addr waives the check for the master b follows: b must have accepted a's advert first
    wait_until("b to follow a", lambda: follows(lab, pb.node) == str(a.ipv4), KERNEL)
    pa.conf.write_text(instance(150, advert=ADVERT, vip=f"{VIP4}\n        {EXTRA_VIP}"))
    pa.signal(signal.SIGHUP)
    wait_until("a to hold the new VIP", lambda: has_vip(a, EXTRA_VIP), KERNEL)


def test_a_master_with_another_vip_list_is_not_heard_without_skip_check_adv_addr(lab: Lab) -> None:
    a, b = lab.hosts
    master_adds_a_vip(lab, "")
    wait_until("b to take the VIP as well (two masters)", lambda: has_vip(b, VIP4), KERNEL)
    assert has_vip(a, VIP4)
    assert drops(lab, lab.node(b), "addr_list_mismatch") > 0


def test_skip_check_adv_addr_keeps_following_the_same_master(lab: Lab) -> None:
    a, b = lab.hosts
    master_adds_a_vip(lab, "    skip_check_adv_addr")
    sole_holder_throughout(lab.hosts, VIP4, a, 10 * mdi(ADVERT, 100))
    assert drops(lab, lab.node(b), "addr_list_mismatch") == 0
    assert lab.status(lab.node(b))["instances"]["VI_1"]["state"] == "BACKUP"  # type: ignore[index]


def unicast(priority: int, peer: str, peer_opts: str = "", extra: str = "") -> str:
    return instance(
        priority,
        advert=ADVERT,
        extra=f"    check_unicast_src\n{extra}    unicast_peer {{\n        {peer}{peer_opts}\n    }}\n",
    )


@pytest.mark.parametrize(("ttl", "heard"), [(255, True), (200, False)])
def test_unicast_peer_ttl_range_drops_adverts_outside_it(lab: Lab, ttl: int, heard: bool) -> None:
    """b accepts a's adverts only with TTL 250-255: a sending TTL 200 is not heard (b masters too)."""
    a, b = lab.hosts
    pa = lab.service(a, unicast(150, str(b.ipv4), extra=f"    unicast_ttl {ttl}\n"))
    wait_until("a to hold the VIP", lambda: has_vip(a, VIP4), STARTUP)
    lab.service(b, unicast(100, str(a.ipv4), " min_ttl 250 max_ttl 255"))
    node = lab.node(b)
    wait_until("b to answer status", lambda: _answers(lab, node), STARTUP)
    if heard:
        sole_holder_throughout(lab.hosts, VIP4, a, 10 * mdi(ADVERT, 100))
        assert drops(lab, node, "ttl_out_of_range") == 0
    else:
        wait_until("b to take the VIP as well", lambda: has_vip(b, VIP4), KERNEL)
        assert drops(lab, node, "ttl_out_of_range") > 0
    assert pa.proc is not None and pa.proc.poll() is None


def _answers(lab: Lab, node: str) -> bool:
    try:
        return "VI_1" in lab.status(node)["instances"]  # type: ignore[operator]
    except Exception:
        return False
