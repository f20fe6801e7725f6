"""The lexer against keepalived 2.2.7's observed behaviour (each case was checked with ``keepalived -t``)."""

from __future__ import annotations

import os
import random
from collections.abc import Iterable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.config.context import Context
from shared.config.diagnostics import ConfigError, Severity
from shared.config.lexer import read_tree
from shared.config.lexer_include import expand_braces
from shared.config.node import Node

SAMPLES = Path("/usr/share/doc/keepalived/samples")


def lex(
    tmp_path: Path, text: str, *, config_id: str = "", files: dict[str, str] | None = None
) -> tuple[list[Node], Context]:
    for name, body in (files or {}).items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(body)
    top = tmp_path / "keepalived.conf"
    top.write_text(text)
    ctx = Context(config_id=config_id)
    return read_tree(top, ctx, opens_block=None), ctx


def flat(nodes: list[Node] | tuple[Node, ...], depth: int = 0) -> list[tuple[int, str, tuple[str, ...], int]]:
    """(depth, keyword, args, line) in document order."""
    out: list[tuple[int, str, tuple[str, ...], int]] = []
    for n in nodes:
        out.append((depth, n.keyword, n.args, n.line))
        out.extend(flat(n.children or (), depth + 1))
    return out


def words(nodes: list[Node] | tuple[Node, ...]) -> list[tuple[str, ...]]:
    return [(kw, *args) for _, kw, args, _ in flat(nodes)]


def messages(ctx: Context) -> list[tuple[int, Severity, str]]:
    return [(d.line, d.severity, d.message) for d in ctx.diagnostics]


# ---- comments, quotes, words ------------------------------------------------------------


def test_plain_lines_keep_file_line_and_raw(tmp_path: Path) -> None:
    nodes, ctx = lex(tmp_path, "\n  router_id   main  # the id\n")
    assert nodes == [Node("router_id", ("main",), str(tmp_path / "keepalived.conf"), 2, "main", None)]
    assert not ctx.diagnostics


@pytest.mark.parametrize("line", ["kw a # c d", "kw a ! c d", "kw a#c d", "kw a!c"])
def test_comments_start_anywhere(tmp_path: Path, line: str) -> None:
    nodes, _ = lex(tmp_path, line)
    assert words(nodes) == [("kw", "a")]


def test_comment_only_lines_are_skipped(tmp_path: Path) -> None:
    nodes, _ = lex(tmp_path, "# x\n! y\n   # z\nkw\n")
    assert flat(nodes) == [(0, "kw", (), 4)]


def test_comment_chars_inside_double_quotes_are_literal(tmp_path: Path) -> None:
    nodes, _ = lex(tmp_path, 'kw "a#b" "c ! d" e')
    assert nodes[0].args == ("a#b", "c ! d", "e")
    assert nodes[0].raw == '"a#b" "c ! d" e'


def test_single_quotes_do_not_protect_comments(tmp_path: Path) -> None:
    nodes, _ = lex(tmp_path, "notify_master '/bin/x #y'")
    assert nodes[0].raw == "'/bin/x"


def test_quoted_string_is_one_word_without_quotes(tmp_path: Path) -> None:
    nodes, _ = lex(tmp_path, 'router_id "a b" c ""')
    assert nodes[0].args == ("a b", "c", "")


def test_quote_splits_a_word_like_keepalived(tmp_path: Path) -> None:
    nodes, _ = lex(tmp_path, 'kw aa"b c"d')
    assert nodes[0].args == ("aa", "b c", "d")


def test_unmatched_quote_is_an_error_at_its_line(tmp_path: Path) -> None:
    nodes, ctx = lex(tmp_path, 'a\nbogus3 "unterminated { x\n')
    assert words(nodes) == [("a",), ("bogus3", "unterminated { x")]
    assert [(line, sev) for line, sev, _ in messages(ctx)] == [(2, Severity.ERROR)]


def test_backslash_quote_does_not_escape(tmp_path: Path) -> None:
    nodes, ctx = lex(tmp_path, r'kw "a\"b"')
    assert nodes[0].args[:2] == ("a\\", "b")
    assert ctx.diagnostics.has_errors


def test_escaped_comment_chars_inside_quotes_are_kept_verbatim(tmp_path: Path) -> None:
    nodes, _ = lex(tmp_path, r'kw "x\#y"')
    assert nodes[0].args == ("x\\#y",)


