"""Random mutations of valid configurations: the loader reports, it never crashes.

The only exception a user may ever see from the loader is ``ConfigError`` (an
unreadable top file); everything else must come back as diagnostics.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.config.diagnostics import ConfigError
from shared.config.host import FakeHost
from shared.config.load import load

EXAMPLES = Path(__file__).resolve().parents[3] / "docs" / "examples"
SEEDS = [p.read_text() for p in sorted(EXAMPLES.glob("*.conf"))]

FRAGMENTS = [
    "{",
    "}",
    '"',
    "'",
    "\\",
    "#",
    "!",
    "\n",
    " ",
    "$X=1\n",
    "$X",
    "${X}",
    "${_RANDOM 1 5}",
    "@node1 ",
    "@^x ",
    "~SEQ(i,1,3) ",
    "~LST(v,a,b) ",
    "include nothing*.conf\n",
    "include /dev/null\n",
    "0",
    "-1",
    "256",
    "99999999999999999999",
    "1.5",
    "10.0.0.1/33",
    "::1",
    "fe80::1/64",
    "eth9",
    "weight",
    "reverse",
    "virtual_ipaddress",
    "vrrp_instance X {",
    "real_server 1.1.1.1 80 {",
    "HTTP_GET {",
    "url {",
    "state",
    "MASTER",
    "auth_type AH",
    "track_script {",
    "\t",
    "\x00",
    "é",
]


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "delete", "duplicate"]))
        if action == "insert":
            text = text[:pos] + draw(st.sampled_from(FRAGMENTS)) + text[pos:]
        elif action == "delete":
            text = text[:pos] + text[pos + draw(st.integers(1, 40)) :]
        else:
            end = min(len(text), pos + draw(st.integers(1, 200)))
            text = text[:end] + text[pos:end] + text[end:]
    return text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutations_raise_only_config_error(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "keepalived.conf"
        path.write_text(text, encoding="utf-8", errors="surrogateescape")
        try:
            loaded = load(path, config_id="node1", host=FakeHost())
        except ConfigError:
            return
        for diagnostic in loaded.diagnostics:
            assert diagnostic.line >= 0
            assert diagnostic.message


def test_seeds_exist() -> None:
    assert len(SEEDS) == 5
