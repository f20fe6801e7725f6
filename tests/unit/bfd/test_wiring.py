"""``lifeline up`` starts the bfd service exactly when the file has ``bfd_instance`` blocks."""

from __future__ import annotations

from ipaddress import ip_address

from shared.cli.up import SERVICES, wanted
from shared.config.model import Config
from shared.config.model_vrrp import BfdInstance


def test_bfd_runs_only_with_bfd_instances() -> None:
    config = Config()
    assert "services.bfd" in SERVICES
    assert not wanted("services.bfd", config)
    config.vrrp.bfd_instances["b"] = BfdInstance(name="b", neighbor_ip=ip_address("192.0.2.2"))
    assert wanted("services.bfd", config)
    assert wanted("services.vrrp", config)
