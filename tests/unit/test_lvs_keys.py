"""Checker, lvs and notifier name every virtual and real server alike (shared/config/lvs_keys.py).

Why it matters: the checker publishes health under these names, lvs applies it
to the pool of that name and the notifier runs the scripts it finds under it;
a name that differed in one service would silently cut that chain.  Each
service's own entry point is asked, not ``lvs_keys`` directly, so a service
that went back to a key of its own would fail here.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from services.checker.scheduler import build_entries
from services.lvs.core.desired import build_plans
from services.notifier.wiring import build_targets
from shared.config.load import load
from shared.config.lvs_keys import vs_key
from shared.config.model import Config
from shared.config.model_lvs import VirtualServer
from shared.scripts import ScriptPolicy

CONF = """virtual_server 10.0.0.1 80 {
  lb_algo rr
  lb_kind NAT
  quorum_up /bin/true
  real_server 10.0.1.1 8080 {
    notify_up /bin/true
    TCP_CHECK {
      connect_timeout 1
    }
  }
  real_server 10.0.1.2 {
    notify_up /bin/true
    TCP_CHECK {
      connect_timeout 1
    }
  }
}
virtual_server fwmark 7 {
  lb_algo rr
  lb_kind DR
  quorum_up /bin/true
  real_server 10.0.2.1 80 {
    notify_up /bin/true
    TCP_CHECK {
      connect_timeout 1
    }
  }
}
virtual_server_group G {
  10.0.3.1 443
}
virtual_server group G {
  lb_algo rr
  lb_kind NAT
  quorum_up /bin/true
  real_server 10.0.3.5 443 {
    notify_up /bin/true
    TCP_CHECK {
      connect_timeout 1
    }
  }
}
"""

EXPECTED = {
    ("10.0.0.1:80/udp", "10.0.1.1:8080"),  # no protocol: UDP, as keepalived 2.2.7
    ("10.0.0.1:80/udp", "10.0.1.2:80"),  # no port: the virtual server's
    ("fwmark:7", "10.0.2.1:80"),
    ("group:G", "10.0.3.5:443"),
}


def config(tmp_path: Path) -> Config:
    path = tmp_path / "keepalived.conf"
    path.write_text(CONF)
    return load(path).config


def test_the_three_services_agree_on_every_pair(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    checker = {(e.virtual, e.real) for entries in build_entries(cfg).values() for e in entries}
    lvs = {(plan.name, real) for plan in build_plans(cfg.lvs).values() for real in plan.reals}
    targets = build_targets(cfg, ScriptPolicy())
    notifier = set(targets.real_servers)
    assert checker == lvs == notifier == EXPECTED
    assert set(targets.virtual_servers) == {v for v, _ in EXPECTED} == set(build_plans(cfg.lvs))


def test_an_unresolved_model_gets_the_loaders_default(tmp_path: Path) -> None:
    """A model built without the loader (no protocol filled in) is named as the loader would name it."""
    raw = VirtualServer(address=ipaddress.ip_address("10.0.0.1"), port=80)
    assert raw.protocol is None
    assert vs_key(raw) == vs_key(config(tmp_path).lvs.virtual_servers[0]) == "10.0.0.1:80/udp"