@pytest.mark.parametrize("line", [r"kw a\#b c", r"kw a\!b c", "kw a${_HASH}b c", "kw a${_BANG}b c"])
def test_unquoted_literal_comment_chars_end_the_line(tmp_path: Path, line: str) -> None:
    # keepalived 2.2.7's vrrp/checker processes read a consolidated copy in which these are comments.
    nodes, ctx = lex(tmp_path, line)
    assert words(nodes) == [("kw", "a")]
    assert not ctx.diagnostics


def test_hash_and_bang_parameters_inside_quotes(tmp_path: Path) -> None:
    nodes, _ = lex(tmp_path, 'kw "a${_HASH}b${_BANG}"')
    assert nodes[0].args == ("a#b!",)


def test_line_starting_with_hash_parameter_is_a_comment(tmp_path: Path) -> None:
    nodes, _ = lex(tmp_path, "${_HASH}x\nkw\n")
    assert words(nodes) == [("kw",)]


def test_crlf_line_endings(tmp_path: Path) -> None:
    nodes, _ = lex(tmp_path, "a 1\r\nb {\r\n c\r\n}\r\n")
    assert flat(nodes) == [(0, "a", ("1",), 1), (0, "b", (), 2), (1, "c", (), 3)]


# ---- blocks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "vi V { prio 1\n vips { 1.2.3.4 } }",
        "vi V {\n prio 1\n vips {\n  1.2.3.4\n }\n}",
        "vi V\n{\n prio 1\n vips\n {\n  1.2.3.4\n }\n}",
        "vi V {prio 1\nvips{1.2.3.4}}",
    ],
)
def test_brace_styles_give_the_same_tree(tmp_path: Path, text: str) -> None:
    nodes, ctx = lex(tmp_path, text)
    assert [(d, kw, a) for d, kw, a, _ in flat(nodes)] == [
        (0, "vi", ("V",)),
        (1, "prio", ("1",)),
        (1, "vips", ()),
        (2, "1.2.3.4", ()),
    ]
    assert not ctx.diagnostics


def test_block_children_and_raw_stop_at_brace(tmp_path: Path) -> None:
    nodes, _ = lex(tmp_path, 'notify { n "/bin/x y" } after')
    assert nodes[0].children == (Node("n", ("/bin/x y",), nodes[0].file, 1, '"/bin/x y"'),)
    assert nodes[1].keyword == "after"


def test_empty_block_is_an_empty_tuple(tmp_path: Path) -> None:
    nodes, _ = lex(tmp_path, "a {\n}\nb\n")
    assert nodes[0].children == () and nodes[1].children is None


def test_quoted_brace_is_a_word(tmp_path: Path) -> None:
    nodes, _ = lex(tmp_path, 'kw "{" "}"')
    assert nodes[0].args == ("{", "}") and nodes[0].children is None


def test_extra_close_brace_is_an_error_at_its_line(tmp_path: Path) -> None:
    nodes, ctx = lex(tmp_path, "a {\n}\n}\nb\n")
    assert words(nodes) == [("a",), ("b",)]
    assert [(line, sev) for line, sev, _ in messages(ctx)] == [(3, Severity.ERROR)]


def test_missing_close_brace_names_the_unclosed_keyword(tmp_path: Path) -> None:
    nodes, ctx = lex(tmp_path, "a {\n b {\n }\n c\n")
    assert flat(nodes) == [(0, "a", (), 1), (1, "b", (), 2), (1, "c", (), 4)]
    ((line, sev, msg),) = messages(ctx)
    assert (line, sev) == (1, Severity.ERROR) and "'a'" in msg


def test_open_brace_without_keyword_is_an_error(tmp_path: Path) -> None:
    """As keepalived: the stray '{' is ignored, its lines stay where they are, its '}' is reported too."""
    nodes, ctx = lex(tmp_path, "{\n x\n}\na { } {\n y\n}\nz\n")
    assert words(nodes) == [("x",), ("a",), ("y",), ("z",)]
    assert [line for line, _, _ in messages(ctx)] == [1, 3, 4, 6]


def keepalived_tree(tmp_path: Path, text: str) -> tuple[list[Node], Context]:
    top = tmp_path / "keepalived.conf"
    top.write_text(text)
    ctx = Context()
    return read_tree(top, ctx), ctx


