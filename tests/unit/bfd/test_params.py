"""``bfd_instance`` blocks as the session and the sockets see them: every keyword, keepalived's defaults."""

from __future__ import annotations

from ipaddress import ip_address
from pathlib import Path

from services.bfd.core.params import session_params, transport
from shared.config.load import load
from shared.config.model_vrrp import BfdInstance

CONF = """\
bfd_instance full {
    neighbour_ip 192.0.2.2
    source_ip 192.0.2.1
    min_rx 20.5
    min_tx 30
    idle_tx 2000
    multiplier 4
    passive
    ttl 250
    max_hops 5
}
bfd_instance plain {
    neighbor_ip 192.0.2.3
}
bfd_instance six {
    neighbor_ip 2001:db8::2
    hoplimit 200
}
"""


def _instances(tmp_path: Path) -> dict[str, BfdInstance]:
    path = tmp_path / "keepalived.conf"
    path.write_text(CONF)
    loaded = load(path, config_id="t")
    assert loaded.config is not None, loaded.diagnostics
    return loaded.config.vrrp.bfd_instances


def test_every_keyword_reaches_the_session(tmp_path: Path) -> None:
    bfd = _instances(tmp_path)["full"]
    params = session_params(bfd, 77)
    assert (params.min_rx_us, params.min_tx_us, params.idle_tx_us) == (20_500, 30_000, 2_000_000)
    assert (params.detect_mult, params.passive, params.local_discr) == (4, True, 77)
    route = transport(bfd)
    assert (route.neighbor, route.source) == (ip_address("192.0.2.2"), ip_address("192.0.2.1"))
    assert (route.ttl, route.max_hops) == (250, 5)
    assert route.accepts(245) and not route.accepts(244) and not route.accepts(None)


def test_keepalived_defaults(tmp_path: Path) -> None:
    """min_rx/min_tx 10 ms, idle_tx 1 s, multiplier 5, active, TTL 255 sent and required (max_hops 0)."""
    bfd = _instances(tmp_path)["plain"]
    params = session_params(bfd, 1)
    assert (params.min_rx_us, params.min_tx_us, params.idle_tx_us) == (10_000, 10_000, 1_000_000)
    assert (params.detect_mult, params.passive) == (5, False)
    route = transport(bfd)
    assert route.source is None and route.ttl == 255
    assert route.accepts(255) and not route.accepts(254)


def test_ipv6_sends_hoplimit_and_255_max_hops_disables_the_check(tmp_path: Path) -> None:
    route = transport(_instances(tmp_path)["six"])
    assert route.ttl == 200 and route.accepts(200) and not route.accepts(199)
    relaxed = transport(BfdInstance(name="x", neighbor_ip=ip_address("2001:db8::9"), max_hops=255))
    assert relaxed.ttl == 64 and relaxed.accepts(1) and relaxed.accepts(None)
