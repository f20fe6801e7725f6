"""The support registry (``shared/config/support``): no drift from the parser, the doc, compat lines.

The keyword lists come from the parser's tables (``shared.config.blocks``);
these tests fail when a keyword has no row, when a row names a keyword the
parser does not know, when a *done* row's test does not exist, when the
nesting of blocks stops matching keepalived's (``schema.BLOCK_KEYWORDS``),
and when ``docs/compatibility.md`` is not what the registry generates.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from shared.config.blocks import ADDRESS_BLOCKS, ADDRESS_LINE, BLOCKS, uses
from shared.config.context import Context
from shared.config.diagnostics import Diagnostic, Severity
from shared.config.lexer import read_tree
from shared.config.load import load
from shared.config.schema import BLOCK_KEYWORDS, ROOT
from shared.config.support import LOGGED_BY, SUPPORT, Area, Status, in_areas
from shared.config.support.markdown import markdown

REPO = Path(__file__).resolve().parents[3]


def test_every_parser_keyword_has_a_row_and_every_row_a_parser_keyword() -> None:
    assert set(SUPPORT) == set(BLOCKS), "a block without rows, or rows for a block the parser lacks"
    for name, block in BLOCKS.items():
        rows = set(SUPPORT[name])
        assert not set(block.keywords) - rows, (
            f"{name or 'top level'}: no row for {set(block.keywords) - rows}"
        )
        assert not rows - set(block.keywords), (
            f"{name or 'top level'}: rows for unknown {rows - set(block.keywords)}"
        )


def test_blocks_nest_as_keepalived_nests_them() -> None:
    """Each keyword that takes a block (keepalived's view, ``schema``) is a keyword block or a data block."""
    for name, block in BLOCKS.items():
        opening = set(block.nested) | block.data
        assert opening == set(BLOCK_KEYWORDS.get(name, frozenset())), name or "top level"
        assert set(block.nested) <= set(block.keywords) and block.data <= set(block.keywords), name
        assert set(block.nested.values()) <= set(BLOCKS), name
    reachable = {ROOT, ADDRESS_LINE} | {child for block in BLOCKS.values() for child in block.nested.values()}
    assert reachable == set(BLOCKS), "a block no keyword opens"
    assert all(keyword in BLOCKS[parent].data for parent, keyword in ADDRESS_BLOCKS)


def test_rows_say_what_they_must() -> None:
    for name, rows in SUPPORT.items():
        for keyword, support in rows.items():
            assert support.text.strip(), (name, keyword)
            if support.status is Status.DONE:
                assert support.test, f"{name} {keyword}: a done row names the test that shows it"


def test_every_test_named_by_a_row_exists() -> None:
    """Collected by pytest itself, so a renamed test or a scenario that went away fails here."""
    named = {support.test for rows in SUPPORT.values() for support in rows.values() if support.test}
    files = sorted({test.split("::", 1)[0] for test in named})
    missing_files = [f for f in files if not (REPO / f).is_file()]
    assert not missing_files, f"rows name test files that do not exist: {missing_files}"
    argv = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *files]
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    collected = {line.strip() for line in proc.stdout.splitlines() if "::" in line}
    assert collected, proc.stdout + proc.stderr
    functions = {node.split("[", 1)[0] for node in collected}
    missing = sorted(t for t in named if t not in collected and ("[" in t or t not in functions))
    assert not missing, f"rows name tests pytest does not collect: {missing}"


def test_the_checked_in_doc_is_the_generated_one() -> None:
    page = (REPO / "docs" / "compatibility.md").read_text()
    assert page == markdown(), (
        "regenerate: python -m shared.config.support --markdown > docs/compatibility.md"
    )


def test_the_doc_generator_runs_as_a_module() -> None:
    argv = [sys.executable, "-m", "shared.config.support", "--markdown"]
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=60, check=True)
    assert proc.stdout == markdown()


def test_each_area_is_logged_by_exactly_one_service() -> None:
    """The five services' ``ServiceSpec.areas`` split the areas between them, as the doc says."""
    from services.bfd.service import SPEC as BFD
    from services.checker.service import SPEC as CHECKER
    from services.lvs.service import SPEC as LVS
    from services.notifier.service import SPEC as NOTIFIER
    from services.vrrp.service import SPEC as VRRP

    specs = [VRRP, CHECKER, LVS, NOTIFIER, BFD]
    claimed = [area for spec in specs for area in spec.areas]
    assert sorted(claimed) == sorted(Area), "every area claimed once"
    assert {area: spec.name for spec in specs for area in spec.areas} == dict(LOGGED_BY)


# --------------------------------------------------------------------------- compat lines

CONF = """\
global_defs {
    router_id lab1
    enable_snmp_vrrp
    enable_snmp_checker
}
vrrp_instance VI_1 {
    interface lo
    virtual_router_id 51
    debug 2
    track_bfd {
        peer
    }
    promote_secondaries
    virtual_ipaddress {
        192.0.2.1/32
    }
}
bfd_instance peer {
    neighbor_ip 192.0.2.9
    checker
}
"""