def test_brace_after_a_plain_keyword_closes_the_enclosing_block(tmp_path: Path) -> None:
    """keepalived 2.2.7: 'Unexpected {' at 2, then the '}' on line 2 ends vrrp_instance, so
    priority (3) sits at the file level, and the last '}' (4) matches the ignored '{'."""
    nodes, ctx = keepalived_tree(tmp_path, "vrrp_instance V {\n interface ${X}\n priority 5\n}\n")
    assert [(n.keyword, n.line, n.children) for n in nodes][1:] == [("priority", 3, None)]
    assert nodes[0].keyword == "vrrp_instance" and nodes[0].end_line == 2
    assert [line for line, _, _ in messages(ctx)] == [2, 4]


def test_block_keyword_without_brace_is_dropped(tmp_path: Path) -> None:
    """'Missing {' is reported where the brace was expected; the lines after stay at this level."""
    nodes, ctx = keepalived_tree(tmp_path, "vrrp_instance V\n state BACKUP\n}\n")
    assert [n.keyword for n in nodes] == ["state"]
    assert [line for line, _, _ in messages(ctx)] == [2, 3]


def test_end_line_is_the_closing_brace(tmp_path: Path) -> None:
    nodes, _ = keepalived_tree(tmp_path, "global_defs {\n router_id a\n\n # c\n}\n")
    assert (nodes[0].line, nodes[0].end_line) == (1, 5)


def test_blocks_may_span_an_include(tmp_path: Path) -> None:
    nodes, ctx = lex(tmp_path, "a {\ninclude inner.conf\n", files={"inner.conf": "x\n}\n"})
    assert flat(nodes) == [(0, "a", (), 1), (1, "x", (), 1)]
    assert not ctx.diagnostics


# ---- include ----------------------------------------------------------------------------


def test_include_is_relative_to_the_including_file(tmp_path: Path) -> None:
    files = {"sub/one.conf": "\nin_one ${_PWD}\ninclude two.conf\n", "sub/two.conf": "in_two\n"}
    nodes, ctx = lex(tmp_path, "g {\n  include sub/one.conf\n  after\n}\n", files=files)
    assert [(n.keyword, n.file, n.line) for n in nodes[0].children or ()] == [
        ("in_one", str(tmp_path / "sub/one.conf"), 2),
        ("in_two", str(tmp_path / "sub/two.conf"), 1),
        ("after", str(tmp_path / "keepalived.conf"), 3),
    ]
    assert nodes[0].children is not None and nodes[0].children[0].args == (str(tmp_path / "sub"),)
    assert not ctx.diagnostics


def test_include_glob_is_sorted_and_skips_nothing_matched(tmp_path: Path) -> None:
    files = {"d/b.conf": "b\n", "d/a.conf": "a\n", "d/c.txt": "c\n"}
    nodes, ctx = lex(tmp_path, "include d/*.conf\ninclude nothing/*.conf\nend\n", files=files)
    assert words(nodes) == [("a",), ("b",), ("end",)]
    assert not ctx.diagnostics.fails_check
    assert [d.line for d in ctx.diagnostics] == [2]  # a note that nothing matched


def test_include_braces(tmp_path: Path) -> None:
    files = {"x.conf": "x\n", "y1.conf": "y1\n", "y2.conf": "y2\n"}
    nodes, _ = lex(tmp_path, "include {x,y{1,2}}.conf\n", files=files)
    assert words(nodes) == [("x",), ("y1",), ("y2",)]


def test_include_with_comment_and_quotes(tmp_path: Path) -> None:
    nodes, _ = lex(tmp_path, 'include "my file.conf" # why\n', files={"my file.conf": "q\n"})
    assert words(nodes) == [("q",)]


@pytest.mark.parametrize(
    ("variant", "missing", "wildcard", "brace"),
    [
        ("include", False, False, False),
        ("includer", False, False, False),
        ("includem", True, False, False),
        ("includew", True, True, False),
        ("includeb", False, False, True),
        ("includea", True, True, True),
    ],
)
def test_include_variant_strictness(
    tmp_path: Path, variant: str, missing: bool, wildcard: bool, brace: bool
) -> None:
    text = f"{variant} nothere.conf\n{variant} nom*.conf\n{variant} {{good,nope}}.conf\n"
    nodes, ctx = lex(tmp_path, text, files={"good.conf": "good\n"})
    assert words(nodes) == (
        [] if brace else [("good",)]
    )  # a failed brace_match includes nothing (keepalived)
    expected = [line for line, on in ((1, missing), (2, wildcard), (3, brace)) if on]
    assert [line for line, sev, _ in messages(ctx) if sev is Severity.ERROR] == expected
    # a pattern that matched nothing without failing the variant is a note (keepalived -t passes it)
    noted = [line for line, sev, _ in messages(ctx) if sev is Severity.NOTE]
    assert noted == [line for line in (1, 2) if line not in expected]
    assert not ctx.diagnostics.fails_check or expected


