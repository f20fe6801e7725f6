"""Strict mode and the remaining VRRP knobs, end to end: keepalived.conf → config check → params → machine.

Each test starts from configuration text (what an operator writes), goes
through the real parser and completion checks (``shared/config``) and
``services/vrrp/core/params.py``, and where the knob changes behaviour, replays a
timed scenario against the real machine (the scenario runner of
``scenario.py``; only its parameters come from the config instead of a
header).  keepalived 2.2.7's own verdicts on the same settings are compared
live by ``tests/interop/test_config_verdicts.py`` (corpus files ``strict-*``
and ``unicast-fault-no-peer-*``).
"""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path

import pytest

from services.vrrp.core.machine_types import InstanceParams
from services.vrrp.core.params import InstancePlan, build_plan
from shared.config.context import Context
from shared.config.host import FakeHost
from shared.config.lexer import read_tree
from shared.config.model import Config
from shared.config.parse import build
from tests.unit.vrrp.scenario import Replay, Scenario, parse

SRC = IPv4Address("10.0.0.1")
STRICT = "global_defs {\n    vrrp_strict\n}\n"


def load_text(tmp_path: Path, text: str) -> tuple[Config, list[str]]:
    """Parse and complete a config as ``lifeline config check`` does (host: lo and eth0)."""
    path = tmp_path / "k.conf"
    path.write_text(text)
    ctx = Context(config_id="")
    config = build(ctx, read_tree(path, ctx), FakeHost(interfaces={"lo", "eth0"}))
    return config, [f"{d.line}: {d.message}" for d in ctx.diagnostics]


def instance(body: str, vips: str = "10.0.0.100/24") -> str:
    return (
        f"vrrp_instance VI_1 {{\n    interface eth0\n    virtual_router_id 51\n{body}"
        f"    virtual_ipaddress {{\n        {vips}\n    }}\n}}\n"
    )


def plan_of(tmp_path: Path, text: str) -> tuple[InstancePlan, list[str]]:
    config, diags = load_text(tmp_path, text)
    inst = config.vrrp.instances["VI_1"]
    return build_plan(inst, config.global_defs, config.vrrp, SRC), diags


def params_of(tmp_path: Path, text: str) -> InstanceParams:
    plan, diags = plan_of(tmp_path, text)
    assert diags == []
    return plan.params


def replay(tmp_path: Path, params: InstanceParams, steps: str) -> None:
    """Replay scenario lines (``@T verb ...``) against a machine built from ``params``."""
    path = tmp_path / "steps.txt"
    path.write_text(steps)
    parsed = parse(path)
    Replay(Scenario(path, params, parsed.steps)).run()


# --------------------------------------------------------------------------- config check: strict refusals


@pytest.mark.parametrize(
    ("body", "global_extra", "needle"),
    [
        ("    state BACKUP\n    priority 100\n    down_timer_adverts 5\n", "", "down_timer_adverts"),
        ("    state BACKUP\n    priority 100\n", "    vrrp_down_timer_adverts 4\n", "down_timer_adverts"),
        ("    state BACKUP\n    priority 100\n    garp_lower_prio_repeat 3\n", "", "garp_lower_prio_repeat"),
        ("    state BACKUP\n    priority 100\n    garp_lower_prio_delay 2\n", "", "garp_lower_prio_delay"),
        ("    state BACKUP\n    priority 100\n    lower_prio_no_advert false\n", "", "lower_prio_no_advert"),
        ("    state BACKUP\n    priority 100\n    higher_prio_send_advert\n", "", "higher_prio_send_advert"),
        ("    state BACKUP\n    priority 100\n    use_vmac\n    vmac_xmit_base\n", "", "vmac_xmit_base"),
        ("    state BACKUP\n    priority 100\n    use_vmac vrrp.51 02:00:5e:00:01:33\n", "", "MAC"),
        ("    state BACKUP\n    priority 100\n    preempt_delay 5\n", "", "preempt_delay"),
        ("    state BACKUP\n    priority 100\n    accept\n", "", "accept"),
        ("    state MASTER\n    priority 100\n", "", "state MASTER"),
        ("    state BACKUP\n    priority 255\n", "", "state MASTER"),
        (
            "    state BACKUP\n    priority 100\n    authentication {\n        auth_type PASS\n"
            "        auth_pass x\n    }\n",
            "",
            "authentication",
        ),
    ],
)
def test_strict_refusals_are_reported_and_corrected(
    tmp_path: Path, body: str, global_extra: str, needle: str
) -> None:
    text = f"global_defs {{\n    vrrp_strict\n{global_extra}}}\n" + instance(body)
    plan, diags = plan_of(tmp_path, text)
    assert any(needle in d and "strict" in d for d in diags), diags
    p = plan.params
    assert (p.down_timer_adverts, p.garp.lower_prio_repeat, p.garp.lower_prio_delay) == (3, 0, 0.0)
    assert p.lower_prio_no_advert and not p.higher_prio_send_advert
    assert p.effective_preempt_delay == 0.0
    assert (p.initial_state == "MASTER") == p.is_owner
    assert plan.rx.auth_type == 0


