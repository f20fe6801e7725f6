"""``docs/compatibility.md``: the support registry as a page, one table per block.

Generated, never edited by hand: ``python -m shared.config.support --markdown >
docs/compatibility.md``, and ``tests/unit/config/test_support.py`` fails when the
checked-in page differs from what the registry says.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from shared.config.blocks import ADDRESS_BLOCKS, ADDRESS_LINE, BLOCKS, Block
from shared.config.schema import ROOT
from shared.config.support.registry import LOGGED_BY, Area, Status, Support
from shared.config.support.table import SUPPORT

INTRO = """\
# Compatibility: what lifeline does with each keyword

Generated from the support registry (`shared/config/support/`) by
`python -m shared.config.support --markdown`; do not edit by hand. The keywords are the
parser's own (every keyword keepalived 2.2.7 accepts, block by block); a test fails when a
keyword has no row, when a row names a keyword the parser does not know, or when a test named
below does not exist. The grammar around the keywords (`include` and its variants, `$PARAMS`,
`@id`, `~SEQ`) is all supported ([config-grammar.md](config-grammar.md)). The options of an
address line have rows too (last section); those of route and rule lines are in
[vrrp.md](vrrp.md) ("Routes and rules"): the vrrp service logs each it cannot apply, at its line.

The service is the one that acts on the keyword (or would): it logs the keyword's compat
lines. Its area follows in brackets where the service has several; keywords of the node as
a whole (`node`) are the vrrp service's, those of BFD sessions the bfd service's.

- **done**: the service named acts on it as keepalived does; the test named shows it.
- **partly**: the service acts on it, with the difference said.
- **not supported**: parsed and checked (`lifeline config check` gives keepalived's verdict on
  it), then no service acts on it; the text says what happens instead.

Every use of a keyword that is not *done* is reported at its `file:line`, by `lifeline config
check` and, at start and at each reload, in the log of the service named:
`FILE:LINE: warning: KEYWORD is not supported by lifeline: WHAT HAPPENS INSTEAD` (or `is partly
supported by lifeline: WHAT DIFFERS`). These lines never change the exit status of
`config check`, which stays `keepalived -t`'s; `config check --strict-compat` makes them
errors. See [config.md](config.md#checking-a-file).
"""


def markdown() -> str:
    """The whole page."""
    return "\n".join([INTRO, _summary(), *(_section(block) for block in BLOCKS.values())])


def _rows() -> Iterator[Support]:
    for name, block in BLOCKS.items():
        for keyword in block.keywords:
            yield SUPPORT[name][keyword]


def _summary() -> str:
    counts = Counter(support.status for support in _rows())
    total = sum(counts.values())
    parts = ", ".join(f"{counts[status]} {status.value}" for status in Status)
    return f"{total} keywords in {len(BLOCKS)} blocks: {parts}.\n"


def _parents(name: str) -> list[str]:
    return [block.name for block in BLOCKS.values() if name in block.nested.values()]


def _title(block: Block) -> str:
    if block.name == ROOT:
        return "## Top level of the file"
    if block.name == ADDRESS_LINE:
        where = ", ".join(f"`{keyword}`" for _, keyword in ADDRESS_BLOCKS)
        return f"## Options of an address line ({where})"
    inside = [p for p in _parents(block.name) if p != ROOT]
    where = f" (in {', '.join(f'`{p}`' for p in inside)})" if inside else ""
    return f"## `{block.name}`{where}"


def _service(area: Area) -> str:
    name = LOGGED_BY[area]
    return name if name == area.value else f"{name} ({area.value})"


def _section(block: Block) -> str:
    lines = [
        _title(block),
        "",
        "| keyword | status | service | what lifeline does | shown by |",
        "|---|---|---|---|---|",
    ]
    for keyword in block.keywords:
        support = SUPPORT[block.name][keyword]
        test = f"`{support.test}`" if support.test else ""
        text = support.text.replace("|", "\\|")
        service = _service(support.area)
        lines.append(f"| `{keyword}` | {support.status.value} | {service} | {text} | {test} |")
    return "\n".join(lines) + "\n"