def test_include_loop_is_reported_at_the_include_line(tmp_path: Path) -> None:
    files = {"a.conf": "a\ninclude b.conf\n", "b.conf": "b\ninclude a.conf\n"}
    nodes, ctx = lex(tmp_path, "include a.conf\n", files=files)
    assert words(nodes) == [("a",), ("b",)]
    ((diag),) = list(ctx.diagnostics)
    assert (diag.file, diag.line, diag.severity) == (str(tmp_path / "b.conf"), 2, Severity.ERROR)


def test_self_include_loop(tmp_path: Path) -> None:
    nodes, ctx = lex(tmp_path, "include keepalived.conf\nx\n")
    assert words(nodes) == [("x",)]
    assert [line for line, _, _ in messages(ctx)] == [1]


def test_same_file_twice_is_not_a_loop(tmp_path: Path) -> None:
    nodes, ctx = lex(tmp_path, "include a.conf\ninclude a.conf\n", files={"a.conf": "a\n"})
    assert words(nodes) == [("a",), ("a",)] and not ctx.diagnostics


def test_include_is_detected_before_conditions_and_parameters(tmp_path: Path) -> None:
    nodes, _ = lex(
        tmp_path, "$F=a.conf\ninclude $F\n@x include a.conf\n", config_id="x", files={"a.conf": "a\n"}
    )
    assert words(nodes) == [("include", "a.conf")]


def test_include_of_a_directory_is_skipped_with_a_note(tmp_path: Path) -> None:
    """keepalived -t: "Configuration file 'dir.conf/' is a directory - skipping", and exit 0."""
    (tmp_path / "dir.conf").mkdir()
    nodes, ctx = lex(tmp_path, "include dir.conf\nx\n")
    assert words(nodes) == [("x",)]
    assert [(line, sev) for line, sev, _ in messages(ctx)] == [(1, Severity.NOTE)]
    assert "is a directory" in messages(ctx)[0][2]


def test_unreadable_match_is_an_error_for_includer(tmp_path: Path) -> None:
    (tmp_path / "dir.conf").mkdir()
    _, ctx = lex(tmp_path, "includer dir.conf\n")
    assert [(line, sev) for line, sev, _ in messages(ctx)] == [(1, Severity.ERROR)]