def test_strict_ipv6_first_vip_must_be_link_local(tmp_path: Path) -> None:
    body = "    state BACKUP\n    priority 100\n"
    _, bad = load_text(tmp_path, STRICT + instance(body, vips="2001:db8::1/64"))
    assert any("link-local" in d for d in bad)
    _, good = load_text(tmp_path, STRICT + instance(body, vips="fe80::1/64\n        2001:db8::1/64"))
    assert good == []
    _, v2 = load_text(tmp_path, STRICT + instance(body + "    version 2\n", vips="fe80::1/64"))
    assert any("version 2" in d for d in v2)
    _, lax = load_text(tmp_path, instance(body + "    version 2\n", vips="2001:db8::1/64"))
    assert lax == []  # without strict mode neither is refused (keepalived -t exits 0)


def test_strict_mode_per_instance_and_off(tmp_path: Path) -> None:
    body = "    state BACKUP\n    priority 100\n    garp_lower_prio_repeat 2\n"
    _, on = load_text(tmp_path, instance(body + "    strict_mode\n"))
    assert any("garp_lower_prio_repeat" in d for d in on)
    params = params_of(tmp_path, STRICT + instance(body + "    strict_mode off\n"))
    assert (params.garp.lower_prio_repeat, params.accept, params.owner_ignores_adverts) == (2, True, False)


def test_strict_unicast_is_allowed_as_in_227(tmp_path: Path) -> None:
    """keepalived 2.2.7 neither refuses nor ignores unicast in strict mode (checked: it sends unicast)."""
    body = "    state BACKUP\n    priority 100\n    unicast_peer {\n        10.0.0.2\n    }\n"
    plan, diags = plan_of(tmp_path, STRICT + instance(body))
    assert diags == []
    assert plan.transport.unicast and plan.transport.dsts == (IPv4Address("10.0.0.2"),)


# --------------------------------------------------------------------------- params: what strict mode forces


def test_strict_forces_knobs_that_globals_set_silently(tmp_path: Path) -> None:
    """Globals keepalived -t accepts silently are still overridden (docs/keepalived.md#strict-mode)."""
    text = (
        "global_defs {\n    vrrp_strict\n    vrrp_garp_lower_prio_repeat 4\n"
        "    vrrp_garp_lower_prio_delay 3\n"
        "    vrrp_higher_prio_send_advert\n    vrrp_lower_prio_no_advert false\n}\n"
    ) + instance("    state BACKUP\n    priority 100\n")
    p = params_of(tmp_path, text)
    assert (p.garp.lower_prio_repeat, p.garp.lower_prio_delay) == (0, 0.0)
    assert p.lower_prio_no_advert and not p.higher_prio_send_advert
    assert p.down_timer_adverts == 3 and p.owner_ignores_adverts


