"""``hashed``, as keepalived 2.2.7 treats it: no flag is sent, the kernel marks every service HASHED itself.

Sending the bit would be wrong as well as different: the kernel hashes a new
service only if HASHED is not already set in the flags it was given.
"""

from __future__ import annotations

from pathlib import Path

from services.lvs.core.desired import SVC_F_HASHED, build_plans
from shared.config.load import load

CONF = """virtual_server 192.0.2.100 80 {
    lb_algo sh
    lb_kind NAT
    protocol TCP
    hashed
    sh-port
    real_server 192.0.2.21 80 {
    }
}
"""


def test_hashed_sends_no_flag_but_the_sh_flags_still_go(tmp_path: Path) -> None:
    path = tmp_path / "k.conf"
    path.write_text(CONF)
    (plan,) = build_plans(load(str(path)).config.lvs).values()
    assert plan.attrs.flags & SVC_F_HASHED == 0
    assert plan.attrs.flags == 0x10, "sh-port is IP_VS_SVC_F_SCHED2"