def test_unreadable_top_file_raises(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        read_tree(tmp_path / "absent.conf", Context())
    assert err.value.diagnostics[0].file == str(tmp_path / "absent.conf")


def test_expand_braces() -> None:
    assert expand_braces("a{b,c{d,e}}f") == ["abf", "acdf", "acef"]
    assert expand_braces("a{b") == ["a{b"]
    assert expand_braces("{,x}") == ["", "x"]


# ---- parameters -------------------------------------------------------------------------


def test_parameters_expand_at_use_time(tmp_path: Path) -> None:
    text = "$BASE=10.2.${SUB}\n$SUB=0\n${BASE}.100/32\n$SUB=10\n${BASE}.100/32\n"
    nodes, _ = lex(tmp_path, text)
    assert flat(nodes) == [(0, "10.2.0.100/32", (), 3), (0, "10.2.10.100/32", (), 5)]


def test_dollar_name_needs_whitespace_or_end(tmp_path: Path) -> None:
    nodes, _ = lex(tmp_path, '$P=7\nkw $P x$P\tz a$Pb "$P" ${P}b\n')
    assert nodes[0].args == ("7", "x7", "z", "a$Pb", "$P", "7b")


def test_space_before_equals_is_not_a_definition(tmp_path: Path) -> None:
    nodes, _ = lex(tmp_path, "$A = 5\n")
    assert words(nodes) == [("$A", "=", "5")]


def test_empty_and_reserved_definitions(tmp_path: Path) -> None:
    nodes, _ = lex(tmp_path, "$E=\n$_MINE=6\nkw[$E] k2$E x ${_MINE}\n")
    assert words(nodes) == [("kw[$E]", "k2", "x", "6")]


def test_undefined_parameter_is_left_alone(tmp_path: Path) -> None:
    nodes, _ = lex(tmp_path, 'script "echo $HOME ${UNDEF}"\n')
    assert nodes[0].args == ("echo $HOME ${UNDEF}",)


def test_definition_comment_is_stripped(tmp_path: Path) -> None:
    nodes, _ = lex(tmp_path, '$P=5 # five\n$Q="a # b"\nkw $P $Q\n')
    assert nodes[0].args == ("5", "a # b")


def test_conditional_definitions(tmp_path: Path) -> None:
    text = "@main $PRIO=240\n@backup $PRIO=200\nvi {\n priority $PRIO\n}\n"
    assert lex(tmp_path, text, config_id="main")[0][0].children == (
        Node("priority", ("240",), str(tmp_path / "keepalived.conf"), 4, "240"),
    )
    nodes, _ = lex(tmp_path, text, config_id="backup")
    assert words(nodes) == [("vi",), ("priority", "200")]


def test_condition_produced_by_a_parameter(tmp_path: Path) -> None:
    text = "$IF_MAIN=@main\n$IF_MAIN priority 240\n"
    assert words(lex(tmp_path, text, config_id="main")[0]) == [("priority", "240")]
    assert words(lex(tmp_path, text, config_id="other")[0]) == []


def test_multiline_definition_expands_to_lines_at_the_using_line(tmp_path: Path) -> None:
    text = (
        "$INST= \\\n"
        "vrrp_instance VI_${NUM} { \\\n"
        "  @high priority 130 \\\n"
        "  @^high priority 120 \\\n"
        "  vips { 10.0.${NUM}.254/24 } \\\n"
        "}\n"
        "$NUM=0\n"
        "$INST\n"
        "$NUM=1\n"
        "${INST}\n"
    )
    nodes, ctx = lex(tmp_path, text, config_id="high")
    assert flat(nodes) == [
        (0, "vrrp_instance", ("VI_0",), 8),
        (1, "priority", ("130",), 8),
        (1, "vips", (), 8),
        (2, "10.0.0.254/24", (), 8),
        (0, "vrrp_instance", ("VI_1",), 10),
        (1, "priority", ("130",), 10),
        (1, "vips", (), 10),
        (2, "10.0.1.254/24", (), 10),
    ]
    assert not ctx.diagnostics


def test_multiline_definition_first_line_value_and_following_lines(tmp_path: Path) -> None:
    text = "$B=abc \\\n  b1 \\\n  b2\nafter_def\n g {\n$B\n}\nlast\n"
    nodes, _ = lex(tmp_path, text)
    assert flat(nodes) == [
        (0, "after_def", (), 4),
        (0, "g", (), 5),
        (1, "abc", (), 6),
        (1, "b1", (), 6),
        (1, "b2", (), 6),
        (0, "last", (), 8),
    ]


def test_blank_line_ends_a_multiline_definition(tmp_path: Path) -> None:
    nodes, _ = lex(tmp_path, "$M= \\\n m1 \\\n\n m2\n$M\n")
    assert flat(nodes) == [(0, "m2", (), 4), (0, "m1", (), 5)]


def test_multiline_parameter_is_only_expanded_alone(tmp_path: Path) -> None:
    nodes, _ = lex(tmp_path, "$M= \\\n m1 \\\n m2\npre $M post\n")
    assert words(nodes) == [("pre", "$M", "post")]


def test_nested_multiline_definitions(tmp_path: Path) -> None:
    text = (
        "$RS= \\\nreal_server 192.168.${VS}.${RSN} 80 { \\\n  weight 1 \\\n}\n"
        "$VSD= \\\nvirtual_server 10.0.${VS}.4 80 { \\\n  $RSN=1 \\\n  $RS \\\n  $RSN=2 \\\n  $RS \\\n}\n"
        "$VS=0\n$VSD\n"
    )
    nodes, ctx = lex(tmp_path, text)
    assert words(nodes) == [
        ("virtual_server", "10.0.0.4", "80"),
        ("real_server", "192.168.0.1", "80"),
        ("weight", "1"),
        ("real_server", "192.168.0.2", "80"),
        ("weight", "1"),
    ]
    assert {n.line for n in nodes} == {13} and not ctx.diagnostics


def test_self_reference_is_an_error_not_a_hang(tmp_path: Path) -> None:
    nodes, ctx = lex(tmp_path, "$A=${A}x\n$B=$C$C\n$C=$B$B\nk ${A}\nm ${B}\n")
    assert [n.keyword for n in nodes] == ["k", "m"]  # left unexpanded; its braces then split as usual
    assert [line for line, _, _ in messages(ctx)] == [4, 5]


def test_multiline_self_use_is_an_error_not_a_hang(tmp_path: Path) -> None:
    nodes, ctx = lex(tmp_path, "$A= \\\n a \\\n $A \\\n $A\n$A\n")
    assert words(nodes) == [("a",)]
    assert [(line, sev) for line, sev, _ in messages(ctx)] == [(5, Severity.ERROR), (5, Severity.ERROR)]


def test_multiline_parameter_at_end_of_line_joins_its_first_line(tmp_path: Path) -> None:
    # keepalived 2.2.7: "1.2.3.4 pre $ML" gives "1.2.3.4 pre l1a l1b", then "l2a", then "l3a".
    nodes, _ = lex(tmp_path, "$ML= \\\n l1a l1b \\\n l2a \\\n l3a\npre $ML\nx ${ML}\n")
    assert flat(nodes) == [
        (0, "pre", ("l1a", "l1b"), 5),
        (0, "l2a", (), 5),
        (0, "l3a", (), 5),
        (0, "x", ("l1a", "l1b"), 6),
        (0, "l2a", (), 6),
        (0, "l3a", (), 6),
    ]


def test_parameter_producing_a_loop_prefix(tmp_path: Path) -> None:
    nodes, _ = lex(tmp_path, "$P=~SEQ(W,2) w_$W\n$P\n~LST(V, a, b) $P\n")
    assert words(nodes) == [("w_1",), ("w_2",), ("w_1",), ("w_2",), ("w_1",), ("w_2",)]


def test_predefined_parameters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIFELINE_T", "env-value")
    text = "kw ${_PWD} ${_INSTANCE} $_INSTANCE ${_ENV LIFELINE_T} [${_ENV LIFELINE_NOPE}] ${_RANDOM 5 5}\n"
    nodes, _ = lex(tmp_path, text, config_id="node1")
    assert nodes[0].args == (str(tmp_path), "node1", "node1", "env-value", "[]", "5")


def test_random_is_in_range(tmp_path: Path) -> None:
    nodes, _ = lex(tmp_path, "kw ${_RANDOM} ${_RANDOM 7} ${_RANDOM 9 3}\n")
    a, b, c = (int(x) for x in nodes[0].args)
    assert 0 <= a <= 32767 and 7 <= b <= 32767 and 3 <= c <= 9


# ---- conditions -------------------------------------------------------------------------


def test_conditions(tmp_path: Path) -> None:
    text = "@main a\n@backup b\n@^main c\n@^backup d\n@main\nvi {\n  @main e {\n  f }\n}\n"
    nodes, _ = lex(tmp_path, text, config_id="main")
    assert words(nodes) == [("a",), ("d",), ("vi",), ("e",), ("f",)]


def test_condition_against_empty_config_id(tmp_path: Path) -> None:
    nodes, _ = lex(tmp_path, "@main a\n@^main b\n")
    assert words(nodes) == [("b",)]


# ---- ~SEQ and ~LST ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "values"),
    [
        ("~SEQ(I, 3)", ["1", "2", "3"]),
        ("~SEQ(I, -2)", ["-1", "-2"]),
        ("~SEQ(I, 0)", ["1", "0"]),
        ("~SEQ(I, 5, 3)", ["5", "4", "3"]),
        ("~SEQ(I, 2, 1, 3)", ["2", "3"]),
        ("~SEQ( I , 1 , 2 )", ["1", "2"]),
        ("~SEQx(I, 0x90, 0x10, 0xc0)", ["90", "a0", "b0", "c0"]),
        ("~SEQx(I, 144, 16, 160)", ["90", "a0"]),
        ("~SEQ(I, 010)", [str(i) for i in range(1, 9)]),
        ("~LST(I, a, b,c)", ["a", "b", "c"]),
    ],
)
def test_sequences(tmp_path: Path, spec: str, values: list[str]) -> None:
    nodes, ctx = lex(tmp_path, f"\n{spec} ip_$I x\n")
    assert flat(nodes) == [(0, f"ip_{v}", ("x",), 2) for v in values]
    assert not ctx.diagnostics