@pytest.mark.parametrize(
    ("strict", "body", "accept"),
    [
        (False, "    priority 100\n", True),  # keepalived's default, unlike RFC 5798
        (False, "    priority 100\n    no_accept\n", False),
        (True, "    priority 100\n", False),  # strict below 255: no accept
        (True, "    priority 100\n    version 3\n    accept\n", True),  # v3 may ask for it
        (True, "    state MASTER\n    priority 255\n", True),  # the owner always accepts
        (False, "    state MASTER\n    priority 255\n    no_accept\n", True),  # forced for the owner
    ],
)
def test_accept_resolution(tmp_path: Path, strict: bool, body: str, accept: bool) -> None:
    p = params_of(tmp_path, (STRICT if strict else "") + instance("    state BACKUP\n" * (not strict) + body))
    assert p.effective_accept is accept


def test_knobs_without_strict_follow_config_and_globals(tmp_path: Path) -> None:
    text = "global_defs {\n    vrrp_down_timer_adverts 5\n    vrrp_check_unicast_src\n}\n" + instance(
        "    state BACKUP\n    priority 100\n    lower_prio_no_advert\n    higher_prio_send_advert\n"
        "    unicast_peer {\n        10.0.0.2\n    }\n"
    )
    plan, diags = plan_of(tmp_path, text)
    assert diags == []
    p = plan.params
    assert (p.down_timer_adverts, p.lower_prio_no_advert, p.higher_prio_send_advert) == (5, True, True)
    assert plan.rx.check_unicast_src and not p.owner_ignores_adverts and not p.unicast_no_peer
    instance_wins = params_of(
        tmp_path,
        "global_defs {\n    vrrp_down_timer_adverts 5\n}\n"
        + instance("    state BACKUP\n    priority 100\n    down_timer_adverts 7\n"),
    )
    assert instance_wins.down_timer_adverts == 7


def test_duplicate_vrid_is_a_config_error_as_in_227(tmp_path: Path) -> None:
    """keepalived 2.2.7 exits with a permanent CONFIG error (checked), so we refuse the file: no FAULT needed.

    The same VRID is fine on another family, or for unicast instances whose peers do not overlap.
    """
    two = instance("    priority 100\n") + instance("    priority 90\n", vips="10.0.0.101/24").replace(
        "VI_1", "VI_2"
    )
    _, diags = load_text(tmp_path, two)
    assert any("both use VRID 51" in d for d in diags)
    v6 = instance("    priority 90\n", vips="fe80::1/64").replace("VI_1", "VI_2")
    assert load_text(tmp_path, instance("    priority 100\n") + v6)[1] == []
    peer = "    unicast_peer {\n        10.0.0.%d\n    }\n"
    split = instance("    priority 100\n" + peer % 2) + instance(
        "    priority 100\n" + peer % 3, vips="10.0.0.101/24"
    ).replace("VI_1", "VI_2")
    assert load_text(tmp_path, split)[1] == []


# --------------------------------------------------------------------------- machine: behaviour from config

START_BACKUP = """\
@0 start
@0 expect remove_vips
@0 expect state BACKUP reason=startup
@3.609375 expect send_advert prio=100
@3.609375 expect add_vips
@3.609375 expect garp count=5 burst=master
@3.609375 expect state MASTER reason=master_down_timer
"""


def test_strict_master_answers_lower_priority_with_neither_advert_nor_garp(tmp_path: Path) -> None:
    """lower_prio_no_advert forced on and no lower-priority GARPs: the lower master preempts nothing here."""
    params = params_of(tmp_path, STRICT + instance("    state BACKUP\n    priority 100\n"))
    replay(
        tmp_path,
        params,
        START_BACKUP
        + "@4 recv src=10.0.0.2 prio=50\n@4 quiet\n@4.609375 expect send_advert prio=100\n"
        + "@5.609375 expect send_advert prio=100\n",
    )


