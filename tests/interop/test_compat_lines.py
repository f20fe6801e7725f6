"""Compat lines against the real ``keepalived -t``: one per use, at its line, and keepalived's verdict kept.

Three corpus files together use every keyword the support registry does not
mark *done* (``test_the_files_use_every_keyword_not_done`` keeps that true as
rows change): ``compat-every-unsupported.conf`` (keepalived 2.2.7 accepts it:
``-t`` exits 0), ``compat-unsupported-rejected.conf`` (the keywords 2.2.7
itself rejects: deprecated, newer than 2.2.7, a VRF without an interface) and
``compat-net-namespace.conf``.  For each, lifeline must print exactly one
compat line per line that uses such a keyword, at that line, and exit as
keepalived does; with ``--strict-compat`` it must fail.

The expected lines come from a walk of the file written here (braces and the
registry's block names), not from ``shared.config.blocks``, so a wrong walk
there cannot agree with itself.  Both tools run in a throwaway namespace with
``lo`` and ``eth0``, as in ``test_config_verdicts.py``.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.config.schema import ROOT
from shared.config.support import SUPPORT, Status
from shared.lab.netns import Lab, Namespace, run_in_namespace
from tests.interop.keepalived_check import run_keepalived_check

pytestmark = [pytest.mark.interop, pytest.mark.root]

CONFIGS = Path(__file__).resolve().parent / "configs"
FILES = ("compat-every-unsupported.conf", "compat-unsupported-rejected.conf", "compat-net-namespace.conf")
COMPAT_RE = re.compile(
    r"^(?P<file>.+?):(?P<line>\d+): (?P<label>warning|error): "
    r"(?P<kw>\S+) is (?:not|partly) supported by lifeline: "
)
TIMEOUT = 60.0
ADDRESS_DATA = ("virtual_ipaddress", "virtual_ipaddress_excluded", "static_ipaddress")
ADDRESS_LINE = "address line"


def not_done(block: str, keyword: str) -> bool:
    row = SUPPORT.get(block, {}).get(keyword)
    return row is not None and row.status is not Status.DONE


def expected_uses(path: Path) -> list[tuple[int, str, str]]:
    """(line, block, keyword) of every line using a keyword that is not done, by a plain brace walk.

    These files put every ``{`` on its keyword's line and every ``}`` alone; a
    block is a keyword block when the registry has rows for it (the blocks these
    files open that hold data, such as ``virtual_ipaddress`` or ``group``, have
    none).  In an address block every word after the address that names an
    option is a use of it (no value in these files spells an option).
    """
    stack: list[tuple[str, bool]] = [(ROOT, True)]  # (block, holds keywords)
    found = []
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        if words == ["}"]:
            stack.pop()
            continue
        block, keywords = stack[-1]
        if keywords and not_done(block, words[0]):
            found.append((number, block, words[0]))
        if not keywords and block in ADDRESS_DATA:
            found += [(number, ADDRESS_LINE, word) for word in words[1:] if not_done(ADDRESS_LINE, word)]
        if words[-1] == "{":
            stack.append((words[0], keywords and words[0] in SUPPORT))
    assert stack == [(ROOT, True)], f"{path.name}: unbalanced braces"
    return found


@pytest.fixture(scope="module")
def host(netns_session: None) -> Iterator[Namespace]:
    with Lab() as lab:
        yield lab.host("c")


def lifeline(ns: Namespace, conf: Path, *extra: str) -> tuple[int, str]:
    argv = [str(Path(sys.executable).with_name("lifeline")), "config", "check", str(conf), *extra]
    proc = run_in_namespace(ns, argv, TIMEOUT, cwd=conf.parent)
    return proc.returncode, proc.stderr + proc.stdout


def compat_lines(output: str) -> list[tuple[int, str, str]]:
    return [(int(m["line"]), m["label"], m["kw"]) for m in map(COMPAT_RE.match, output.splitlines()) if m]


def test_the_files_use_every_keyword_not_done() -> None:
    used = {(block, keyword) for name in FILES for _, block, keyword in expected_uses(CONFIGS / name)}
    wanted = {
        (b, k) for b, rows in SUPPORT.items() for k, row in rows.items() if row.status is not Status.DONE
    }
    assert not wanted - used, f"add a use of these to {FILES[0]} (or, if 2.2.7 rejects them, {FILES[1]})"


@pytest.mark.parametrize("name", FILES)
def test_one_compat_line_per_use_and_keepalived_s_verdict(host: Namespace, name: str, tmp_path: Path) -> None:
    conf = tmp_path / name
    conf.write_text((CONFIGS / name).read_text())
    theirs = run_keepalived_check(host, conf)
    status, output = lifeline(host, conf)
    assert "Traceback" not in output, output
    assert (status == 0) == theirs.clean, f"keepalived exit {theirs.returncode}, lifeline {status}:\n{output}"
    expected = [(line, "warning", keyword) for line, _, keyword in expected_uses(conf)]
    assert compat_lines(output) == expected
    assert all(m["file"] == str(conf) for m in map(COMPAT_RE.match, output.splitlines()) if m)


def test_strict_compat_fails_a_file_keepalived_accepts(host: Namespace, tmp_path: Path) -> None:
    conf = tmp_path / FILES[0]
    conf.write_text((CONFIGS / FILES[0]).read_text())
    assert run_keepalived_check(host, conf).clean
    status, output = lifeline(host, conf, "--strict-compat")
    assert status == 1
    lines = compat_lines(output)
    assert lines and all(label == "error" for _, label, _ in lines)