def test_sequence_needs_no_space_after_prefix(tmp_path: Path) -> None:
    assert words(lex(tmp_path, "~SEQ(I,1,2)i_$I\n")[0]) == [("i_1",), ("i_2",)]


@pytest.mark.parametrize(
    "spec",
    [
        "~SEQ(I, 1, 0, 3)",
        "~SEQ(I, 1, -1, 3)",
        "~SEQ(I, 1, 1, 2, 4)",
        "~SEQ(I, 1, x)",
        "~SEQ(I, 2",
        "~SEQ(9I, 2)",
        "~LST(V, a b, c)",
        '~LST(V, "p q", r)',
        "~LST(V)",
        "~LST({A,B},{1,2,3})",
        "~LST({A,B})",
        "~LST({A,B} {1,2})",
        "~SEQ(I, 99999999999)",
    ],
)
def test_invalid_sequences_are_errors_and_drop_the_line(tmp_path: Path, spec: str) -> None:
    nodes, ctx = lex(tmp_path, f"a\n{spec} x_$I\nb\n")
    assert words(nodes) == [("a",), ("b",)]
    assert [(line, sev) for line, sev, _ in messages(ctx)] == [(2, Severity.ERROR)]


def test_list_with_several_variables(tmp_path: Path) -> None:
    nodes, _ = lex(tmp_path, "~LST({IP, IP1}, {10,1},{20,4}, {3}) 192.168.${IP}.${IP1}\n")
    assert words(nodes) == [("192.168.10.1",), ("192.168.20.4",), ("192.168.3.",)]