def test_same_config_without_strict_answers_lower_priority(tmp_path: Path) -> None:
    """The control: the scenario above can fail (an advert and a GARP burst answer the lower master)."""
    params = params_of(tmp_path, instance("    state BACKUP\n    priority 100\n"))
    replay(
        tmp_path,
        params,
        START_BACKUP + "@4 recv src=10.0.0.2 prio=50\n@4 expect send_advert prio=100\n"
        "@4 expect garp count=5 burst=lower_prio\n@5 expect send_advert prio=100\n",
    )


def test_strict_higher_priority_is_yielded_to_without_an_advert(tmp_path: Path) -> None:
    params = params_of(tmp_path, STRICT + instance("    state BACKUP\n    priority 100\n"))
    replay(
        tmp_path,
        params,
        START_BACKUP + "@4 recv src=10.0.0.2 prio=200\n@4 expect remove_vips\n"
        "@4 expect state BACKUP reason=higher_priority_advert master=10.0.0.2\n",
    )


OWNER_START = """\
@0 start
@0 expect remove_vips
@0 expect send_advert prio=255
@0 expect add_vips
@0 expect garp count=5 burst=master
@0 expect state MASTER reason=startup
"""


def test_strict_owner_ignores_received_adverts(tmp_path: Path) -> None:
    """An equal owner with a higher address would win the tie; in strict mode it is not even heard."""
    params = params_of(tmp_path, STRICT + instance("    state MASTER\n    priority 255\n"))
    replay(
        tmp_path,
        params,
        OWNER_START + "@0.5 recv src=10.0.0.9 prio=255\n@0.5 recv src=10.0.0.2 prio=0\n"
        "@0.5 recv src=10.0.0.2 prio=50\n@1 expect send_advert prio=255\n@2 expect send_advert prio=255\n",
    )


def test_owner_without_strict_yields_to_a_higher_address(tmp_path: Path) -> None:
    """The control: outside strict mode the same advert takes mastership away."""
    params = params_of(tmp_path, instance("    state MASTER\n    priority 255\n"))
    replay(
        tmp_path,
        params,
        OWNER_START + "@0.5 recv src=10.0.0.9 prio=255\n@0.5 expect remove_vips\n"
        "@0.5 expect state BACKUP reason=higher_priority_advert master=10.0.0.9\n",
    )


def test_strict_down_timer_is_three_adverts_even_with_a_global(tmp_path: Path) -> None:
    text = "global_defs {\n    vrrp_strict\n    vrrp_down_timer_adverts 3\n}\n"
    params = params_of(tmp_path, text + instance("    state BACKUP\n    priority 100\n"))
    replay(tmp_path, params, START_BACKUP)


@pytest.mark.parametrize(
    "unicast",
    [
        "    unicast_src_ip 10.0.0.1\n    unicast_peer {\n    }\n",
        "",  # unicast_fault_no_peer alone: keepalived 2.2.7 still says "going to fault state" (checked)
    ],
)
def test_unicast_fault_no_peer_keeps_the_instance_in_fault(tmp_path: Path, unicast: str) -> None:
    body = "    state BACKUP\n    priority 100\n    unicast_fault_no_peer\n" + unicast
    params = params_of(tmp_path, instance(body))
    assert params.unicast_no_peer
    replay(
        tmp_path,
        params,
        "@0 start\n@0 expect remove_vips\n@0 expect state FAULT reason=startup\n"
        "@1 recv src=10.0.0.2 prio=200\n@1 link eth0 down\n@2 link eth0 up\n@20 quiet\n",
    )


def test_unicast_fault_no_peer_with_peers_runs(tmp_path: Path) -> None:
    body = "    state BACKUP\n    priority 100\n    unicast_fault_no_peer\n"
    body += "    unicast_peer {\n        10.0.0.2\n    }\n"
    params = params_of(tmp_path, instance(body))
    assert not params.unicast_no_peer
    replay(tmp_path, params, START_BACKUP)