def compat_of(tmp_path: Path, text: str) -> list[Diagnostic]:
    path = tmp_path / "k.conf"
    path.write_text(text)
    return [d for d in load(path, config_id="t").diagnostics if d.severity is Severity.COMPAT]


def test_one_compat_line_per_use_of_a_keyword_not_done(tmp_path: Path) -> None:
    found = [(d.line, d.message.split(" ", 1)[0], d.area) for d in compat_of(tmp_path, CONF)]
    assert found == [
        (3, "enable_snmp_vrrp", "vrrp"),
        (4, "enable_snmp_checker", "checks"),
        (9, "debug", "vrrp"),
        (13, "promote_secondaries", "vrrp"),
        (20, "checker", "bfd"),
    ]


def test_compat_lines_read_as_warnings_and_say_what_happens(tmp_path: Path) -> None:
    lines = [str(d) for d in compat_of(tmp_path, CONF)]
    path = tmp_path / "k.conf"
    assert lines[0] == (
        f"{path}:3: warning: enable_snmp_vrrp is not supported by lifeline: "
        f"{SUPPORT['global_defs']['enable_snmp_vrrp'].text}"
    )
    assert lines[4].startswith(f"{path}:20: warning: checker is not supported by lifeline: ")
    assert not any(d.severity.fails_check for d in compat_of(tmp_path, CONF))


def test_a_line_expanded_several_times_is_reported_once(tmp_path: Path) -> None:
    text = "global_defs {\n  vrrp_rx_bufs_multiplier 1\n  vrrp_rx_bufs_multiplier 2\n}\n"
    assert [d.line for d in compat_of(tmp_path, text)] == [2, 3]  # two lines, two uses
    seq = "$X=vrrp_rx_bufs_multiplier 1\nglobal_defs {\n~SEQ(i,1,3) $X\n}\n"
    assert [d.line for d in compat_of(tmp_path, seq)] == [3]  # one line, three expansions


def test_a_keyword_in_the_wrong_block_is_keepalived_s_unknown_keyword_not_a_compat_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "k.conf"
    path.write_text("global_defs {\n    debug 2\n}\n")
    diagnostics = load(path, config_id="t").diagnostics
    assert [(d.line, d.severity) for d in diagnostics] == [(2, Severity.WARNING)]


def test_uses_follow_the_blocks_of_the_tree(tmp_path: Path) -> None:
    path = tmp_path / "k.conf"
    path.write_text(
        "virtual_server 10.0.0.1 80 {\n  protocol TCP\n  real_server 10.0.1.1 80 {\n"
        "    HTTP_GET {\n      url {\n        path /\n      }\n    }\n    SMTP_CHECK {\n"
        "      host {\n        connect_ip 10.0.0.5\n      }\n    }\n  }\n}\n"
    )
    found = [(u.block, u.keyword, u.node.line) for u in uses(read_tree(path, Context()))]
    assert found == [
        (ROOT, "virtual_server", 1),
        ("virtual_server", "protocol", 2),
        ("virtual_server", "real_server", 3),
        ("real_server", "HTTP_GET", 4),
        ("HTTP_GET", "url", 5),
        ("url", "path", 6),
        ("real_server", "SMTP_CHECK", 9),
        ("SMTP_CHECK", "host", 10),
        ("host", "connect_ip", 11),
    ]


def test_a_service_keeps_only_its_own_compat_lines(tmp_path: Path) -> None:
    path = tmp_path / "k.conf"
    path.write_text(CONF + "vrrp_instance {\n}\n")
    every = load(path, config_id="t").diagnostics
    vrrp = [d for d in every if in_areas(d, {Area.VRRP, Area.NODE})]
    bfd = [d for d in every if in_areas(d, {Area.BFD})]
    checker = [d for d in every if in_areas(d, {Area.TRACKERS, Area.CHECKS})]
    not_compat = [d for d in every if d.severity is not Severity.COMPAT]
    assert not_compat and all(d in vrrp and d in checker for d in not_compat)
    assert [d.line for d in checker if d.severity is Severity.COMPAT] == [4]
    assert [d.line for d in vrrp if d.severity is Severity.COMPAT] == [3, 9, 13]
    assert [d.line for d in bfd if d.severity is Severity.COMPAT] == [20]


@pytest.mark.parametrize(
    ("strict", "status", "label"), [(False, 0, "warning"), (True, 1, "error")], ids=["default", "strict"]
)
def test_strict_compat_makes_compat_lines_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], strict: bool, status: int, label: str
) -> None:
    from shared.cli.main import main

    path = tmp_path / "k.conf"
    path.write_text("global_defs {\n    router_id lab1\n    enable_dbus\n}\n")
    argv = ["config", "check", "--no-host-checks", str(path)] + (["--strict-compat"] if strict else [])
    assert main(argv) == status
    text = SUPPORT["global_defs"]["enable_dbus"].text
    err = capsys.readouterr().err.splitlines()
    assert err == [f"{path}:3: {label}: enable_dbus is not supported by lifeline: {text}"]