def test_nested_and_combined_sequences(tmp_path: Path) -> None:
    text = "~LST({IP, IP1}, {10,1},{20,4}) ~SEQ(IP2,168,2,170) @main 192.${IP2}.${IP}.${IP1}\n"
    nodes, _ = lex(tmp_path, text, config_id="main")
    assert words(nodes) == [("192.168.10.1",), ("192.170.10.1",), ("192.168.20.4",), ("192.170.20.4",)]
    assert {n.line for n in nodes} == {1}


def test_sequence_over_a_multiline_parameter(tmp_path: Path) -> None:
    text = "$VI= \\\nvi v${IF}.${ID} { \\\n  id ${ID} \\\n}\n~SEQ(IF,0,1) ~SEQ(ID,1,2) $VI\n"
    nodes, _ = lex(tmp_path, text)
    assert [(n.args, n.children[0].args if n.children else None) for n in nodes] == [
        (("v0.1",), ("1",)),
        (("v0.2",), ("2",)),
        (("v1.1",), ("1",)),
        (("v1.2",), ("2",)),
    ]


def test_sequence_repeats_braces(tmp_path: Path) -> None:
    nodes, _ = lex(tmp_path, "~SEQ(I,2) y_$I { yy_$I }\n")
    assert flat(nodes) == [(0, "y_1", (), 1), (1, "yy_1", (), 1), (0, "y_2", (), 1), (1, "yy_2", (), 1)]


def test_sequence_variable_is_scoped_to_its_line(tmp_path: Path) -> None:
    nodes, _ = lex(tmp_path, "$I=keep\n~SEQ(I, 2) a_$I\nb_$I\n~SEQ(J, 1) c_$J\nd_$J\n")
    assert words(nodes) == [("a_1",), ("a_2",), ("b_keep",), ("c_1",), ("d_$J",)]


def test_sequence_bounds_may_use_parameters(tmp_path: Path) -> None:
    nodes, _ = lex(tmp_path, "$N=3\n~SEQ(I, ${N}) a_$I\n")
    assert words(nodes) == [("a_1",), ("a_2",), ("a_3",)]


def test_unknown_tilde_prefix_is_a_plain_word(tmp_path: Path) -> None:
    assert words(lex(tmp_path, "~FOO(x) zz\n")[0]) == [("~FOO(x)", "zz")]


# ---- whole files ------------------------------------------------------------------------


def test_line_numbers_match_keepalived(tmp_path: Path) -> None:
    """The same file keepalived -t reported as lines 3, 9, 10, 10, 11, 12, 12, 13, 13, 15, 16."""
    files = {"sub/one.conf": "\nbogus_in_one\n"}
    text = (
        "global_defs {\n  include sub/one.conf\n  bogus_after_include 1\n}\n"
        "$DEF= \\\n  bogus_in_def1 \\\n  bogus_in_def2\n"
        "global_defs {\n  bogus_after_def\n  $DEF\n  bogus_after_use\n"
        "  ~SEQ(I, 1, 2) bogus_seq_$I\n  ~LST(V, a, b) bogus_lst_${V}\n"
        "  @nope bogus_cond_no\n  @^nope bogus_cond_neg\n  bogus_last\n}\n"
    )
    nodes, _ = lex(tmp_path, text, files=files)
    got = [(os.path.basename(n.file), n.line) for top in nodes for n in top.children or ()]
    assert got == [("one.conf", 2), ("keepalived.conf", 3)] + [
        ("keepalived.conf", line) for line in (9, 10, 10, 11, 12, 12, 13, 13, 15, 16)
    ]


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="Debian keepalived samples not installed")
def test_debian_samples_lex_cleanly() -> None:
    for sample in sorted(SAMPLES.glob("keepalived.conf.*")):
        ctx = Context(config_id="main")
        nodes = read_tree(sample, ctx)
        assert nodes, sample
        assert not ctx.diagnostics.has_errors, (sample, list(ctx.diagnostics))


# ---- robustness -------------------------------------------------------------------------

_ALPHABET = st.sampled_from([*'abc$@~{}"#!\\ \t\n=(),^_01x', "SEQ", "LST", "include ", "${", "$A", "\r"])
_FUZZ_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _assert_placed(nodes: Iterable[Node]) -> None:
    """Every line the lexer returns says where it came from, as keepalived -t would report it."""
    for node in nodes:
        assert node.file and node.line >= 1, node
        _assert_placed(node.children or ())


def _fuzz_file(top: Path, ctx: Context) -> None:
    """Any text gives a tree or ``ConfigError``, never another exception, and every line has a place."""
    try:
        nodes = read_tree(top, ctx)
    except ConfigError:
        return
    _assert_placed(nodes)
    assert all(d.file for d in ctx.diagnostics), list(ctx.diagnostics)


def _fuzz_once(tmp_path: Path, text: str) -> None:
    top = tmp_path / "fuzz.conf"
    top.write_text(text, errors="surrogateescape")
    _fuzz_file(top, Context(config_id="a"))


@_FUZZ_SETTINGS
@given(st.lists(_ALPHABET, max_size=80).map("".join))
def test_fuzz_structured_text(tmp_path: Path, text: str) -> None:
    _fuzz_once(tmp_path, text)


@_FUZZ_SETTINGS
@given(st.binary(max_size=300))
def test_fuzz_bytes(tmp_path: Path, data: bytes) -> None:
    (tmp_path / "fuzz.conf").write_bytes(data)
    _fuzz_file(tmp_path / "fuzz.conf", Context())


_SEED = (
    "$M= \\\n vi v$I { \\\n  @a p 1 \\\n }\n~SEQ(I, 2) $M\n~LST({A,B},{1,2}) x_$A$B\n"
    'g { k "q # r" ${_HASH} \\# }\ninclude fuzz.conf\ninclude {a,b}*.conf\n'
)


@_FUZZ_SETTINGS
@given(st.lists(st.tuples(st.integers(0, len(_SEED)), st.integers(0, 3), _ALPHABET), max_size=12))
def test_fuzz_mutated_config(tmp_path: Path, edits: list[tuple[int, int, str]]) -> None:
    text = _SEED
    for at, cut, insert in edits:
        text = text[:at] + insert + text[at + cut :]
    _fuzz_once(tmp_path, text)


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="Debian keepalived samples not installed")
def test_fuzz_mutated_samples(tmp_path: Path) -> None:
    rng = random.Random(1234)
    for sample in sorted(SAMPLES.glob("keepalived.conf.*")):
        base = sample.read_text(errors="replace")
        for _ in range(5):
            chars = list(base)
            for _ in range(rng.randint(1, 20)):
                chars.insert(rng.randrange(len(chars) + 1), rng.choice('{}"#!$@~\\\n()SEQ'))
            _fuzz_once(tmp_path, "".join(chars))


@pytest.mark.parametrize(
    ("setting", "errors"),
    [
        ("include_check", [5, 6]),  # every check
        ("include_check match", [5]),  # read + match: the wildcard that matched nothing passes
        ("include_check -match +wildcard_match", [6]),
        ("include_check readable", []),  # 2.2.7 knows 'read', not the man page's 'readable': ignored
    ],
)
def test_include_check_applies_to_later_includes(tmp_path: Path, setting: str, errors: list[int]) -> None:
    """keepalived applies the global include_check as it reads it: includes before it are not checked."""
    text = f"include early.conf\nglobal_defs {{\n  {setting}\n}}\ninclude nothere.conf\ninclude nom*.conf\n"
    _, ctx = lex(tmp_path, text)
    assert [line for line, sev, _ in messages(ctx) if sev is Severity.ERROR] == errors


def test_include_check_inside_an_included_file_ends_with_it(tmp_path: Path) -> None:
    files = {"g.conf": "global_defs {\n  include_check\n}\ninclude nothere.conf\n"}
    _, ctx = lex(tmp_path, "include g.conf\ninclude alsonothere.conf\n", files=files)
    errors = [(d.file, d.line) for d in ctx.diagnostics if d.severity is Severity.ERROR]
    assert errors == [(str(tmp_path / "g.conf"), 4)]  # not line 2 of the top file
